"""One stage of the pipeline per process, for orchestrators that run one task per stage.

Airflow (pipeline/runners/airflow/dag.py) runs each TFX node as its own task: the task calls
`python -m pipeline run-node --node <id> --run-id <Airflow run id>` in the pipeline's venv. The
run's first task compiles create_pipeline (the one definition) to TFX's IR; each task launches
its node of that IR the way TFX's LocalDagRunner launches each node in turn. Every task of one
Airflow run uses the Airflow run id as the TFX pipeline run id, so a node's inputs resolve to what
its upstream tasks produced in the same run, caching works across runs (the same ML Metadata
store as `make pipeline`), and the last task logs the whole run to MLflow with the same
pipeline_runs.log_pipeline_run that `make pipeline` calls.

Before the stages, the run's first task calls check_inputs (`python -m pipeline check-inputs`),
which does not import TensorFlow or TFX: when the inputs are byte-identical to the last successful
run's (pipeline/runners/last_run.py), it exits EXIT_UP_TO_DATE and the orchestrator skips every
stage and the tracking; otherwise it keeps the inputs' fingerprint for the run, and after a whole
successful run the tracking task records it as the last success.

Nothing here is Airflow-specific: any scheduler that can run a command per stage and pass a run
id can drive the pipeline this way.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Sequence

from pipeline.config.dataset_spec import DatasetSpec, SpecError
from pipeline.config.settings import Settings
from pipeline.config.stage_names import EXAMPLE_GEN
from pipeline.inputs import schema_file
from pipeline.runners import last_run

# Exit codes of run-node, read by the Airflow operator. Retrying cannot fix a refused input or a
# broken data contract, so those fail the task at once; anything else is retried.
EXIT_FAILED, EXIT_INPUT_REFUSED, EXIT_DATA_INVALID = 1, 2, 3
NO_RETRY_EXIT_CODES = (EXIT_INPUT_REFUSED, EXIT_DATA_INVALID)
# Exit code of check-inputs when nothing changed since the last successful run: the orchestrator
# skips the run's stages (99 is also what Airflow's BashOperator skips on by default).
EXIT_UP_TO_DATE = 99
CHECK_TASK = "check_inputs"  # the check's task id: where its error goes for the tracking task
INPUTS_FILE = "inputs_fingerprint.json"


class NodeNotRun(RuntimeError):
    """The launcher returned without running or caching the node (its inputs were missing)."""


class StagesFailed(RuntimeError):
    """What ended an orchestrated run: the failed stages and why, for the MLflow run."""


def compile_ir(settings: Settings, spec: DatasetSpec):
    """The pipeline's TFX IR (pipeline_pb2.Pipeline), from create_pipeline."""
    from tfx.orchestration.portable import tfx_runner

    from pipeline.definition.builder import create_pipeline

    # The same steps as LocalDagRunner.run (pip dependencies, then the compiler).
    return tfx_runner._make_pipeline_proto(create_pipeline(settings, spec))  # noqa: SLF001


def stages(ir) -> list[tuple[str, list[str]]]:
    """(node id, upstream node ids) in topological order, as the IR has them."""
    return [(n.pipeline_node.node_info.id, sorted(n.pipeline_node.upstream_nodes))
            for n in ir.nodes]


def _safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def run_folder(settings: Settings, run_id: str) -> Path:
    """What the tasks of one run share: the compiled pipeline, the errors of failed stages."""
    return settings.output_dir / "orchestrated_runs" / _safe(run_id)


def error_file(settings: Settings, run_id: str, node_id: str) -> Path:
    """Where a failed stage leaves its error for the tracking task."""
    return run_folder(settings, run_id) / f"{node_id}.error.txt"


def inputs_file(settings: Settings, run_id: str) -> Path:
    """The inputs' fingerprint as the run started, kept by check_inputs for the tracking task."""
    return run_folder(settings, run_id) / INPUTS_FILE


def load_inputs(settings: Settings, run_id: str) -> dict[str, str] | None:
    try:
        return json.loads(inputs_file(settings, run_id).read_text())
    except (OSError, ValueError):
        return None


