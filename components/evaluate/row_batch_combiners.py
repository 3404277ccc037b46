"""TFMA's per-example metric combiners, computed on arrays of rows instead.

TFMA feeds every example to every combiner, once per slice, and each combiner first runs its
generic `to_label_prediction_example_weight` (model and output lookups, sparse or one-hot
labels, class selection) on that one example. Profiled at 1.5M taxi rows, that was 43% of the
Evaluator's worker time. The eval config only uses three combiners (example count, the
multi-class confusion matrices, the calibration histogram that AUC and the curve plots share);
here each keeps TFMA's state, keys, accumulator and output and takes a whole group of rows per
call (components/evaluate/slice_groups.py builds the groups), with numpy doing the per-row work.

A combiner here still accepts TFMA's per-example inputs (1-D predictions are one row), so the
same metrics run unchanged under TFMA's default extractors.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import apache_beam as beam
from tensorflow_model_analysis.metrics import (
    calibration_histogram,
    example_count,
    metric_types,
    multi_class_confusion_matrix_metrics,
)

_MATRIX = multi_class_confusion_matrix_metrics


def _lookup(value: Any, key: str, required: bool) -> Any:
    if key and isinstance(value, Mapping):
        if key in value:
            return value[key]
        if required:
            raise ValueError(f"no {key!r} in the model's outputs: {sorted(value)}")
    return value


def _model_keys(eval_config, model_name: str) -> tuple[str, str]:
    """The spec's prediction and label keys for model_name, as TFMA matches them."""
    for spec in (eval_config.model_specs if eval_config else []):
        if (spec.name if len(eval_config.model_specs) > 1 else "") == model_name:
            return spec.prediction_key, spec.label_key
    return "", ""


def _model_values(element: metric_types.StandardMetricInputs, eval_config, model_name: str,
                  output_name: str, output_key: str = "") -> tuple[Any, Any, Any]:
    """The (prediction, label, example weight) of one model's output, with TFMA's lookups of
    model name, output name, prediction key and label key; label and weight may be None.
    output_key: another of the model's outputs in place of the prediction key's."""
    prediction_key, label_key = _model_keys(eval_config, model_name)
    prediction_key = output_key or prediction_key
    prediction, label = element.prediction, _lookup(element.label, label_key, False)
    weight = element.example_weight
    for key in (model_name, output_name):
        prediction = _lookup(prediction, key, True)
        label, weight = _lookup(label, key, False), _lookup(weight, key, False)
    return _lookup(prediction, prediction_key, True), label, weight


def rows(element: metric_types.StandardMetricInputs, eval_config, model_name: str,
         output_name: str, example_weighted: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels [n, k], class probabilities [n, classes], weights [n]) of a group of rows."""
    prediction, label, weight = _model_values(element, eval_config, model_name, output_name)
    if isinstance(prediction, Mapping) or isinstance(label, Mapping):
        raise ValueError("the row-batch metrics need one prediction and one label per model "
                         f"(ModelSpec.prediction_key, label_key): got {prediction!r}")
    if prediction is None or label is None:
        raise ValueError(f"a row has no {'prediction' if prediction is None else 'label'}")
    prediction = probabilities(prediction)
    n = prediction.shape[0]
    label = np.asarray(label)
    if not np.issubdtype(label.dtype, np.number) and label.dtype != bool:
        raise ValueError(f"labels must be class ids or one-hot: got dtype {label.dtype}")
    return label.reshape(n, -1), prediction, weights(weight, n, example_weighted)


def probabilities(prediction: Any) -> np.ndarray:
    """[rows, classes]; TFMA's per-example input (1-D) is one row."""
    prediction = np.asarray(prediction, dtype=np.float64)
    if prediction.ndim == 1:
        prediction = prediction[np.newaxis]
    if prediction.ndim != 2 or prediction.shape[1] < 2:
        raise ValueError("the Evaluator's metrics need class probabilities shaped "
                         f"[rows, classes]: got shape {prediction.shape}")
    return prediction


def weights(weight: Any, n: int, example_weighted: bool) -> np.ndarray:
    if example_weighted and weight is not None:
        return np.broadcast_to(np.asarray(weight, dtype=np.float64).reshape(-1), (n,))
    return np.ones(n)


