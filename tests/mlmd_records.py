"""Executions recorded in an ML Metadata store the way TFX records them (the contexts pipeline,
pipeline run and node), without running a pipeline: for tests of what reads them."""
from __future__ import annotations

from pathlib import Path

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2


def open_store(path: Path) -> metadata_store.MetadataStore:
    """The store at `path`, writable, created if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = \
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(config)


def record(path: Path, pipeline: str, run_id: str, node_id: str, state) -> int:
    """One execution of `node_id` in TFX run `run_id` of `pipeline`, in state `state`; its id."""
    store = open_store(path)
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
        metadata_store_pb2.Execution(type_id=execution_type, last_known_state=state), [],
        [context("pipeline", pipeline), context("pipeline_run", run_id),
         context("node", f"{pipeline}.{node_id}")])
    return execution_id
