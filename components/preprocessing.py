"""tf.Transform preprocessing_fn, driven entirely by the dataset spec in custom_config.

Per feature type (see pipeline/config/dataset_spec.py):
  float / int      -> missing values imputed with the mean, then z-scored; optional quantile
                      buckets as a second output
  categorical(_int)-> vocabulary ids, with OOV buckets for values not seen in training (a missing
                      value lands in an OOV bucket too: vocabularies leave out "")
  label            -> class id from the spec's fixed class list (-1 for an unknown class), so
                      ids do not depend on which classes a data drop happens to contain
"""
from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf
import tensorflow_transform as tft

from pipeline.config.dataset_spec import DatasetSpec, bucketized_name, transformed_name

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


def _as_float(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor | tf.SparseTensor:
    if isinstance(x, tf.SparseTensor):
        return tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32), x.dense_shape)
    return tf.cast(x, tf.float32)


def impute(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """Missing -> mean of the values present in the whole analysis set."""
    x = _as_float(x)
    return _to_dense(x, tft.mean(_values(x)))


def buckets(x: tf.Tensor | tf.SparseTensor, num_buckets: int) -> tf.Tensor:
    """Quantile bucket ids of the imputed value, boundaries from the values present.

    Boundaries come from the raw values rather than from the z-scored output: analyzers chained
    on other analyzers' results cost another pass over the data (and with Beam 2.59's in-memory
    runner that second phase fails on tiny inputs)."""
    x = _as_float(x)
    boundaries = tft.quantiles(_values(x), num_buckets, epsilon=min(1.0 / num_buckets, 0.01))
    return tft.apply_buckets(impute(x), boundaries)


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
            # An imputed value equals the mean, so it lands on 0 after scaling.
            outputs[transformed_name(feature.name)] = tft.scale_to_z_score(impute(x))
            if feature.buckets:
                outputs[bucketized_name(feature.name)] = buckets(x, feature.buckets)
        else:
            outputs[transformed_name(feature.name)] = vocab_ids(
                x, feature.name, feature.oov_buckets
            )
    outputs[spec.transformed_label] = label_ids(inputs[spec.label], spec.classes)
    return outputs
