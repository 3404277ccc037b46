"""The registered model's signature read from saved_model.pb (pipeline/tracking/model_signature.py)
is the one MLflow infers from the loaded pyfunc's own prediction, for a classifier and a
regression model: the model is no longer loaded to log it. ~5 s (TensorFlow's import, two toy
SavedModels)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.tracking import model_signature, serving_pyfunc


def _toy(path, regression: bool) -> str:
    """A SavedModel with a serving_raw signature like the pipeline's (x: number, color: text)."""
    import tensorflow as tf

    spec = {"x": tf.TensorSpec([None], tf.float64, name="x"),
            "color": tf.TensorSpec([None], tf.string, name="color")}

    class Toy(tf.Module):
        @tf.function(input_signature=[spec])
        def serve(self, features):
            x = tf.where(tf.math.is_nan(features["x"]), tf.zeros_like(features["x"]),
                         features["x"])
            if regression:
                return {serving_pyfunc.SIGNATURE_PREDICTION: tf.cast(x, tf.float32)}
            length = tf.cast(tf.strings.length(features["color"]), tf.float64)
            probabilities = tf.nn.softmax(tf.cast(tf.stack([x, length], axis=1), tf.float32))
            class_id = tf.argmax(probabilities, axis=1)
            return {"probabilities": probabilities, "class_id": class_id,
                    "class": tf.gather(tf.constant(["low", "high"]), class_id)}

    toy = Toy()
    tf.saved_model.save(toy, str(path),
                        signatures={serving_pyfunc.SIGNATURE: toy.serve.get_concrete_function()})
    return str(path)


@pytest.mark.parametrize("regression, classes", [(False, ["low", "high"]), (True, [])])
def test_the_signature_from_the_definition_is_the_one_inferred_from_a_prediction(
        tmp_path, regression, classes):
    from mlflow.models import infer_signature

    path = _toy(tmp_path / "saved_model", regression)
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