def class_ids(label: np.ndarray) -> np.ndarray:
    """Sparse labels as they are, one-hot labels by their argmax (as TFMA reads them)."""
    return label.argmax(axis=1) if label.shape[1] > 1 else label[:, 0].astype(np.int64)


class ExampleCountOnRows(example_count._ExampleCountCombiner):  # noqa: SLF001
    """TFMA's example count has no eval config of its own: on_rows gives it one, for the
    prediction key that finds the probabilities among the model's outputs."""

    _eval_config = None

    def add_input(self, accumulator: float, element) -> float:
        prediction, _, weight = _model_values(element, self._eval_config, self._model_name,
                                              self._output_name)
        n = len(probabilities(prediction))
        return accumulator + float(weights(weight, n, self._example_weighted).sum())


class MultiClassMatricesOnRows(_MATRIX._MultiClassConfusionMatrixCombiner):  # noqa: SLF001
    """Counts (actual class, predicted class) pairs at each threshold. As in TFMA, the predicted
    class is the argmax; once its probability is at or below a threshold the row counts as no
    prediction (NO_PREDICTED_CLASS_ID) at that and every later threshold."""

    def add_input(self, accumulator, element):
        label, prediction, weight = rows(element, self._eval_config, self._key.model_name,
                                         self._key.output_name, self._example_weighted)
        actual = class_ids(label)
        predicted = prediction.argmax(axis=1)
        top = prediction[np.arange(len(predicted)), predicted]
        no_prediction = np.zeros(len(predicted), dtype=bool)
        for threshold in self._thresholds:
            no_prediction |= top <= threshold
            cells = np.stack([actual, np.where(no_prediction, _MATRIX.NO_PREDICTED_CLASS_ID,
                                               predicted)], axis=1)
            pairs, inverse = np.unique(cells, axis=0, return_inverse=True)
            sums = np.bincount(inverse.reshape(-1), weights=weight, minlength=len(pairs))
            matrix = accumulator.setdefault(threshold, {})
            for (a, p), total in zip(pairs.tolist(), sums.tolist()):
                key = _MATRIX.MatrixEntryKey(a, p)
                matrix[key] = matrix.get(key, 0.0) + total
        return accumulator


class _Histogram:
    """A calibration histogram as arrays over every bucket id (0 .. num_buckets + 1); `seen`
    counts the (label, prediction) pairs per bucket, so that, as in TFMA, a bucket exists once a
    pair fell in it."""

    def __init__(self, size: int):
        self.seen = np.zeros(size, dtype=np.int64)
        self.labels, self.predictions, self.examples = (np.zeros(size) for _ in range(3))

    def add(self, other: "_Histogram") -> "_Histogram":
        for name in ("seen", "labels", "predictions", "examples"):
            getattr(self, name).__iadd__(getattr(other, name))
        return self


class CalibrationHistogramOnRows(calibration_histogram._CalibrationHistogramCombiner):  # noqa: SLF001
    """TFMA's calibration histogram of one binarized class, bucketed with numpy; the
    accumulator is a _Histogram, turned into TFMA's sorted bucket list at the end."""

    def check_supported(self) -> None:
        sub_key = self._key.sub_key
        if (self._aggregation_type is not None or self._class_weights
                or sub_key is None or sub_key.class_id is None
                or sub_key.k is not None or sub_key.top_k is not None):
            raise ValueError("the row-batch calibration histogram supports one binarized class "
                             f"(MetricsSpec.binarize.class_ids) only: got {self._key}")

    def create_accumulator(self) -> _Histogram:
        return _Histogram(self._num_buckets + 2)

    def add_input(self, accumulator: _Histogram, element) -> _Histogram:
        label, prediction, weight = rows(element, self._eval_config, self._key.model_name,
                                         self._key.output_name, self._example_weighted)
        class_id = self._key.sub_key.class_id
        if label.shape[1] > 1:
            positive = label[:, class_id].astype(np.float64)
        else:
            positive = (label[:, 0] == class_id).astype(np.float64)
        scores = prediction[:, class_id]
        if np.isnan(scores).any():
            raise ValueError(f"NaN probability for class {class_id}")
        if self._fractional_labels:
            # TFMA splits each row in a (0, p, w * (1 - label)) and a (1, p, w * label) pair
            # and drops pairs of weight zero; with 0/1 labels, one pair per row remains.
            positive, scores, weight = (np.concatenate([np.zeros_like(positive), np.ones_like(
                positive)]), np.concatenate([scores, scores]),
                np.concatenate([weight * (1.0 - positive), weight * positive]))
            keep = weight != 0
            positive, scores, weight = positive[keep], scores[keep], weight[keep]
        values = scores if self._prediction_based_bucketing else positive
        index = (values - self._left) / self._range * self._num_buckets + 1
        bucket = np.clip(index, 0, self._num_buckets + 1).astype(np.int64)  # truncates as int()
        size = self._num_buckets + 2
        accumulator.seen += np.bincount(bucket, minlength=size)
        accumulator.labels += np.bincount(bucket, weights=positive * weight, minlength=size)
        accumulator.predictions += np.bincount(bucket, weights=scores * weight, minlength=size)
        accumulator.examples += np.bincount(bucket, weights=weight, minlength=size)
        return accumulator

    def merge_accumulators(self, accumulators) -> _Histogram:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for accumulator in accumulators:
            result.add(accumulator)
        return result

    def extract_output(self, accumulator: _Histogram) -> dict:
        return {self._key: [
            calibration_histogram.Bucket(int(i), float(accumulator.labels[i]),
                                         float(accumulator.predictions[i]),
                                         float(accumulator.examples[i]))
            for i in np.flatnonzero(accumulator.seen)]}


