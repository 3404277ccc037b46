"""tf.Transform preprocessing_fn, driven entirely by the dataset spec in custom_config.

Per feature type (see pipeline/config/dataset_spec.py):
  float / int      -> missing values imputed with the mean, then z-scored (a column of two
                      values scaled to 0 and 1 instead, see numeric_columns); optional quantile
                      buckets as a second output
  categorical(_int)-> vocabulary ids, with OOV buckets for values not seen in training (a missing
                      value lands in an OOV bucket too: vocabularies leave out "")
  label            -> class id from the spec's fixed class list (-1 for an unknown class), so
                      ids do not depend on which classes a data drop happens to contain;
                      regression: the number as it is (float32; the Trainer standardizes it
                      and the model undoes that, see docs/regression.md)

Every analyzer reads the raw input, so tf.Transform analyses the data in one phase (one pass,
one Beam graph). The numeric features share their analyzers: one element-wise mean, variance,
min and max over all numeric columns at once, from which the imputation mean, the z-score's
scale and the two-valued columns' 0/1 scale come. A mean imputation followed by
`tft.scale_to_z_score` would chain two analyzers per feature and cost a second phase; this
gives the same numbers and keeps the Beam graph the same size whatever the number of numeric
columns. Vocabularies use the approximate (packable) analyzer.
"""
from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf
import tensorflow_transform as tft

from pipeline.config.dataset_spec import (
    DatasetSpec,
    bucketized_name,
    transformed_name,
    vocabulary_name,
)

MISSING_CATEGORY = ""
# A numeric column whose variance is within this share of its squared span from the two-value
# bound is scaled to 0/1 (numeric_columns). Float64 sums leave errors far below it; a column of
# huge values and a tiny span may miss it by rounding, and then keeps its z-score.
TWO_VALUED_TOLERANCE = 1e-9
# Distinct values a categorical column may have before its rarest ones share the OOV buckets.
VOCABULARY_TOP_K = 200_000  # the most tf.Transform allows for the approximate vocabulary


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


def _dense_with_mask(x: tf.Tensor | tf.SparseTensor) -> tuple[tf.Tensor, tf.Tensor]:
    """[batch] float64 values (0 where missing) and [batch] float64 presence (1 or 0).

    Straight to float64: an int64 column such as a Unix timestamp keeps every second, where
    float32 would round 1.4e9 to a multiple of 128."""
    if isinstance(x, tf.SparseTensor):
        values = tf.SparseTensor(x.indices, tf.cast(x.values, tf.float64), x.dense_shape)
        present = tf.SparseTensor(x.indices, tf.ones_like(values.values), x.dense_shape)
        return _to_dense(values, 0.0), _to_dense(present, 0.0)
    values = tf.cast(tf.reshape(x, [-1]), tf.float64)
    return values, tf.ones_like(values)


def numeric_columns(columns: Mapping[str, tf.Tensor | tf.SparseTensor]) -> dict[str, tuple]:
    """{name: (imputed value, z-score)} for each numeric column, from one analysis phase.

    The imputed value is the column's mean over present values where the cell is missing; the
    z-score is that imputed value scaled by the mean and standard deviation of the imputed
    column (what `scale_to_z_score(impute(x))` gives), so a missing value scores 0. All numeric
    columns go through the analyzers together as one [batch, columns] matrix: the mean and
    variance of the present values come from tf.Transform's element-wise mean/var over a
    SparseTensor (present cells only, merged stably in float64), the counts from one sum."""
    if not columns:
        return {}
    names = list(columns)
    dense, masks = zip(*(_dense_with_mask(columns[name]) for name in names))
    values = tf.stack(dense, axis=1)  # [batch, k], 0 where missing
    present = tf.stack(masks, axis=1)  # [batch, k], 1 or 0
    cells = tf.where(present > 0)
    present_values = tf.SparseTensor(cells, tf.gather_nd(values, cells),
                                     tf.shape(values, out_type=tf.int64))
    mean = tft.mean(present_values, reduce_instance_dims=False, name="numeric_mean")
    present_var = tft.var(present_values, reduce_instance_dims=False, name="numeric_var")
    counts = tft.sum(tf.concat([present, tf.ones_like(present[:, :1])], axis=1),
                     reduce_instance_dims=False, name="numeric_counts")
    k = len(names)
    count, n_rows = counts[:k], counts[k]
    mean = tf.where(count > 0, mean, tf.zeros_like(mean))
    present_var = tf.where(count > 0, present_var, tf.zeros_like(present_var))
    # Imputing with the mean adds (rows - count) values at the mean: the variance of the imputed
    # column is the present values' variance times count / rows.
    std = tf.sqrt(present_var * count / tf.maximum(n_rows, 1.0))
    imputed = tf.where(present > 0, values, mean)
    centred = imputed - mean
    scaled = tf.where(std > 0, centred / tf.where(std > 0, std, tf.ones_like(std)), centred)
    # A column of two values (0/1 indicators, 1/2 codes) is scaled to 0 and 1, as its one-hot
    # would be, not z-scored: a rare indicator's z-score is tens of deviations out (1 in 373
    # rows: 19.3), and on modeldata's grants (582 indicators) the z-scored model overfit at
    # once: eval AUC 0.587, against 0.866 with the indicators one-hot and 0.894 scaled to 0/1
    # (docs/init.md). Two-valued is read from the same phase's analyzers: the present values'
    # variance equals (mean - min)(max - mean) only when every value is the min or the max (the
    # Bhatia-Davis bound).
    inf = tf.constant(float("inf"), tf.float64)
    low = tft.min(tf.where(present > 0, values, inf), reduce_instance_dims=False,
                  name="numeric_min")
    high = tft.max(tf.where(present > 0, values, -inf), reduce_instance_dims=False,
                   name="numeric_max")
    span = high - low
    bound = (mean - low) * (high - mean)
    two_valued = (count > 0) & (span > 0) & (
        tf.abs(present_var - bound) <= TWO_VALUED_TOLERANCE * tf.square(span))
    unit = (imputed - low) / tf.where(two_valued, span, tf.ones_like(span))
    scaled = tf.where(two_valued, unit, scaled)
    return {name: (tf.cast(imputed[:, i], tf.float32), tf.cast(scaled[:, i], tf.float32))
            for i, name in enumerate(names)}


