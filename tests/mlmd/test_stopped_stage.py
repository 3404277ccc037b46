"""A stage stopped for a check that failed beside it (pipeline/runners/check_branch.py) is
CANCELED in ML Metadata, "stopped" in the summary and KILLED in MLflow, not a failure."""
from __future__ import annotations

from ml_metadata.proto import metadata_store_pb2

import mlmd_records
from pipeline.mlmd import queries
from pipeline.mlmd.stopped_stage import record_stopped
from pipeline.tracking import stage_runs

Execution = metadata_store_pb2.Execution
PIPELINE = "csv2model-penguins"


def _store(path):
    return mlmd_records.open_store(path)


def _record(path, run_id: str, node_id: str, state) -> int:
    return mlmd_records.record(path, PIPELINE, run_id, node_id, state)


def test_the_stopped_stage_of_this_run_is_canceled_and_its_stage_run_killed(tmp_path):
    path = tmp_path / "metadata.sqlite"
    earlier = _record(path, "run-1", "Transform", Execution.FAILED)
    # Beam's RuntimeError made TFX's launcher record it FAILED; the stop itself leaves RUNNING.
    for run_id, state in (("run-2", Execution.FAILED), ("run-3", Execution.RUNNING)):
        _record(path, run_id, "Transform", state)
        assert record_stopped(path, PIPELINE, "Transform", run_id)
        node = queries.node_execution(_store(path), PIPELINE, "Transform", run_id)
        assert node.execution.last_known_state == Execution.CANCELED
        assert node.state == "stopped"
        error = ValueError("data contract broken")  # the run's error: the check's, not a stop
        assert stage_runs.run_status(node, error) == "KILLED"
        assert stage_runs.state_name(node, error) == "stopped"
    # Another run's record is as it was.
    [other] = _store(path).get_executions_by_id([earlier])
    assert other.last_known_state == Execution.FAILED


def test_a_stage_that_ended_or_never_ran_in_this_run_is_left_as_it_is(tmp_path):
    path = tmp_path / "metadata.sqlite"
    _record(path, "run-1", "Transform", Execution.COMPLETE)
    assert not record_stopped(path, PIPELINE, "Transform", "run-1")
    assert not record_stopped(path, PIPELINE, "Trainer", "run-1")
    assert not record_stopped(path, PIPELINE, "Transform", "run-2")
    node = queries.node_execution(_store(path), PIPELINE, "Transform", "run-1")
    assert node.execution.last_known_state == Execution.COMPLETE
