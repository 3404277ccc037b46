"""tf.Transform preprocessing_fn, driven entirely by the dataset spec in custom_config.

Per feature type (see pipeline/dataset_spec.py):
  float / int      -> missing values imputed with the mean, then z-scored; optional quantile
                      buckets as a second output
  categorical(_int)-> vocabulary ids, with OOV buckets for values not seen in training
  label            -> class id from the spec's fixed class list (-1 for an unknown class), so
                      ids do not depend on which classes a data drop happens to contain
"""
from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf
import tensorflow_transform as tft

from pipeline.dataset_spec import DatasetSpec, bucketized_name, transformed_name

MISSING_CATEGORY = ""


def _to_dense(x: tf.Tensor | tf.SparseTensor, default: Any) -> tf.Tensor:
    """Densify a [batch, 0-or-1] VarLen feature (CSV columns with gaps) into shape [batch]."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default_value=default
        )
    return tf.reshape(x, [-1])


def _values(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """The values that are present, for full-pass statistics that must ignore gaps."""
    return x.values if isinstance(x, tf.SparseTensor) else tf.reshape(x, [-1])


def _as_strings(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor | tf.SparseTensor:
    if x.dtype == tf.string:
        return x
    if isinstance(x, tf.SparseTensor):
        return tf.SparseTensor(x.indices, tf.strings.as_string(x.values), x.dense_shape)
    return tf.strings.as_string(x)


def impute_and_scale(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """Missing -> mean of present values, then z-score; an imputed value lands on 0."""
    x = tf.cast(x, tf.float32) if not isinstance(x, tf.SparseTensor) else tf.SparseTensor(
        x.indices, tf.cast(x.values, tf.float32), x.dense_shape)
    mean = tft.mean(_values(x))
    return tft.scale_to_z_score(_to_dense(x, mean))


def vocab_ids(x: tf.Tensor | tf.SparseTensor, name: str, oov_buckets: int) -> tf.Tensor:
    dense = _to_dense(_as_strings(x), MISSING_CATEGORY)
    return tft.compute_and_apply_vocabulary(
        dense, num_oov_buckets=oov_buckets, vocab_filename=name
    )


def label_ids(x: tf.Tensor | tf.SparseTensor, classes: tuple[str, ...]) -> tf.Tensor:
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(classes)), tf.range(len(classes), dtype=tf.int64)
        ),
        default_value=-1,
    )
    return table.lookup(_to_dense(_as_strings(x), MISSING_CATEGORY))


def preprocessing_fn(inputs: Mapping[str, Any], custom_config: Mapping[str, Any]) -> dict:
    spec = DatasetSpec.from_config(custom_config["spec"])
    outputs: dict[str, tf.Tensor] = {}
    for feature in spec.model_features:
        x = inputs[feature.name]
        if feature.is_numeric:
            scaled = impute_and_scale(x)
            outputs[transformed_name(feature.name)] = scaled
            if feature.buckets:
                outputs[bucketized_name(feature.name)] = tft.bucketize(scaled, feature.buckets)
        else:
            outputs[transformed_name(feature.name)] = vocab_ids(
                x, feature.name, feature.oov_buckets
            )
    outputs[spec.transformed_label] = label_ids(inputs[spec.label], spec.classes)
    return outputs
