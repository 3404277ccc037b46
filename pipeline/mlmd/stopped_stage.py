"""A stage stopped because a check beside it failed is recorded CANCELED in ML Metadata.

The checks' process (pipeline/runners/check_branch.py) stops the Transform running beside a
check that failed. TFX's launcher then records that execution FAILED (the stop came out of a
Beam DoFn as a RuntimeError) or leaves it RUNNING (it came out as itself). Neither is what
happened: nothing was wrong with the stage. CANCELED is ML Metadata's state for that, so the
run's records, its MLflow stage run (KILLED) and the summary all say "stopped".
"""
from __future__ import annotations

from pathlib import Path

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.mlmd import queries

Execution = metadata_store_pb2.Execution


def record_stopped(metadata_path: Path, pipeline_name: str, node_id: str, run_id: str) -> bool:
    """Mark the node's execution in run `run_id` CANCELED if the stop left it RUNNING or
    FAILED; True when it did."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(metadata_path)
    store = metadata_store.MetadataStore(config)
    node = queries.node_execution(store, pipeline_name, node_id, run_id)
    if node is None or node.execution.last_known_state not in (Execution.RUNNING,
                                                                Execution.FAILED):
        return False
    execution = node.execution
    execution.last_known_state = Execution.CANCELED
    store.put_executions([execution])
    return True
