"""Command line: `python -m pipeline <command> [options]` (init, run, schema, expectations,
airflow, run-node, compile-kfp, ...); `--help` lists the commands, `<command> --help` every setting.
Exit status: 0 done, 1 the run failed (the first line says why), 2 the input or the spec was
refused before anything ran, 75 (EX_TEMPFAIL) another run holds the output folder and --no-wait
said not to wait for it."""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from pipeline.cli import init_command, orchestration, unused_imports
from pipeline.config import settings as settings_lib
from pipeline.config.dataset_spec import SpecError
from pipeline.inputs import schema_file
from pipeline.runners import termination, warm_reruns


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="CSV to a validated, trained, evaluated and exported Keras model (TFX).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("run", "run the whole pipeline on a dataset"),
        ("schema", "draft a schema with SchemaGen, for review before committing it"),
        ("expectations", "draft a Great Expectations suite (the data contract) from the data, "
                         "for review before committing it"),
        ("score", "score the CSV given with --csv with the dataset's champion model (checked "
                  "against the contract, the schema and for drift): "
                  "<output-root>/<dataset>/scores/<timestamp>/predictions.csv"),
    ):
        settings_lib.add_arguments(
            commands.add_parser(name, help=help_text, description=help_text),
            leave_out=settings_lib.TRAINING_ONLY if name == "score" else frozenset())
    orchestration.add_commands(commands)  # airflow, run-node, compile-kfp, ...
    init_command.add_command(commands)  # init: a dataset folder drafted from a CSV
    return parser


# Commands that build the training or scoring pipeline, which imports the dataset's committed
# schema: without it they would stop on `[Errno 2] ... schema.pbtxt`, after the run's header or
# in the middle of an Airflow DAG.
# Commands refused here when the dataset has no schema. The Airflow DAG's tasks (check-inputs,
# run-node) check it themselves (pipeline/runners/single_node.py), so that the refusal is also
# the error file their run's tracking task reports.
NEEDS_SCHEMA = ("run", "score", "airflow", "airflow-spec", "compile-kfp")


def _preflight(settings: settings_lib.Settings, command: str) -> None:
    """Refuse unusable input in one line before TFX starts (raises SpecError or InputError)."""
    from pipeline.inputs import csv_preflight

    spec = settings.load_spec()
    if command in NEEDS_SCHEMA:
        schema_file.check_schema(settings, spec)
    if command == "score":
        from components.score.schema_types import (
            INT,
            required_columns,
            reserved_columns,
            schema_types,
        )

        if settings.csv is None:
            raise csv_preflight.InputError("score needs the file to score: --csv PATH")
        integers = [name for name, kind in schema_types(spec.schema_path).items() if kind == INT]
        csv_preflight.check_scoring_csv(spec, integers, reserved=reserved_columns(),
                                        required=required_columns(spec.schema_path))
        return
    csv_preflight.check_csv(spec)


def _check_suite(settings: settings_lib.Settings) -> None:
    """The data contract's suite, refused (SpecError) before TFX starts. It imports Great
    Expectations: ~4 s, so it comes after the run's first lines (_run)."""
    from components.contract import suite_loading

    spec = settings.load_spec()
    suite_loading.load_suite(suite_loading.suite_path(spec), spec)


def _draft_expectations(settings: settings_lib.Settings) -> None:
    """Draft a suite from the CSV into the outputs folder (no TFX run needed), for review."""
    from components.contract import suite_draft, suite_loading

    spec = settings.load_spec()
    print(f"Drafting an expectation suite for {spec.name} from {spec.csv_path}")
    draft = settings.output_dir / "expectations_draft" / suite_loading.SUITE_FILE
    counts = suite_draft.write_draft(spec, draft)
    print(f"Draft suite: {draft} ({', '.join(f'{n} {s}' for s, n in counts.items())})\n"
          f"Review it, then copy it to {suite_loading.suite_path(spec)}")
    _draft_drift(settings, spec)


def _draft_drift(settings: settings_lib.Settings, spec) -> None:
    """The spec's `drift:` block, thresholds above the data's own sampling noise (TFDV)."""
    from components.score import drift_draft
    from pipeline.console.output_capture import captured_output

    path = settings.output_dir / "expectations_draft" / "drift.yaml"
    with captured_output(settings.log_path):  # TensorFlow's import noise goes to the log
        text = drift_draft.draft(spec)
    path.write_text(text)
    print(f"Draft drift thresholds: {path}\n"
          f"Review them, then put the drift: block in {spec.spec_path}")


def _report_up_to_date(settings: settings_lib.Settings) -> bool:
    """Say so in one line when every input equals the last successful run's (no TF import)."""
    from pipeline.console.wall_clock import process_seconds
    from pipeline.runners import last_run

    last = last_run.up_to_date(settings, settings.load_spec())
    if last is None:
        return False
    print(f"Up to date: the CSV, spec, schema, suite, code and settings are those of "
          f"{last.describe()}. Nothing to run (--force goes through TFX anyway).\n"
          f"Done in {process_seconds():.1f}s. Outputs in {settings.output_dir}/")
    return True


