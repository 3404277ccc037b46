"""Sub-commands for running the pipeline beyond `run`: under Airflow, and compiled for Kubeflow.

  airflow        serve the pipeline as a scheduled Airflow DAG (`make airflow`)
  airflow-spec   only write the DAG's description for Airflow (what `airflow` does first)
  check-inputs   is anything to run? the DAG's first task; imports neither TensorFlow nor TFX
  run-node       run one stage as part of a pipeline run: what each Airflow task runs
  track-run      log a run made by run-node tasks to MLflow: the DAG's last task
  warm-worker    start the warm worker the tasks run in (pipeline/runners/warm_worker.py)
  compile-kfp    write the Kubeflow Pipelines v2 / Vertex AI JSON spec (`make compile-kfp`)

run-node exits 0 when the stage ran or came from cache, 1 when it failed, 2 when the input or the
spec was refused, 3 when the data failed validation (the Airflow task then skips its retries).
check-inputs exits 99 when the inputs are byte-identical to the last successful run's (the DAG
then skips every stage), 0 when the stages have to run, 2 when the spec is refused.
"""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from pipeline.runners import warm_reruns
from pipeline.config import settings as settings_lib

COMMANDS = {
    "airflow": "serve the pipeline as a scheduled Airflow DAG on 127.0.0.1 (make airflow)",
    "airflow-spec": "write the description of the Airflow DAG (stages, commands, schedule)",
    "check-inputs": "exit 99 if the inputs are those of the last successful run, else keep "
                    "their fingerprint for the run (the DAG's first task)",
    "run-node": "run one stage of the pipeline as part of a pipeline run (one Airflow task)",
    "track-run": "log a pipeline run made by run-node to MLflow (the DAG's last task)",
    "warm-worker": "start the warm worker the Airflow tasks run in, if none runs (make airflow "
                   "does; docs/team.md)",
    "compile-kfp": "compile the pipeline to a Kubeflow Pipelines v2 / Vertex AI JSON spec",
}


def add_commands(commands: argparse._SubParsersAction) -> None:
    parsers = {}
    for name, help_text in COMMANDS.items():
        parsers[name] = commands.add_parser(name, help=help_text, description=help_text)
        settings_lib.add_arguments(parsers[name])
    for name in ("check-inputs", "run-node", "track-run"):
        parsers[name].add_argument("--run-id", required=True,
                                   help="pipeline run id shared by every stage of the run "
                                        "(the Airflow run id)")
    parsers["run-node"].add_argument("--node", required=True,
                                     help="stage (TFX node id) to run, e.g. Trainer")
    parsers["track-run"].add_argument("--failed-node", action="append", default=[],
                                      metavar="NODE", help="a stage that failed (repeatable)")
    parsers["warm-worker"].add_argument("--keep-while", type=int, default=None, metavar="PID",
                                        help="keep the worker while process PID runs; its idle "
                                             "time (CSV2MODEL_WARM_WORKER_IDLE_S, 300 s) "
                                             "counts from then")
    parsers["airflow"].add_argument(
        "--score-csv", type=Path, default=None,
        help="also serve a scoring DAG that scores this CSV with the champion model on "
             "--score-schedule (`make score` on a schedule; default: no scoring DAG)")
    parsers["airflow"].add_argument(
        "--score-schedule", default="0 6 * * *",
        help="cron expression of the scoring DAG's runs; 'none' for manual only "
             "(default: 0 6 * * *)")
    parsers["compile-kfp"].add_argument(
        "--kfp-output", type=Path, default=None,
        help="JSON file to write (default: <output-root>/<dataset>/kubeflow/<pipeline>.json)")


