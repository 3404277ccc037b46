"""The registered model's signature read from saved_model.pb (pipeline/tracking/model_signature.py)
is the one MLflow infers from the loaded pyfunc's own prediction, for a classifier and a
regression model: the model is no longer loaded to log it. ~5 s (TensorFlow's import, two toy
SavedModels)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import toy_saved_model
from pipeline.tracking import model_signature, serving_pyfunc


@pytest.mark.parametrize("regression, classes", [(False, toy_saved_model.CLASSES), (True, [])])
def test_the_signature_from_the_definition_is_the_one_inferred_from_a_prediction(
        tmp_path, regression, classes):
    from mlflow.models import infer_signature

    path = toy_saved_model.write(tmp_path / "saved_model", regression)
    example = pd.DataFrame({"color": ["red", None], "x": [2.0, np.nan]})
    loaded = serving_pyfunc.RawFeaturesModel(path, classes)

    features = model_signature.raw_features(path)

    assert (features.string_features, features.numeric_features, features.is_regression) == \
        (loaded.string_features, loaded.numeric_features, loaded.is_regression)
    inferred = infer_signature(example, loaded.predict(example))
    read = model_signature.signature(features, classes, example)
    assert read.outputs == inferred.outputs
    assert read.inputs.to_dict() == [{"type": "string", "name": "color", "required": True},
                                     {"type": "double", "name": "x", "required": True}]
