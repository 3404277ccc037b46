"""Serving signatures exported with the model.

- serving_default: serialized tf.Example in, class probabilities out (what TFMA and TF Serving
  clients send); regression: `prediction`, and `training_label_mean` (the training split's
  label mean, the same for every row: the baseline TFMA's improvement-over-the-mean gate
  compares the model with, components/evaluate/evaluator_module.py).
- transform_features: serialized tf.Example in, transformed features (label included) out; TFMA
  runs it to get the encoded label.
- serving_raw: one plain tensor per raw feature in, probabilities, class id and class name out
  (regression: `prediction`, the number in the label's units).
  Numbers come as float64 with NaN for missing, strings with "" for missing: the same encoding
  a pandas DataFrame has, so a client (or MLflow pyfunc) can send rows as they are.

A signature input must be a valid TensorFlow op name, so a column called `mean radius` or
`température` is a serving_raw input under its TF name (pipeline/config/dataset_spec.py), and a
column called `self` under another (DatasetSpec.serving_inputs). The export carries the map from column
names to input names in assets.extra/ (next to TF Serving's warm-up file), and the MLflow pyfunc
reads it: MLflow clients send the CSV's column names.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf
import tensorflow_transform as tft

from pipeline.config.dataset_spec import DatasetSpec

SERVING_DEFAULT = "serving_default"
TRANSFORM_FEATURES = "transform_features"
SERVING_RAW = "serving_raw"
PROBABILITIES = "probabilities"
CLASS_ID = "class_id"
CLASS_NAME = "class"
PREDICTION = "prediction"  # regression: the predicted label, in its own units
TRAINING_LABEL_MEAN = "training_label_mean"
# assets.extra/<this>: {"signature": SERVING_RAW, "inputs": {column name: signature input name}}
SERVING_RAW_COLUMNS_FILE = "serving_raw_columns.json"


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
    class_names = tf.constant(list(spec.classes), tf.string)
    scale = getattr(model, "model_config", None) and model.model_config.label_scale
    training_mean = float(scale.mean) if scale else 0.0

    # The signatures have no tensor-dependent Python control flow, so they are traced with
    # autograph=False: AutoGraph would otherwise rewrite every tf_keras layer the model calls
    # (tf_keras is not on its do-not-convert list), ~6 s of the Trainer's time on taxi (measured).
    # predict is a function of its own, so serving_default and serving_raw, whose parsed
    # features have the same types, call one trace of the tf.Transform graph and the model
    # instead of tracing both twice.
    @tf.function(autograph=False)
    def predict(parsed: dict) -> dict:
        transformed = model.tft_layer(parsed)
        outputs = model({k: transformed[k] for k in model.input_names})
        if spec.is_regression:
            return {PREDICTION: tf.reshape(outputs, [-1])}
        probabilities = outputs
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
        if spec.is_regression:
            prediction = predict(parsed)[PREDICTION]
            return {PREDICTION: prediction,
                    TRAINING_LABEL_MEAN: tf.fill(tf.shape(prediction), training_mean)}
        return {PROBABILITIES: predict(parsed)[PROBABILITIES]}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")],
                 autograph=False)
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, eval_spec))

    columns = {key: name for name, key in spec.serving_inputs.items()}  # input -> column

    @tf.function(
        input_signature=[
            {key: tf.TensorSpec([None], raw_input_dtype(serving_spec[name]), name=key)
             for key, name in columns.items()}
        ],
        autograph=False,
    )
    def serve_raw(features):
        parsed = {columns[k]: _raw_to_parsed(v, serving_spec[columns[k]])
                  for k, v in features.items()}
        return predict(parsed)

    return {
        SERVING_DEFAULT: serve_tf_examples.get_concrete_function(),
        TRANSFORM_FEATURES: transform_features.get_concrete_function(),
        SERVING_RAW: serve_raw.get_concrete_function(),
    }


def save_for_serving(model, export_dir: str, signatures: dict) -> None:
    """Write the SavedModel with its signatures, without Keras' per-layer traces.

    Saving a Keras model also traces every layer's call (and its conditional losses) into the
    SavedModel so that `keras.models.load_model` could revive the layers without their code.
    Nothing loads the export that way: TFMA, BulkInferrer, the MLflow pyfunc and `make serve`
    call the signatures above through `tf.saved_model.load`, and `tf.saved_model.save` writes no
    Keras metadata to revive from. Skipping the traces took the save from 4.4-5.2 s to 2.5-2.6 s
    of the taxi Trainer (measured, same process and inputs); the signatures and the variables
    they read are what they were.
    """
    from tf_keras.src.saving.legacy.saved_model import utils as keras_saving

    with keras_saving.keras_option_scope(save_traces=False, in_tf_saved_model_scope=True):
        tf.saved_model.save(model, export_dir, signatures=signatures)


def write_serving_raw_columns(export_dir: str, spec: DatasetSpec) -> None:
    """Record, inside the export, which serving_raw input each raw feature column goes to."""
    folder = os.path.join(export_dir, "assets.extra")
    tf.io.gfile.makedirs(folder)
    inputs = spec.serving_inputs
    with tf.io.gfile.GFile(os.path.join(folder, SERVING_RAW_COLUMNS_FILE), "w") as f:
        json.dump({"signature": SERVING_RAW, "inputs": inputs}, f, indent=1, ensure_ascii=False)