def check_inputs(settings: Settings, run_id: str, out=sys.stdout) -> last_run.LastRun | None:
    """The first task of an orchestrated run. Returns the last successful run when this run's
    inputs are byte-identical to its inputs (nothing to run; one line says which run and model);
    else keeps the inputs' fingerprint for the run and returns None (one line says why it runs).

    Imports neither TensorFlow nor TFX nor MLflow: it takes a second, where each stage's task
    spends ~20 s importing them even when the stage is cached. Raises SpecError for a refused
    spec (every stage would fail on it)."""
    error_file(settings, run_id, CHECK_TASK).unlink(missing_ok=True)  # a retry starts clean
    try:
        spec = settings.load_spec()
        schema_file.check_schema(settings, spec)
        last = last_run.up_to_date(settings, spec)
        if last is not None:
            out.write(f"Up to date: the CSV, spec, schema, suite, code and settings are those of "
                      f"{last.describe()}. Nothing to run (--force runs the stages anyway).\n")
            out.flush()
            return last
        try:
            inputs = last_run.fingerprint(settings, spec)
        except OSError as e:  # a missing input: the stage that reads it says so
            out.write(f"Running the stages; the inputs could not be fingerprinted ({e}), so "
                      "this run will not be recorded as the last success.\n")
            return None
        path = inputs_file(settings, run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(inputs, indent=2, sort_keys=True))
        os.replace(tmp, path)
        out.write(f"Running the stages: {_why_not_up_to_date(settings, inputs)}.\n")
        return None
    except BaseException as e:
        errors = error_file(settings, run_id, CHECK_TASK)
        errors.parent.mkdir(parents=True, exist_ok=True)
        errors.write_text(f"{type(e).__name__}: {e}\n")
        raise


def _why_not_up_to_date(settings: Settings, inputs: dict[str, str]) -> str:
    if settings.force:
        return "--force"
    if settings.until:
        return f"--until {settings.until} (a partial run is never up to date)"
    previous = last_run.load(settings)
    if previous is None:
        return "no successful run recorded yet"
    changed = [part for part in inputs if previous.fingerprint.get(part) != inputs[part]]
    if changed:
        return f"{', '.join(changed)} changed since {previous.describe()}"
    return f"the outputs of {previous.describe()} are gone (ML Metadata or the pushed model)"


def run_ir(settings: Settings, run_id: str):
    """The pipeline as compiled by the run's first task; later tasks read it back.

    Every stage of a run then executes the same definition, even if the code or the suite
    changes meanwhile (a new run picks the change up), and a task skips create_pipeline, whose
    imports (Great Expectations among them) cost more than most stages' work."""
    from tfx.proto.orchestration import pipeline_pb2

    path = run_folder(settings, run_id) / "pipeline_ir.pb"
    if path.exists():
        return pipeline_pb2.Pipeline.FromString(path.read_bytes())
    ir = compile_ir(settings, settings.load_spec())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(ir.SerializeToString())
    os.replace(tmp, path)  # whole or absent, should two first tasks race
    return ir


def _node(ir, node_id: str):
    nodes = {n.pipeline_node.node_info.id: n.pipeline_node for n in ir.nodes}
    if node_id not in nodes:
        raise SpecError(f"the pipeline has no stage {node_id!r}; it has {', '.join(nodes)}")
    return nodes[node_id]


