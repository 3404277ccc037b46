"""TFX Tuner module code: tuner_fn searches the model settings with KerasTuner.

The search space is `--tuner-search-space` (NAME=V1,V2,...; each NAME a model setting of
pipeline/config/settings.py), the trial budget `--tuner-max-trials` and `--tuner-epochs`. The
Tuner's best hyperparameters reach the Trainer through TFX's hyperparameters channel;
`model_settings` lays them over the settings there. The Tuner component, its tuner_fn and the
executor that records every trial for MLflow are in components/train/tuner_search.py: this module
stays light (no KerasTuner, no Keras 3), since the Trainer and the builder import it.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from pipeline.config.settings import MODEL_SETTINGS, Settings

ALGORITHMS = ("bayesian", "hyperband", "random")


def parse_search_space(text: str) -> dict[str, list]:
    """`hidden_units=64,128;dropout=0,0.2` -> {"hidden_units": [64, 128], "dropout": [0.0, 0.2]},
    each value typed like the setting's default. A clear error for an unknown name or a value
    of the wrong type."""
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    space: dict[str, list] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, values = part.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ValueError(f"tuner search space: {part!r} is not NAME=V1,V2,...")
        if name not in MODEL_SETTINGS:
            raise ValueError(f"tuner search space: {name!r} is not a model setting; "
                             f"choose from {', '.join(MODEL_SETTINGS)}")
        kind = type(defaults[name])
        try:
            space[name] = [_typed(kind, v.strip()) for v in values.split(",")]
        except ValueError:
            raise ValueError(f"tuner search space: {name} takes {kind.__name__} values, "
                             f"got {values!r}") from None
    if not space:
        raise ValueError("tuner search space is empty: give NAME=V1,V2,... pairs")
    return space


def _typed(kind: type, text: str) -> Any:
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(text)
        return text.lower() in ("true", "1")
    return kind(text)


def model_settings(training: Mapping[str, Any],
                   hyperparameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """The model settings the Trainer builds with: the run's settings, with the Tuner's best
    values (a KerasTuner HyperParameters config, as TFX hands it over) laid on top."""
    values = {name: training[name] for name in MODEL_SETTINGS if name in training}
    if hyperparameters:
        values.update({k: v for k, v in hyperparameters.get("values", {}).items()
                       if k in MODEL_SETTINGS})
    return values
