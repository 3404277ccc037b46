"""Serving signatures exported with the model.

- serving_default: serialized tf.Example in, class probabilities out (what TFMA and TF Serving
  clients send).
- transform_features: serialized tf.Example in, transformed features (label included) out; TFMA
  runs it to get the encoded label.
- serving_raw: one plain tensor per raw feature in, probabilities, class id and class name out.
  Numbers come as float64 with NaN for missing, strings with "" for missing: the same encoding
  a pandas DataFrame has, so a client (or MLflow pyfunc) can send rows as they are.
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from pipeline.config.dataset_spec import DatasetSpec

SERVING_DEFAULT = "serving_default"
TRANSFORM_FEATURES = "transform_features"
SERVING_RAW = "serving_raw"
PROBABILITIES = "probabilities"
CLASS_ID = "class_id"
CLASS_NAME = "class"


def raw_input_dtype(feature_spec: tf.io.FixedLenFeature | tf.io.VarLenFeature) -> tf.DType:
    return tf.string if feature_spec.dtype == tf.string else tf.float64


def _raw_to_parsed(value: tf.Tensor, feature_spec) -> tf.Tensor | tf.SparseTensor:
    """Turn a [batch] tensor from a client into what parse_example would have produced."""
    if value.dtype == tf.string:
        present = tf.not_equal(value, "")
    else:
        present = tf.logical_not(tf.math.is_nan(value))
    value = tf.cast(value, feature_spec.dtype) if feature_spec.dtype != tf.string else value
    if isinstance(feature_spec, tf.io.VarLenFeature):
        rows = tf.where(present)
        indices = tf.concat([rows, tf.zeros_like(rows)], axis=1)
        return tf.SparseTensor(
            indices, tf.gather_nd(value, rows), tf.stack([tf.size(value, tf.int64), 1])
        )
    return value


def make_signatures(model, tft_output: tft.TFTransformOutput, spec: DatasetSpec) -> dict:
    model.tft_layer = tft_output.transform_features_layer()  # tracked, so it is saved too
    raw_spec = tft_output.raw_feature_spec()
    feature_names = [f.name for f in spec.model_features]
    serving_spec = {name: raw_spec[name] for name in feature_names}
    eval_spec = dict(serving_spec, **{spec.label: raw_spec[spec.label]})
    class_names = tf.constant(list(spec.classes))

    # The signatures have no tensor-dependent Python control flow, so they are traced with
    # autograph=False: AutoGraph would otherwise rewrite every tf_keras layer the model calls
    # (tf_keras is not on its do-not-convert list), ~6 s of the Trainer's time on taxi (measured).
    def predict(parsed: dict) -> dict:
        transformed = model.tft_layer(parsed)
        probabilities = model({k: transformed[k] for k in model.input_names})
        class_id = tf.argmax(probabilities, axis=1)
        return {
            PROBABILITIES: probabilities,
            CLASS_ID: class_id,
            CLASS_NAME: tf.gather(class_names, class_id),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
                 autograph=False)
    def serve_tf_examples(serialized):
        parsed = tf.io.parse_example(serialized, serving_spec)
        return {PROBABILITIES: predict(parsed)[PROBABILITIES]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
                 autograph=False)
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, eval_spec))

    @tf.function(
        input_signature=[
            {name: tf.TensorSpec([None], raw_input_dtype(serving_spec[name]), name=name)
             for name in feature_names}
        ],
        autograph=False,
    )
    def serve_raw(features):
        parsed = {k: _raw_to_parsed(v, serving_spec[k]) for k, v in features.items()}
        return predict(parsed)

    return {
        SERVING_DEFAULT: serve_tf_examples.get_concrete_function(),
        TRANSFORM_FEATURES: transform_features.get_concrete_function(),
        SERVING_RAW: serve_raw.get_concrete_function(),
    }