def main(args: argparse.Namespace, settings: settings_lib.Settings,
         own_process: bool = False) -> int:
    from pipeline.runners import single_node

    if own_process and args.command in ("check-inputs", "run-node", "track-run"):
        code = _through_warm_worker(args, settings)
        if code is not None:
            return code
    try:
        if args.command in ("check-inputs", "run-node", "track-run"):
            code = _run_task(args, settings)
            if own_process and args.command == "check-inputs" and code == 0:
                # The stages run next: the worker imports their libraries meanwhile.
                from pipeline.runners import warm_worker

                warm_worker.ensure_started(settings.output_root, setup=warm_reruns.SETUP)
            return code
        if args.command == "warm-worker":  # as the tasks start it: same process set-up, key
            from pipeline.runners import warm_worker

            warm_worker.ensure_started(settings.output_root, setup=warm_reruns.SETUP,
                                       keep_while=args.keep_while, wait=True)
        elif args.command == "airflow-spec":
            from pipeline.runners.airflow import scheduler

            print(f"DAG description: {scheduler.write_dag_spec(settings)}")
        elif args.command == "airflow":
            from pipeline.runners.airflow import scheduler

            return scheduler.serve(settings, score_csv=args.score_csv,
                                   score_schedule=args.score_schedule)
        elif args.command == "compile-kfp":
            from pipeline.console.output_capture import captured_output
            from pipeline.runners import kubeflow_spec

            with captured_output(settings.log_path):  # TensorFlow's import noise goes to the log
                path = kubeflow_spec.compile_pipeline(settings, args.kfp_output)
            print(f"Kubeflow v2 pipeline spec: {path}\n  image: {settings.cluster_image}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every failure ends with one readable line
        in_task_log = args.command in ("check-inputs", "run-node", "track-run")
        if in_task_log:
            traceback.print_exc()  # the Airflow task log keeps the whole trace
        print(f"error: {single_node.root_cause(e)}", file=sys.stderr)
        if not in_task_log:
            log_traceback(settings, e)
            print(f"  full log: {settings.log_path}", file=sys.stderr)
        return single_node.exit_code(e) if args.command in ("check-inputs", "run-node") else 1
    return 0


def _through_warm_worker(args: argparse.Namespace, settings: settings_lib.Settings) -> int | None:
    """A stage's task runs in a child of the warm worker, which has TensorFlow, TFX and Beam
    imported (pipeline/runners/warm_worker.py); None: it runs here. check-inputs, the run's
    first task, runs here (no TensorFlow: 0.1 s) and starts the worker when the stages are
    to run (main above)."""
    from pipeline.runners import stage_imports, warm_worker

    if args.command == "check-inputs":
        return None
    # A light stage goes through a worker that runs (0.3-0.5 s against 0.7-1.0 s here) but
    # does not start one: the worker's imports would take longer than the stage itself.
    light = bool(stage_imports.blocked_for(getattr(args, "node", None) or args.command))
    return warm_worker.run_task(settings.output_root, sys.argv, setup=warm_reruns.SETUP,
                                start=not light)


def _run_task(args: argparse.Namespace, settings: settings_lib.Settings) -> int:
    """One task of an orchestrated run, holding the output folder while it works: a task of
    another run, or a local `make pipeline`, waits for it (the task log says for whom). Tasks
    of the same run share it: the LocalExecutor runs independent stages at once."""
    from pipeline.runners import run_lock_shared, single_node, stage_imports

    task = f"{args.command} {getattr(args, 'node', '')}".strip()
    with run_lock_shared.sharing_output_folder(settings, f"the orchestrated task `{task}`",
                                               args.run_id, wait=settings.wait), \
            stage_imports.only_what_it_needs(getattr(args, "node", None) or args.command):
        if args.command == "check-inputs":
            if single_node.check_inputs(settings, args.run_id) is not None:
                return single_node.EXIT_UP_TO_DATE
        elif args.command == "run-node":
            single_node.run_node(settings, args.node, args.run_id)
        else:
            single_node.track_run(settings, args.run_id, args.failed_node)
    return 0


def log_traceback(settings: settings_lib.Settings, error: BaseException) -> None:
    """The whole trace in the log file the error line names: the terminal gets one line, and a
    failure outside TFX's executors (tracking after a good run, say) is logged by nobody else."""
    settings.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(settings.log_path, "a") as log:
        log.write("".join(traceback.format_exception(type(error), error, error.__traceback__)))