_ON_ROWS = {
    example_count._ExampleCountCombiner: ExampleCountOnRows,  # noqa: SLF001
    _MATRIX._MultiClassConfusionMatrixCombiner: MultiClassMatricesOnRows,  # noqa: SLF001
    calibration_histogram._CalibrationHistogramCombiner: CalibrationHistogramOnRows,  # noqa: SLF001
}


def on_rows(computations: list, eval_config=None) -> list:
    """The computations with each combiner replaced by its row-batch counterpart, which keeps
    the TFMA combiner's state (its keys and options, set in TFMA's private builders)."""
    result = []
    for computation in computations:
        if isinstance(computation, metric_types.MetricComputation):
            combiner = computation.combiner
            replacement = _ON_ROWS.get(type(combiner))
            if replacement is None:
                raise TypeError(f"no row-batch version of TFMA's {type(combiner).__name__}")
            on_row_batches = replacement.__new__(replacement)
            on_row_batches.__dict__.update(combiner.__dict__)
            if isinstance(on_row_batches, CalibrationHistogramOnRows):
                on_row_batches.check_supported()
            if isinstance(on_row_batches, ExampleCountOnRows):
                on_row_batches._eval_config = eval_config
            computation = metric_types.MetricComputation(
                keys=computation.keys, preprocessors=computation.preprocessors,
                combiner=on_row_batches)
        result.append(computation)
    return result


# ---- regression ------------------------------------------------------------------------------

# The sums every regression metric derives from, with d = label - training mean and
# e = label - prediction: sum w, sum w d, sum w d^2, sum w e^2, sum w |e|. Sums of d rather than
# of the label keep R^2's variance exact for labels far from zero (d is near zero on average).
REGRESSION_SUMS = ("weight", "deviation", "squared_deviation", "squared_error", "absolute_error")


class RegressionSumsOnRows(beam.CombineFn):
    """The REGRESSION_SUMS of one model's predictions, a group of rows at a time (one row under
    TFMA's per-example extractors). `mean_key` names the model output holding the training
    label's mean (components/train/export_signatures.py); a model without it is compared with 0.
    Rows whose label or prediction is not a number are left out, as TFMA's own regression
    combiners leave out a NaN error."""

    def __init__(self, key: metric_types.MetricKey, eval_config, mean_key: str):
        self._key, self._eval_config, self._mean_key = key, eval_config, mean_key

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(len(REGRESSION_SUMS))

    def add_input(self, accumulator: np.ndarray, element) -> np.ndarray:
        key = self._key
        prediction, label, weight = _model_values(element, self._eval_config, key.model_name,
                                                  key.output_name)
        if prediction is None or label is None:
            raise ValueError(f"a row has no {'prediction' if prediction is None else 'label'}")
        prediction = np.asarray(prediction, dtype=np.float64).reshape(-1)
        label = np.asarray(label, dtype=np.float64).reshape(-1)
        if label.shape != prediction.shape:
            raise ValueError("regression metrics need one number per row: got labels shaped "
                             f"{label.shape} and predictions shaped {prediction.shape}")
        try:
            mean, _, _ = _model_values(element, self._eval_config, key.model_name,
                                       key.output_name, output_key=self._mean_key)
            mean = np.broadcast_to(np.asarray(mean, dtype=np.float64).reshape(-1), label.shape)
        except ValueError:
            mean = np.zeros_like(label)
        w = weights(weight, len(label), key.example_weighted)
        keep = np.isfinite(label) & np.isfinite(prediction)
        if not keep.all():
            label, prediction, mean, w = label[keep], prediction[keep], mean[keep], w[keep]
        deviation, error = label - mean, label - prediction
        accumulator += (w.sum(), (w * deviation).sum(), (w * deviation ** 2).sum(),
                        (w * error ** 2).sum(), (w * np.abs(error)).sum())
        return accumulator

    def merge_accumulators(self, accumulators) -> np.ndarray:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for accumulator in accumulators:
            result = result + accumulator
        return result

    def extract_output(self, accumulator: np.ndarray) -> dict:
        return {self._key: dict(zip(REGRESSION_SUMS, accumulator.tolist()))}