def _launch(ir, node_id: str, run_id: str):
    """Launch one node of the IR under the given pipeline run id; returns its execution id."""
    from tfx.dsl.compiler import constants
    from tfx.orchestration import metadata as tfx_metadata
    from tfx.orchestration.local import runner_utils
    from tfx.orchestration.portable import launcher, runtime_parameter_utils

    from pipeline.mlmd import lock_retry

    lock_retry.install()  # Airflow runs independent stages' tasks at once on one store
    node = _node(ir, node_id)
    # LocalDagRunner fills this with the time; a fixed id ties every task of a run together.
    runtime_parameter_utils.substitute_runtime_parameter(
        ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
    deployment = runner_utils.extract_local_deployment_config(ir)
    connection = getattr(deployment.metadata_connection_config,
                         deployment.metadata_connection_config.WhichOneof("connection_config"))
    info = launcher.Launcher(
        pipeline_node=node,
        mlmd_connection=tfx_metadata.Metadata(connection),
        pipeline_info=ir.pipeline_info,
        pipeline_runtime_spec=ir.runtime_spec,
        executor_spec=runner_utils.extract_executor_spec(deployment, node_id),
        custom_driver_spec=runner_utils.extract_custom_driver_spec(deployment, node_id),
    ).launch()
    return info.execution_id if info is not None else None


def _check_ran(settings: Settings, node_id: str, run_id: str, execution_id: int | None) -> None:
    """The launcher logs and returns, rather than raising, when a node's inputs are missing or
    could not be resolved; a task that did nothing must not pass for a finished stage."""
    from pipeline.mlmd import queries

    state = None
    if execution_id is not None:
        with queries.open_store_context(settings.metadata_path) as store:
            [execution] = store.get_executions_by_id([execution_id])
            state = execution.last_known_state
    if state not in (queries.COMPLETE, queries.CACHED):
        raise NodeNotRun(
            f"{node_id} did not run in pipeline run {run_id!r}: its inputs from this run are "
            "missing or could not be resolved (did its upstream stages of this run succeed?)")


def run_node(settings: Settings, node_id: str, run_id: str, out=sys.stdout) -> None:
    """Run (or take from cache) one stage as part of pipeline run `run_id`; raises on failure."""
    from pipeline.console.stage_summary import StageReporter
    from pipeline.inputs import csv_preflight
    from pipeline.runners.beam_in_process import levers_for_beam

    errors = error_file(settings, run_id, node_id)
    errors.unlink(missing_ok=True)  # a retry starts clean
    started = time.monotonic()
    try:
        schema_file.check_schema(settings, settings.load_spec())
        ir = run_ir(settings, run_id)
        if node_id == EXAMPLE_GEN:
            # As `make pipeline` does before it starts: an unreadable CSV is one clear line.
            csv_preflight.check_csv(settings.load_spec())
        with levers_for_beam(settings):
            execution_id = _launch(ir, node_id, run_id)
        _check_ran(settings, node_id, run_id, execution_id)
    except BaseException as e:
        errors.parent.mkdir(parents=True, exist_ok=True)
        cause = root_cause(e)
        errors.write_text(f"{type(cause).__name__}: {cause}\n")
        raise
    StageReporter(settings.metadata_path, ir.pipeline_info.id, out).report(
        node_id, time.monotonic() - started)


def root_cause(error: BaseException) -> BaseException:
    """TFX wraps executor errors; the data errors it wraps are the ones that say what is wrong."""
    from components.contract.data_errors import DataValidationError

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (DataValidationError, SpecError)):
            return seen
        # An error raised while another was handled is not caused by it (a bug in an `except
        # SpecError:` block is not refused input), unless raised `from` it: TFX's wrappers are.
        seen = seen.__cause__
    return error


def exit_code(error: BaseException) -> int:
    from components.contract.data_errors import DataValidationError
    from pipeline.inputs.csv_preflight import InputError

    cause = root_cause(error)
    if isinstance(cause, (SpecError, InputError)):
        return EXIT_INPUT_REFUSED
    if isinstance(cause, DataValidationError):
        return EXIT_DATA_INVALID
    return EXIT_FAILED


def track_run(settings: Settings, run_id: str, failed_nodes: Sequence[str] = (), out=sys.stdout):
    """Log orchestrated run `run_id` to MLflow, as `make pipeline` logs its runs; after a whole
    successful run, record it as the last success (with the inputs check_inputs saw as the run
    started), so that the next run with the same inputs skips its stages.

    failed_nodes: the stages the orchestrator saw fail; their errors (left by run_node) become
    the run's error, so a failed run is logged FAILED with the reason."""
    from pipeline.tracking import lineage, pipeline_runs

    spec = settings.load_spec()
    error = None
    if failed_nodes:
        reasons = []
        for node in failed_nodes:
            path = error_file(settings, run_id, node)
            reasons.append(f"{node}: " + (path.read_text().strip() if path.exists()
                                          else "failed (see the orchestrator's task log)"))
        error = StagesFailed("\n".join(reasons))
    # None when no stage got as far as ML Metadata: the MLflow run then says "(no run)".
    tfx_run = run_id if run_id in lineage.tfx_run_ids(settings) else None
    tracked = pipeline_runs.log_pipeline_run(settings, spec, tfx_run, error=error)
    out.write(tracked.summary())
    if error is None and tfx_run is not None:
        _record_success(settings, run_id, tracked, out)
    return tracked


def _record_success(settings: Settings, run_id: str, tracked, out) -> None:
    from pipeline.runners import run_record

    if settings.until:
        return  # as with `make pipeline`: a partial run is never the last success
    inputs = load_inputs(settings, run_id)
    missing = run_record.missing_stages(settings, run_id)
    if inputs is None or missing:
        why = (f"{', '.join(missing)} did not finish in it" if missing else
               f"its inputs were not fingerprinted as it started ({CHECK_TASK} did not run)")
        out.write(f"Not recorded as the last successful run: {why}.\n")
        return
    path = run_record.record_success(settings, inputs, tracked, run_id)
    out.write(f"Recorded as the last successful run in {path}: the next run with the same "
              "inputs skips its stages.\n")