def main(argv: list[str] | None = None) -> int:
    unused_imports.keep_out()  # before anything imports jsonschema: ~2-3 s of every run
    args = _parser().parse_args(argv)
    settings = settings_lib.from_args(args)
    # tf.Transform and TFMA need Keras 2 (tf_keras); decide it before TensorFlow is imported.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    # MLflow 3 sends usage telemetry from a background thread; runs here reach no network.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # google-api-core warns once per module on Python 3.10; the stack is pinned to 3.10 on purpose.
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.command == "init":  # no dataset yet: its own arguments, no Settings
        return init_command.main(args)
    if args.command in orchestration.COMMANDS:
        if args.command in NEEDS_SCHEMA:
            refused = _refusing_bad_input(
                settings, lambda: schema_file.check_schema(settings, settings.load_spec()))
            if refused:
                return refused
        # argv None: this process is the task's command (a warm worker may run it, docs/team.md)
        return orchestration.main(args, settings, own_process=argv is None)
    if args.command == "expectations":  # reads the CSV, writes a draft: no run to lock out
        def draft() -> None:
            _preflight(settings, args.command)
            _draft_expectations(settings)

        return _refusing_bad_input(settings, draft)
    # `python -m pipeline run|score`: a warm worker may run it, or be left for the next one.
    warm_key = warm_reruns.worker_key() if argv is None and args.command in \
        warm_reruns.COMMANDS and not warm_reruns.disabled() else None
    with termination.terminating_as_interrupt():  # kill ends a run as Ctrl-C does
        code = _refusing_bad_input(settings, lambda: _run(settings, args.command, warm_key))
    if warm_key and _went_through_tfx(code):
        warm_reruns.leave_worker(settings.output_root, warm_key)
    return code


def _went_through_tfx(code: int) -> bool:
    """Whether the libraries a warm worker preloads were imported here for the command (not an
    "Up to date" answer, a refusal before TFX, or an interruption)."""
    return code in (0, 1) and "tfx.orchestration.portable.launcher" in sys.modules


EXIT_BUSY = 75  # sysexits.h EX_TEMPFAIL: try again later


def _run(settings: settings_lib.Settings, command: str, warm_key: str | None = None
         ) -> int | None:
    """The up-to-date check, then the command in a warm worker's child when one is there
    (warm_key: the worker's key; pipeline/runners/warm_reruns.py), else the preflight and the TFX
    run holding the output folder. Returns the child's exit code."""
    from pipeline.runners import local_dag, run_lock

    if command == "run" and _report_up_to_date(settings):
        return None
    if warm_key:
        code = warm_reruns.run_in_worker(settings.output_root, warm_key)
        if code is not None:
            return code
    _preflight(settings, command)  # bad input is refused before anything is created
    if command == "run":
        # The run's first lines, then the suite's check (Great Expectations' import was most of
        # the 4.7-7 s before the first line), still before anything is created or TFX imported.
        local_dag.write_header(settings, settings.load_spec())
        _check_suite(settings)
    # Then, before TFX: a Flink run whose cluster, worker pool or job server is missing stops
    # here with nothing written (a refused CSV has said so first).
    from pipeline.cluster import flink_preflight

    flink_preflight.check(settings)
    run_id = run_lock.new_run_id()
    with run_lock.holding_output_folder(settings, f"`python -m pipeline {command}`", run_id,
                                        wait=settings.wait):
        # A run that waited for another sees that run's result here.
        if command == "run" and _report_up_to_date(settings):
            return None
        if command == "run":
            local_dag.run_pipeline(settings, run_id=run_id, header_written=True)
        elif command == "score":
            local_dag.score_file(settings, run_id=run_id)
        else:
            local_dag.draft_schema(settings, run_id=run_id)
    return None


def _naming_the_file(settings: settings_lib.Settings, cause: BaseException) -> str:
    """A gate's error about the data (the contract, TFDV's anomalies, a critical column's drift)
    begins with the file it is about, as the preflight's refusals do."""
    from components.contract.data_errors import DataValidationError

    message = str(cause)
    csv = settings.input_csv() if isinstance(cause, DataValidationError) else None
    if csv is None or str(csv) in message:
        return message
    return f"{csv}: {message}"


def _refusing_bad_input(settings: settings_lib.Settings, work) -> int:
    """Run `work`; turn what it raises into one error line and the exit status (work's own
    exit code when it returns one)."""
    from pipeline.cluster.flink_preflight import ClusterUnavailable
    from pipeline.inputs.csv_preflight import InputError
    from pipeline.runners.run_lock import OutputFolderBusy

    try:
        code = work()
    except (SpecError, InputError, ClusterUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OutputFolderBusy as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BUSY
    except termination.Terminated:
        print("terminated", file=sys.stderr)
        return termination.EXIT_TERMINATED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every failure becomes one readable message
        from pipeline.runners.single_node import root_cause

        orchestration.log_traceback(settings, e)
        cause = root_cause(e)
        print(f"error: {_naming_the_file(settings, cause)}\n  full log: {settings.log_path}",
              file=sys.stderr)
        return 1
    return code if code is not None else 0
