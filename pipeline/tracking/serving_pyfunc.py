"""MLflow pyfunc loader for the exported SavedModel's serving_raw signature.

MLflow copies this file into every logged model (as code/serving_pyfunc.py) and imports it by
that name when the model loads, for `mlflow models serve` as for `mlflow.pyfunc.load_model`. So it
imports nothing from this repository: a logged model keeps working after the code here changes,
in any environment with TensorFlow, pandas and MLflow. It is a loader module rather than a pickled
PythonModel because MLflow is phasing out unpickling models by default.

Rows in, one row out per row in: a probability column per class and the predicted class name.
Missing values may be sent as null: numbers become NaN and strings "", the encoding serving_raw
expects (see components/signatures.py).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

SAVED_MODEL_DIR = "saved_model"
CLASSES_KEY = "classes"  # model_config key: class names in class-id order
PROBABILITY_PREFIX = "probability_"
CLASS_COLUMN = "class"
# The signature's names, repeated from components/signatures.py (tests check they agree).
SIGNATURE = "serving_raw"
SIGNATURE_PROBABILITIES = "probabilities"
SIGNATURE_CLASS = "class"


def probability_column(class_name: str) -> str:
    return PROBABILITY_PREFIX + class_name


def _invalid_input(message: str) -> Exception:
    # An MlflowException carries an HTTP status: the scoring server answers 400 with the message,
    # where any other exception becomes a generic "unexpected error" that hides it.
    from mlflow.exceptions import MlflowException

    return MlflowException.invalid_parameter_value(message)


class RawFeaturesModel:
    """The pyfunc model: a DataFrame of raw feature columns in, probabilities and class out."""

    def __init__(self, saved_model_dir: str, classes: list[str]):
        import tensorflow as tf

        self._saved_model = tf.saved_model.load(saved_model_dir)  # keeps the function alive
        self._predict = self._saved_model.signatures[SIGNATURE]
        _, input_specs = self._predict.structured_input_signature
        self.string_features = sorted(n for n, s in input_specs.items() if s.dtype == tf.string)
        self.numeric_features = sorted(n for n, s in input_specs.items() if s.dtype != tf.string)
        self.classes = [str(c) for c in classes]

    @property
    def feature_names(self) -> list[str]:
        return sorted(self.string_features + self.numeric_features)

    def _numbers(self, frame: pd.DataFrame, name: str) -> np.ndarray:
        try:
            return pd.to_numeric(frame[name], errors="raise").to_numpy(dtype=np.float64)
        except (ValueError, TypeError) as e:
            raise _invalid_input(f"column '{name}' must hold numbers or null: {e}") from None

    @staticmethod
    def _strings(frame: pd.DataFrame, name: str) -> np.ndarray:
        column = frame[name].astype(object)
        return column.where(column.notna(), "").astype(str).to_numpy(dtype=object)

    def predict(self, model_input: Any, params: dict | None = None) -> pd.DataFrame:
        import tensorflow as tf

        frame = pd.DataFrame(model_input)
        missing = [n for n in self.feature_names if n not in frame.columns]
        if missing:
            raise _invalid_input(f"missing feature column(s): {', '.join(missing)}")
        features = {n: tf.constant(self._numbers(frame, n), tf.float64)
                    for n in self.numeric_features}
        features.update({n: tf.constant(self._strings(frame, n), tf.string)
                         for n in self.string_features})
        outputs = self._predict(**features)
        probabilities = outputs[SIGNATURE_PROBABILITIES].numpy().astype(np.float64)
        result = pd.DataFrame(probabilities, index=frame.index,
                              columns=[probability_column(c) for c in self.classes])
        result[CLASS_COLUMN] = [c.decode() for c in outputs[SIGNATURE_CLASS].numpy()]
        return result


def _load_pyfunc(data_path: str, model_config: dict | None = None) -> RawFeaturesModel:
    """MLflow's loader entry point; data_path is the model's copy of the logged data folder."""
    if not model_config or CLASSES_KEY not in model_config:
        raise ValueError(f"model_config must name the classes under '{CLASSES_KEY}'")
    return RawFeaturesModel(os.path.join(data_path, SAVED_MODEL_DIR), model_config[CLASSES_KEY])
