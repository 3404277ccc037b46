"""MLflow pyfunc loader for the exported SavedModel's serving_raw signature.

MLflow copies this file into every logged model (as code/serving_pyfunc.py) and imports it by
that name when the model loads, for `mlflow models serve` as for `mlflow.pyfunc.load_model`. So it
imports nothing from this repository: a logged model keeps working after the code here changes,
in any environment with TensorFlow, pandas and MLflow. It is a loader module rather than a pickled
PythonModel because MLflow is phasing out unpickling models by default.

Rows in, one row out per row in: a probability column per class and the predicted class name;
for a regression model (docs/regression.md) one column, `prediction`, in the label's units.
Missing values may be sent as null: numbers become NaN and strings "", the encoding serving_raw
expects (see components/train/export_signatures.py).
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pandas as pd

SAVED_MODEL_DIR = "saved_model"
CLASSES_KEY = "classes"  # model_config key: class names in class-id order ([] for regression)
PROBABILITY_PREFIX = "probability_"
CLASS_COLUMN = "class"
# The signature's names, repeated from components/train/export_signatures.py (tests check they agree).
SIGNATURE = "serving_raw"
SIGNATURE_PROBABILITIES = "probabilities"
SIGNATURE_CLASS = "class"
SIGNATURE_PREDICTION = "prediction"  # a regression model's one output
PREDICTION_COLUMN = "prediction"
# The export's map from column names to serving_raw input names (components/train/export_signatures.py): a
# column called "mean radius" is the input "mean_radius_<hash>". Exports without it: identity.
COLUMNS_FILE = os.path.join("assets.extra", "serving_raw_columns.json")
# Set by `mlflow models serve` for the scoring server process (mlflow.pyfunc.scoring_server
# ._SERVER_MODEL_PATH): this model is loaded to serve requests for the life of the process.
SCORING_SERVER_ENV = "__pyfunc_model_path__"


def probability_column(class_name: str) -> str:
    return PROBABILITY_PREFIX + class_name


def _invalid_input(message: str) -> Exception:
    # An MlflowException carries an HTTP status: the scoring server answers 400 with the message,
    # where any other exception becomes a generic "unexpected error" that hides it.
    from mlflow.exceptions import MlflowException

    return MlflowException.invalid_parameter_value(message)


class RawFeaturesModel:
    """The pyfunc model: a DataFrame of raw feature columns in, probabilities and class out (or
    a regression model's `prediction`: the signature's outputs tell which).

    What does not depend on the rows is worked out once, when the model loads: the signature,
    its input names and dtypes, the output column names, and the signature's first call (which
    optimizes its graph: ~0.2 s that would otherwise fall on the first request). A request then
    costs one pass over the columns the model takes, the signature call and one output DataFrame,
    with no pandas copies: on single rows, per-call overhead is most of the time, not the model.
    """

    def __init__(self, saved_model_dir: str, classes: list[str]):
        import tensorflow as tf

        self._saved_model = tf.saved_model.load(saved_model_dir)  # keeps the function alive
        self._predict = self._saved_model.signatures[SIGNATURE]
        self.is_regression = SIGNATURE_PREDICTION in self._predict.structured_outputs
        _, input_specs = self._predict.structured_input_signature
        columns = _columns(saved_model_dir, list(input_specs))
        self._input_of = columns  # column name -> signature input name
        kinds = {c: input_specs[i].dtype == tf.string for c, i in columns.items()}
        self.string_features = sorted(c for c, is_string in kinds.items() if is_string)
        self.numeric_features = sorted(c for c, is_string in kinds.items() if not is_string)
        self.classes = [str(c) for c in classes]
        self._feature_names = sorted(self.string_features + self.numeric_features)
        strings = set(self.string_features)
        self._is_string = {n: n in strings for n in self._feature_names}  # column -> its kind
        self._probability_columns = [probability_column(c) for c in self.classes]
        self._class_names = {c.encode(): c for c in self.classes}  # signature's bytes -> str
        self._warm_up()

    @property
    def feature_names(self) -> list[str]:
        return list(self._feature_names)

    def _warm_up(self) -> None:
        """One row of missing values through the signature (best effort: a model that cannot
        take it still loads, and its first request pays the graph optimization instead)."""
        try:
            self.predict(pd.DataFrame({n: [None if self._is_string[n] else np.nan]
                                       for n in self._feature_names}))
        except Exception:  # noqa: BLE001 - only a speed-up
            pass

    @staticmethod
    def _numbers(name: str, column: pd.Series) -> np.ndarray:
        values = column.to_numpy()
        if values.dtype == np.float64:  # what MLflow's schema enforcement hands over
            return values
        if values.dtype.kind in "iuf":
            return values.astype(np.float64)
        try:
            return pd.to_numeric(column, errors="raise").to_numpy(dtype=np.float64,
                                                                  na_value=np.nan)
        except (ValueError, TypeError) as e:
            raise _invalid_input(f"column '{name}' must hold numbers or null: {e}") from None

    @staticmethod
    def _strings(column: pd.Series) -> list[str]:
        # Missing (None, NaN, pd.NA) -> "", anything else as str(): one pass, no pandas copies.
        return [v if type(v) is str else ("" if pd.isna(v) else str(v))
                for v in column.to_numpy(dtype=object)]

    def _inputs(self, frame: pd.DataFrame) -> dict[str, Any]:
        import tensorflow as tf

        is_string = self._is_string
        columns = {name: column for name, column in frame.items() if name in is_string}
        if len(columns) < len(is_string):
            missing = [n for n in self._feature_names if n not in columns]
            raise _invalid_input(f"missing feature column(s): {', '.join(missing)}")
        input_of = self._input_of
        return {input_of[name]: tf.constant(self._strings(column), tf.string) if is_string[name]
                else tf.constant(self._numbers(name, column), tf.float64)
                for name, column in columns.items()}

    def predict(self, model_input: Any, params: dict | None = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        outputs = self._predict(**self._inputs(frame))
        if self.is_regression:
            return pd.DataFrame({PREDICTION_COLUMN: outputs[SIGNATURE_PREDICTION].numpy().astype(
                np.float64).reshape(-1)}, index=frame.index)
        probabilities = outputs[SIGNATURE_PROBABILITIES].numpy()
        result = {column: probabilities[:, i].astype(np.float64)
                  for i, column in enumerate(self._probability_columns)}
        names = self._class_names
        result[CLASS_COLUMN] = [names.get(c) or c.decode()
                                for c in outputs[SIGNATURE_CLASS].numpy().tolist()]
        return pd.DataFrame(result, index=frame.index)


def _columns(saved_model_dir: str, input_names: list[str]) -> dict[str, str]:
    """Column name -> serving_raw input name, from the export's map when it has one."""
    path = os.path.join(saved_model_dir, COLUMNS_FILE)
    if not os.path.isfile(path):
        return {name: name for name in input_names}
    with open(path, encoding="utf-8") as f:
        columns = json.load(f)["inputs"]
    unknown = sorted(set(columns.values()) - set(input_names))
    if unknown or len(columns) != len(input_names):
        raise ValueError(f"{path} does not match the {SIGNATURE} signature's inputs "
                         f"{sorted(input_names)}")
    return dict(columns)


def _load_pyfunc(data_path: str, model_config: dict | None = None) -> RawFeaturesModel:
    """MLflow's loader entry point; data_path is the model's copy of the logged data folder."""
    if not model_config or CLASSES_KEY not in model_config:
        raise ValueError(f"model_config must name the classes under '{CLASSES_KEY}'")
    model = RawFeaturesModel(os.path.join(data_path, SAVED_MODEL_DIR), model_config[CLASSES_KEY])
    if os.environ.get(SCORING_SERVER_ENV):
        _freeze_heap()
    return model


def _freeze_heap() -> None:
    """In a scoring server process: everything loaded so far (TensorFlow, pandas, MLflow, the
    model: half a million objects) lives as long as the process, so take it out of the garbage
    collector's view. Otherwise every full collection walks it all, stalling whatever requests
    are in flight for about 0.3 s (measured on taxi, 2 cores): the server's p99 latency."""
    import gc

    gc.collect()
    gc.freeze()
