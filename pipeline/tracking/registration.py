"""Registering a pipeline run's model once the Evaluator has judged it (the Trainer's model and
the Evaluator's blessing, read from ML Metadata; the logging itself is registry.py's)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.config import stage_names
from pipeline.config.dataset_spec import DatasetSpec
from pipeline.config.settings import Settings
from pipeline.mlmd import queries

if TYPE_CHECKING:
    from pipeline.tracking.registry import RegisteredVersion


def register(client, parent: str, settings: Settings, spec: DatasetSpec,
             nodes: dict[str, queries.NodeExecution]) -> RegisteredVersion | None:
    """Log and register the trained model once the Evaluator has judged it; None when there is
    no judged model (the run stopped before the Evaluator, or it had no model)."""
    trainer, evaluator = nodes.get(stage_names.TRAINER), nodes.get(stage_names.EVALUATOR)
    judged = (queries.COMPLETE, queries.CACHED)
    if trainer is None or evaluator is None or evaluator.execution.last_known_state not in judged:
        return None
    models, blessings = trainer.outputs.get("model"), evaluator.outputs.get("blessing")
    if not models or not blessings:
        return None
    blessing = blessings[0].custom_properties.get("blessed")
    blessed = bool(blessing and blessing.int_value == 1)
    from tfx.utils import path_utils  # only once there is a model: TFX is slow to import

    from pipeline.tracking import registry

    return registry.log_and_register(
        client, parent, settings.registered_model_name,
        path_utils.serving_model_path(models[0].uri), spec,
        tfx_model_uri=models[0].uri, blessed=blessed,
        evaluated_now=evaluator.execution.last_known_state == queries.COMPLETE,
        description=f"TFX model {models[0].uri}, "
                    f"{'blessed' if blessed else 'not blessed'} by the Evaluator.",
    )
