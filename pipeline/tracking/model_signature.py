"""The registered model's MLflow signature, read from the SavedModel's serving_raw signature
definition without loading the model.

Loading the SavedModel to run the pyfunc on three rows, only to learn its column types, took
~2 s of the MLflow logging after the Pusher (profiled on taxi, 15k rows); parsing
saved_model.pb takes ~0.03 s. The columns and their types come from the same signature the
pyfunc calls (serving_pyfunc.py): a string input is a string column, any other a double; the
outputs are the pyfunc's own (a probability per class and the class, or `prediction`), inferred
by MLflow from a frame of the pyfunc's output types just as from a real prediction.
"""
from __future__ import annotations

import dataclasses
import os

import pandas as pd

from pipeline.tracking import serving_pyfunc


@dataclasses.dataclass(frozen=True)
class RawFeatures:
    string_features: list[str]
    numeric_features: list[str]
    is_regression: bool


def raw_features(saved_model_dir: str) -> RawFeatures:
    """The serving_raw signature's columns by kind, as RawFeaturesModel sees them once loaded."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    graphs = [g for g in saved_model.meta_graphs
              if serving_pyfunc.SIGNATURE in g.signature_def]
    if not graphs:
        raise ValueError(f"{saved_model_dir} has no {serving_pyfunc.SIGNATURE} signature")
    signature = graphs[0].signature_def[serving_pyfunc.SIGNATURE]
    columns = serving_pyfunc._columns(saved_model_dir, list(signature.inputs))
    is_string = {c: signature.inputs[i].dtype == types_pb2.DT_STRING for c, i in columns.items()}
    return RawFeatures(sorted(c for c, s in is_string.items() if s),
                       sorted(c for c, s in is_string.items() if not s),
                       serving_pyfunc.SIGNATURE_PREDICTION in signature.outputs)


def output_example(features: RawFeatures, classes: list[str]) -> pd.DataFrame:
    """One row typed as RawFeaturesModel.predict answers (float64 numbers, str class names)."""
    if features.is_regression:
        return pd.DataFrame({serving_pyfunc.PREDICTION_COLUMN: [0.0]})
    row: dict[str, list] = {serving_pyfunc.probability_column(str(c)): [0.0] for c in classes}
    row[serving_pyfunc.CLASS_COLUMN] = [str(classes[0])]
    return pd.DataFrame(row)


def signature(features: RawFeatures, classes: list[str], example: pd.DataFrame):
    """Inputs: the example's columns typed by the model (not by the example's gaps); outputs
    inferred from the pyfunc's output types."""
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, Schema

    strings = set(features.string_features)
    result = infer_signature(example, output_example(features, classes))
    result.inputs = Schema([ColSpec("string" if name in strings else "double", name)
                            for name in example.columns])
    return result
