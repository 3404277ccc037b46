"""The output folders a failed execution wrote into, which ML Metadata does not record.

TFX's launcher gives every output artifact of an execution the folder
<pipeline root>/<node id>/<output key>/<execution id> before the executor runs, and publishes the
artifacts only when the executor succeeds: a failed execution has no output events. And it
removes those folders when the executor raises (launcher._run_executor, remove_output_dirs). So a
stage that stops the run yet has figures to keep (DriftGate, components/score/drift.py, writes
its report and then raises) writes them also into kept_folder(uri), <folder>.stopped beside its
output folder, which TFX leaves alone; the summary and MLflow read them from there.

The pipeline root is not in ML Metadata either; it is read off the execution's inputs: an input
artifact made by an execution of the same pipeline root sits at
<pipeline root>/<its node id>/<its output key>/<its execution id>, which its producer's OUTPUT
event confirms (an imported artifact, anywhere, does not match and is skipped).
"""
from __future__ import annotations

import os
from pathlib import Path

from ml_metadata.proto import metadata_store_pb2

from components.contract.data_errors import kept_folder

Event = metadata_store_pb2.Event
_PRODUCED = (Event.OUTPUT, Event.DECLARED_OUTPUT)


def pipeline_root(store, execution_id: int) -> Path | None:
    """The pipeline root of an execution, from its input artifacts' folders (None when none
    tells)."""
    inputs = [e for e in store.get_events_by_execution_ids([execution_id])
              if e.type in (Event.INPUT, Event.DECLARED_INPUT)]
    if not inputs:
        return None
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in inputs])}
    for event in store.get_events_by_artifact_ids(list(artifacts)):
        if event.type not in _PRODUCED or not event.path.steps:
            continue
        uri = Path(artifacts[event.artifact_id].uri)
        key = event.path.steps[0].key
        if uri.name == str(event.execution_id) and uri.parent.name == key:
            return uri.parent.parent.parent
    return None


def output_folders(store, execution: metadata_store_pb2.Execution, node_id: str
                   ) -> dict[str, str]:
    """{output key: folder} of what a failed (or stopped) execution of `node_id` kept: the
    folders <pipeline root>/<node id>/<key>/<execution id>.stopped (kept_folder), or the output
    folder itself where it is still there. {} for an execution that published its outputs, or
    when the pipeline root cannot be told."""
    if execution.last_known_state not in (metadata_store_pb2.Execution.FAILED,
                                          metadata_store_pb2.Execution.CANCELED):
        return {}
    root = pipeline_root(store, execution.id)
    node_dir = root / node_id if root is not None else None
    if node_dir is None or not node_dir.is_dir():
        return {}
    found = {}
    for key in sorted(os.listdir(node_dir)):
        folder = node_dir / key / str(execution.id)
        for candidate in (Path(kept_folder(str(folder))), folder):
            if candidate.is_dir():
                found[key] = str(candidate)
                break
    return found
