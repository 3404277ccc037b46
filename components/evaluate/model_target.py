"""What a trained model predicts (its label, task and classes), read from ML Metadata.

The Trainer's custom_config holds the dataset spec it trained with (pipeline/definition/
builder.py), so the execution that produced a Model artifact says what that model answers. Two
models are comparable only when they answer the same question: after `init --force` with
another label, the last champion predicts the old label, and comparing the new model with it
(the Evaluator's baseline) or scoring a file with it is meaningless. Before this check the
Evaluator failed on the two models' different outputs (3 species probabilities against 2
classes), or blessed a model for beating a champion of another label.
"""
from __future__ import annotations

import json
from typing import Optional

from ml_metadata.proto import metadata_store_pb2

_OUTPUT = metadata_store_pb2.Event.OUTPUT
CONFIG_PROPERTY = "custom_config"


def trained_target(store, model_id: int) -> Optional[dict]:
    """{"label", "task", "classes"} of the spec the model's Trainer ran with; None when the
    store does not say (a model trained before the spec was part of the Trainer's config)."""
    events = [e for e in store.get_events_by_artifact_ids([model_id]) if e.type == _OUTPUT]
    if not events:
        return None
    [execution] = store.get_executions_by_id([min(e.execution_id for e in events)])
    value = (execution.custom_properties.get(CONFIG_PROPERTY)
             or execution.properties.get(CONFIG_PROPERTY))
    try:
        spec = json.loads(value.string_value).get("spec") if value is not None else None
    except (ValueError, AttributeError):
        return None
    if not isinstance(spec, dict) or "label" not in spec:
        return None
    return {"label": spec["label"], "task": spec.get("task"),
            "classes": list(spec.get("classes") or [])}


def describe(target: dict) -> str:
    """`'species' (multiclass: Adelie, Chinstrap, Gentoo)` or `'fare' (regression)`."""
    classes = f": {', '.join(map(str, target['classes']))}" if target.get("classes") else ""
    return f"'{target['label']}' ({target.get('task')}{classes})"


def mismatch(trained: Optional[dict], wanted: Optional[dict]) -> bool:
    """Whether two targets are known and differ."""
    return trained is not None and wanted is not None and trained != wanted


def spec_target(spec) -> dict:
    """The target of a DatasetSpec, in trained_target's form."""
    return {"label": spec.label, "task": spec.task, "classes": list(spec.classes)}