def buckets(x: tf.Tensor | tf.SparseTensor, imputed: tf.Tensor, num_buckets: int) -> tf.Tensor:
    """Quantile bucket ids of the imputed value, boundaries from the values present (an
    analyzer of the raw input, so it runs in the same phase as the others)."""
    boundaries = tft.quantiles(_values(_as_float(x)), num_buckets,
                               epsilon=min(1.0 / num_buckets, 0.01))
    return tft.apply_buckets(imputed, boundaries)


def vocab_ids(x: tf.Tensor | tf.SparseTensor, name: str, oov_buckets: int) -> tf.Tensor:
    """Vocabulary ids, most frequent value first; values outside it go to the OOV buckets.

    tft.experimental.approximate_vocabulary rather than tft.vocabulary: its combiner is packed
    with the other analyzers (tft.vocabulary builds a Beam branch of its own per feature), and it
    is exact while a column has at most VOCABULARY_TOP_K distinct values."""
    dense = _to_dense(_as_strings(x), MISSING_CATEGORY)
    vocabulary = tft.experimental.approximate_vocabulary(
        dense, top_k=VOCABULARY_TOP_K, vocab_filename=name)
    return tft.apply_vocabulary(dense, vocabulary, num_oov_buckets=oov_buckets)


def label_ids(x: tf.Tensor | tf.SparseTensor, classes: tuple[str, ...]) -> tf.Tensor:
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(classes)), tf.range(len(classes), dtype=tf.int64)
        ),
        default_value=-1,
    )
    return table.lookup(_to_dense(_as_strings(x), MISSING_CATEGORY))


def label_values(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """A regression label as [batch] float32, unscaled (NaN where empty; the data contract
    refuses empty labels before the Trainer runs)."""
    return tf.cast(_to_dense(_as_float(x), float("nan")), tf.float32)


def preprocessing_fn(inputs: Mapping[str, Any], custom_config: Mapping[str, Any]) -> dict:
    spec = DatasetSpec.from_config(custom_config["spec"])
    numeric = numeric_columns({f.name: inputs[f.name] for f in spec.model_features
                               if f.is_numeric})
    outputs: dict[str, tf.Tensor] = {}
    for feature in spec.model_features:
        x = inputs[feature.name]
        if feature.is_numeric:
            imputed, scaled = numeric[feature.name]
            outputs[transformed_name(feature.name)] = scaled
            if feature.buckets:
                outputs[bucketized_name(feature.name)] = buckets(x, imputed, feature.buckets)
        else:
            outputs[transformed_name(feature.name)] = vocab_ids(
                x, vocabulary_name(feature.name), feature.oov_buckets
            )
    outputs[spec.transformed_label] = (
        label_values(inputs[spec.label]) if spec.is_regression
        else label_ids(inputs[spec.label], spec.classes))
    return outputs