def regression_figures(sums: dict) -> dict[str, float]:
    """The example count (weighted when the metric is), MSE, RMSE, MAE, R^2 and the RMSE's
    improvement over predicting the training mean (1 - RMSE / RMSE of the mean) from
    REGRESSION_SUMS; NaN where undefined (no rows, or R^2 of a constant label)."""
    n = sums["weight"]
    if not n:
        return {"count": 0.0, **dict.fromkeys(("mse", "rmse", "mae", "r_squared", "improvement"),
                                              float("nan"))}
    mse = sums["squared_error"] / n
    variance = sums["squared_deviation"] / n - (sums["deviation"] / n) ** 2
    mean_rmse = np.sqrt(sums["squared_deviation"] / n)
    rmse = float(np.sqrt(mse))
    return {
        "count": n, "mse": mse, "rmse": rmse, "mae": sums["absolute_error"] / n,
        "r_squared": 1.0 - mse / variance if variance > 0 else float("nan"),
        "improvement": 1.0 - rmse / mean_rmse if mean_rmse > 0 else float("nan"),
    }


class PredictionSampleOnRows(beam.CombineFn):
    """Up to `size` (label, prediction) pairs of a regression model, for the tracked run's
    predicted-against-actual and residual plots. A bottom-k sample by a hash of each pair's
    bits: every pair is equally likely to be kept whatever the grouping, merges keep the k
    smallest hashes, and the same rows give the same sample on every run."""

    def __init__(self, key: metric_types.MetricKey, eval_config, size: int):
        self._key, self._eval_config, self._size = key, eval_config, size

    def create_accumulator(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(0, dtype=np.uint64), np.zeros((0, 2))

    def _smallest(self, hashes: np.ndarray, pairs: np.ndarray):
        if len(hashes) > self._size:
            keep = np.argpartition(hashes, self._size - 1)[:self._size]
            hashes, pairs = hashes[keep], pairs[keep]
        return hashes, pairs

    def add_input(self, accumulator, element):
        key = self._key
        prediction, label, _ = _model_values(element, self._eval_config, key.model_name,
                                             key.output_name)
        pairs = np.stack([np.asarray(label, dtype=np.float64).reshape(-1),
                          np.asarray(prediction, dtype=np.float64).reshape(-1)], axis=1)
        pairs = pairs[np.isfinite(pairs).all(axis=1)]
        bits = np.ascontiguousarray(pairs).view(np.uint64)
        with np.errstate(over="ignore"):  # multiplicative hashing wraps around by design
            hashes = (bits[:, 0] * np.uint64(0x9E3779B97F4A7C15)) ^ (
                bits[:, 1] * np.uint64(0xC2B2AE3D27D4EB4F))
        return self._smallest(np.concatenate([accumulator[0], hashes]),
                              np.concatenate([accumulator[1], pairs]))

    def merge_accumulators(self, accumulators):
        hashes, pairs = zip(*accumulators)
        return self._smallest(np.concatenate(hashes), np.concatenate(pairs))

    def extract_output(self, accumulator) -> dict:
        hashes, pairs = accumulator
        return {self._key: pairs[np.argsort(hashes, kind="stable")]}

