"""A stage stopped for a check that failed beside it (pipeline/runners/check_branch.py) is
CANCELED in ML Metadata, "stopped" in the summary and KILLED in MLflow, not a failure."""
from __future__ import annotations

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.mlmd import queries
from pipeline.mlmd.stopped_stage import record_stopped
from pipeline.tracking import stage_runs

Execution = metadata_store_pb2.Execution
PIPELINE = "csv2model-penguins"


def _store(path):
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = \
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(config)


def _record(path, run_id: str, node_id: str, state) -> int:
    """One execution of `node_id` in run `run_id`, with the contexts TFX gives it."""
    store = _store(path)
    types = {name: store.put_context_type(metadata_store_pb2.ContextType(name=name))
             for name in ("pipeline", "pipeline_run", "node")}
    execution_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name="x.Stage"))

    def context(kind: str, name: str):
        found = store.get_context_by_type_and_name(kind, name)
        if found is not None:
            return found
        [context_id] = store.put_contexts([metadata_store_pb2.Context(type_id=types[kind],
                                                                      name=name)])
        return store.get_contexts_by_id([context_id])[0]

    execution_id, _, _ = store.put_execution(
        Execution(type_id=execution_type, last_known_state=state), [],
        [context("pipeline", PIPELINE), context("pipeline_run", run_id),
         context("node", f"{PIPELINE}.{node_id}")])
    return execution_id


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
