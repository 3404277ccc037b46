"""Read-only queries on the pipeline's ML Metadata store: executions per run, their artifacts."""
from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any, Iterator

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.mlmd import unpublished_outputs

Execution = metadata_store_pb2.Execution
COMPLETE, CACHED, FAILED = Execution.COMPLETE, Execution.CACHED, Execution.FAILED
# Resolver nodes record what they resolved as INTERNAL_OUTPUT events.
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT,
                  metadata_store_pb2.Event.INTERNAL_OUTPUT)
# CANCELED: a stage stopped because a check beside it failed (stopped_stage.py).
STATE_NAMES = {COMPLETE: "ran", CACHED: "cached", FAILED: "failed", Execution.RUNNING: "running",
               Execution.CANCELED: "stopped"}


def open_store(path: Path) -> metadata_store.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


@contextlib.contextmanager
def open_store_context(path: Path) -> Iterator[metadata_store.MetadataStore]:
    # MetadataStore has no close(); its SQLite connection closes when the object is collected.
    # The context manager marks, for readers, the span in which the store is used.
    yield open_store(path)


@dataclasses.dataclass
class NodeExecution:
    node_id: str
    state: str
    execution: Execution
    outputs: dict[str, list[metadata_store_pb2.Artifact]]
    # A failed execution publishes no outputs, yet may have written some (a gate's report
    # before it stopped the run): {output key: folder} (unpublished_outputs.py).
    unpublished: dict[str, str] = dataclasses.field(default_factory=dict)

    def output_uri(self, key: str) -> str | None:
        """The uri of the stage's first output artifact under `key`."""
        artifacts = self.outputs.get(key)
        return artifacts[0].uri if artifacts else None

    def written_uri(self, key: str) -> str | None:
        """output_uri, or for a failed execution the folder it wrote that output into."""
        return self.output_uri(key) or self.unpublished.get(key)

    def output_property(self, key: str, prop: str) -> Any:
        """A custom property of the stage's first output artifact under `key` (None if unset)."""
        artifacts = self.outputs.get(key) or []
        if not artifacts or prop not in artifacts[0].custom_properties:
            return None
        value = artifacts[0].custom_properties[prop]
        kind = value.WhichOneof("value")
        return getattr(value, kind) if kind else None

    def split_names(self, key: str) -> list[str]:
        """The split names of the stage's first output artifact under `key`."""
        return json.loads(self.outputs[key][0].properties["split_names"].string_value)

    @property
    def is_resolver(self) -> bool:
        """Resolvers look artifacts up rather than execute, whatever ML Metadata calls their
        state."""
        return "Resolver" in self.node_id or self.execution.type.endswith(".Resolver")


def output_artifacts(store, execution_id: int) -> dict[str, list[metadata_store_pb2.Artifact]]:
    events = [e for e in store.get_events_by_execution_ids([execution_id])
              if e.type in _OUTPUT_EVENTS]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    by_key: dict[str, list] = {}
    for e in events:
        key = e.path.steps[0].key if e.path.steps else ""
        by_key.setdefault(key, []).append(artifacts[e.artifact_id])
    return by_key


def node_execution(store, pipeline_name: str, node_id: str,
                   run_id: str | None = None) -> NodeExecution | None:
    """The newest execution of a node, in run `run_id` if given (None for nodes that record
    none, such as resolvers, or none in that run)."""
    node_ctx = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    if node_ctx is None:
        return None
    executions = store.get_executions_by_context(node_ctx.id)
    if run_id is not None:
        run_ctx = store.get_context_by_type_and_name("pipeline_run", run_id)
        in_run = {e.id for e in store.get_executions_by_context(run_ctx.id)} if run_ctx else set()
        executions = [e for e in executions if e.id in in_run]
    if not executions:
        return None
    execution = max(executions, key=lambda e: e.id)
    return NodeExecution(
        node_id=node_id,
        state=STATE_NAMES.get(execution.last_known_state, "unknown"),
        execution=execution,
        outputs=output_artifacts(store, execution.id),
        unpublished=unpublished_outputs.output_folders(store, execution, node_id),
    )


def run_ids(store, pipeline_name: str) -> list[str]:
    """Ids of the pipeline's runs, oldest first."""
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return []
    seen: dict[str, int] = {}
    for execution in store.get_executions_by_context(pipeline.id):
        for ctx in store.get_contexts_by_execution(execution.id):
            if ctx.type == "pipeline_run":
                seen.setdefault(ctx.name, ctx.id)
    return sorted(seen, key=seen.get)


def run_executions(store, pipeline_name: str, run_id: str) -> list[NodeExecution]:
    """Every execution recorded in a run, in execution order."""
    run_ctx = store.get_context_by_type_and_name("pipeline_run", run_id)
    if run_ctx is None:
        return []
    result = []
    for execution in sorted(store.get_executions_by_context(run_ctx.id), key=lambda e: e.id):
        node_ids = [c.name.split(".", 1)[1] for c in store.get_contexts_by_execution(execution.id)
                    if c.type == "node" and c.name.startswith(pipeline_name + ".")]
        node_id = node_ids[0] if node_ids else "?"
        result.append(NodeExecution(
            node_id=node_id,
            state=STATE_NAMES.get(execution.last_known_state, "unknown"),
            execution=execution,
            outputs=output_artifacts(store, execution.id),
            unpublished=(unpublished_outputs.output_folders(store, execution, node_id)
                         if node_ids else {}),
        ))
    return result
