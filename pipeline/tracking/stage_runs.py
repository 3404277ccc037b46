"""Each stage execution of a pipeline run as a child MLflow run: its state, its figures and files
(stage_records), the data it read (dataset_inputs), and for a cached stage the run that made its
outputs. Nothing here touches MLflow at import time."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config.dataset_spec import DatasetSpec
from pipeline.mlmd import queries
from pipeline.tracking import dataset_inputs, lineage
from pipeline.tracking.run_logging import (
    ERROR_FILE,
    FAILED,
    FINISHED,
    KILLED,
    TAG_CACHED_FROM,
    TAG_CACHED_FROM_EXECUTION,
    TAG_COMPONENT,
    TAG_ERROR,
    TAG_EXECUTION,
    TAG_NODE,
    TAG_PARENT,
    TAG_PIPELINE_RUN,
    TAG_STATE,
    TAG_TRACKING_ERROR,
    error_summary,
    error_text,
    log,
    log_files,
    recording_failed,
)

if TYPE_CHECKING:
    from mlflow.entities import DatasetInput

    from pipeline.tracking.stage_records import StageRecord


def _interrupted_in(node: queries.NodeExecution, error: BaseException | None) -> bool:
    """The run was stopped (Ctrl-C, SIGTERM) while this stage ran. ML Metadata has it RUNNING
    when the stop landed in Python code, FAILED when it landed in a Beam DoFn: Beam re-raises it
    as a RuntimeError, which TFX's launcher records as a failed execution before the runner turns
    it back into the stop (pipeline/runners/termination.py)."""
    return isinstance(error, KeyboardInterrupt) and \
        node.execution.last_known_state not in (queries.COMPLETE, queries.CACHED)


def run_status(node: queries.NodeExecution, error: BaseException | None) -> str:
    state = node.execution.last_known_state
    if state in (queries.COMPLETE, queries.CACHED):
        return FINISHED
    if _interrupted_in(node, error) or state == queries.Execution.CANCELED:
        return KILLED  # CANCELED: stopped for a check that failed beside it (check_branch.py)
    # FAILED, or still RUNNING (or NEW) in ML Metadata under a run that failed elsewhere.
    return FAILED


def state_name(node: queries.NodeExecution, error: BaseException | None) -> str:
    if node.is_resolver and node.state == "ran":
        return "resolved"
    if _interrupted_in(node, error):
        return "interrupted"
    if node.state in ("ran", "cached", "failed"):
        return node.state
    return "stopped"


def find_run(client, experiment: str, execution_id: int, tfx_run: str) -> str | None:
    """The MLflow run of one execution of one TFX run, if it was tracked."""
    runs = client.search_runs(
        [experiment],
        filter_string=(f"tags.`{TAG_EXECUTION}` = '{execution_id}' and "
                       f"tags.`{TAG_PIPELINE_RUN}` = '{tfx_run}'"),
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def log_stage(client, store, experiment: str, parent: str, node: queries.NodeExecution,
              spec: DatasetSpec, tfx_run: str, error: BaseException | None,
              workdir: Path, source: dict[str, str],
              inputs: dict[str | None, DatasetInput]) -> tuple[str, StageRecord, float]:
    """One stage's child run of `parent`: (its run id, what was recorded, its seconds). A stage
    whose records could not all be written ends FAILED with a tracking_error tag."""
    from pipeline.tracking import stage_records

    execution = node.execution
    started = execution.create_time_since_epoch or int(time.time() * 1000)
    ended = max(execution.last_update_time_since_epoch, started)
    status = run_status(node, error)
    tags = {TAG_PARENT: parent, TAG_PIPELINE_RUN: tfx_run, TAG_NODE: node.node_id,
            TAG_EXECUTION: str(execution.id), TAG_STATE: state_name(node, error),
            TAG_COMPONENT: execution.type, **source}
    run = client.create_run(experiment, start_time=started, tags=tags, run_name=node.node_id)
    run_id = run.info.run_id
    record = stage_records.StageRecord()
    try:
        ran = execution.last_known_state == queries.COMPLETE
        if execution.last_known_state in (queries.COMPLETE, queries.CACHED):
            folder = workdir / node.node_id
            folder.mkdir(parents=True, exist_ok=True)
            # A cached stage's files are in the run that made them; it gets a link instead.
            record = stage_records.record(node, spec, folder if ran else None)
        elif execution.last_known_state == queries.FAILED:
            # A gate that stopped the run wrote its figures before (the DriftGate's report).
            folder = workdir / node.node_id
            folder.mkdir(parents=True, exist_ok=True)
            record = stage_records.failed_record(node, spec, folder)
        if execution.last_known_state == queries.CACHED:
            producer = lineage.producer(store, node)
            if producer is not None:
                record.tags[TAG_CACHED_FROM_EXECUTION] = str(producer[0])
                source = find_run(client, experiment, *producer)
                record.tags[TAG_CACHED_FROM] = source or "not tracked"
        seconds = (ended - started) / 1000
        record.metrics["duration_s"] = seconds
        if status != FINISHED and error is not None:
            record.tags[TAG_ERROR] = error_summary(error)
            path = workdir / node.node_id / ERROR_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(error_text(error))
            record.files.append((path, ""))
        log(client, run_id, record.params, record.metrics, record.series, record.tags)
        log_files(client, run_id, record.files)
        read = dataset_inputs.stage_inputs(node.node_id, inputs)
        if read:
            client.log_inputs(run_id, datasets=read)
    except Exception as e:  # noqa: BLE001 - one stage's figures must not lose the others
        recording_failed(client, run_id, node.node_id, e)
        record.tags[TAG_TRACKING_ERROR] = "true"  # the pipeline's run ends FAILED too
        status = FAILED  # an incompletely recorded stage must not look like a whole one
    client.set_terminated(run_id, status, end_time=ended)
    return run_id, record, (ended - started) / 1000
