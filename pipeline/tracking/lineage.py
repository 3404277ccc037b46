"""What ML Metadata says about a pipeline's TFX runs, for tracking: which runs there are, and
which earlier execution made the outputs a cached execution reused."""
from __future__ import annotations

from pathlib import Path

from pipeline.config.settings import Settings
from pipeline.mlmd import queries


def tfx_run_ids(settings: Settings) -> list[str]:
    """The pipeline's TFX run ids recorded in ML Metadata so far, oldest first."""
    if not Path(settings.metadata_path).exists():
        return []
    with queries.open_store_context(settings.metadata_path) as store:
        return queries.run_ids(store, settings.full_pipeline_name)


def producer(store, node: queries.NodeExecution) -> tuple[int, str] | None:
    """(execution id, TFX run id) of the execution that made a cached execution's outputs."""
    from ml_metadata.proto import metadata_store_pb2

    artifact_ids = [a.id for artifacts in node.outputs.values() for a in artifacts]
    if not artifact_ids:
        return None
    producers = {e.execution_id for e in store.get_events_by_artifact_ids(artifact_ids)
                 if e.type == metadata_store_pb2.Event.OUTPUT
                 and e.execution_id != node.execution.id}
    completed = [e for e in store.get_executions_by_id(sorted(producers))
                 if e.last_known_state == queries.COMPLETE]
    if not completed:
        return None
    original = min(completed, key=lambda e: e.id)
    runs = [c.name for c in store.get_contexts_by_execution(original.id)
            if c.type == "pipeline_run"]
    return original.id, runs[0] if runs else ""
