"""Evaluator module code (the Evaluator's module_path): TFMA with less per-example work.

TFMA predicts in batches, then splits every batch into one Python dict per example and feeds
each example to every metric's combiner, once per slice it falls in. Profiled, that per-example
Python was nearly all of the Evaluator's time, so:

- `custom_extractors` splits a batch by slice instead of by example
  (components/evaluate/slice_groups.py), and every metric of the eval config is one of the classes
  below, whose combiners take those groups of rows as arrays
  (components/evaluate/row_batch_combiners.py). The metrics are TFMA's own (same keys, same derived
  results and plots); only the combiners' per-row work moved into numpy. TFMA matches a
  metric config to its registered classes by class name before it looks at the module, hence
  the `Batched` names.
- Accuracy, precision and recall are read off the multi-class confusion matrix the
  confusion-matrix plot computes anyway, at thresholds 0 (the argmax class) and 0.5, instead of
  a Keras metric per example and a binary confusion-matrix combiner per class. Exact, not
  approximated: probabilities sum to 1, so at most one class scores above 0.5, and "class c
  scores above 0.5" is "the top class is c and it scores above 0.5", which is what that matrix
  counts at 0.5. Every combiner of the shared matrices must list the same thresholds
  (MATRIX_THRESHOLDS): TFMA keeps one of two computations with the same key.
"""
from __future__ import annotations

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.extractors import slice_key_extractor, unbatch_extractor
from tensorflow_model_analysis.metrics import metric_types, multi_class_confusion_matrix_metrics

from components.evaluate import positional_signatures, row_batch_combiners, slice_groups

ACCURACY_NAME = "sparse_categorical_accuracy"
PRECISION_NAME = "precision"
RECALL_NAME = "recall"
# The shared multi-class confusion matrices: the argmax class (threshold 0) for accuracy and the
# confusion plot, the class above 0.5 for precision and recall (TFMA's default threshold).
MATRIX_THRESHOLDS = (0.0, 0.5)
_ARGMAX, _HALF = MATRIX_THRESHOLDS
# TFMA's last two default extractors, which slice_groups.GroupRowsBySlice replaces.
# Regression (docs/regression.md): every metric derives from one set of sums per model and slice.
MSE_NAME, RMSE_NAME, MAE_NAME = "mean_squared_error", "root_mean_squared_error", "mean_absolute_error"
R_SQUARED_NAME = "r_squared"
IMPROVEMENT_NAME = "rmse_improvement_over_mean"  # 1 - RMSE / RMSE of predicting the training mean
_REGRESSION_SUMS_NAME = "_regression_sums"
_PER_EXAMPLE_STAGES = [unbatch_extractor.UNBATCH_EXTRACTOR_STAGE_NAME,
                       slice_key_extractor.SLICE_KEY_EXTRACTOR_STAGE_NAME]


def custom_extractors(eval_shared_model, eval_config: tfma.EvalConfig,
                      tensor_adapter_config) -> list:
    """TFX's Evaluator calls this (module_path): TFMA's default extractors, ending in groups of
    rows per slice instead of one extract per example. TFMA's defaults are kept as they are
    where they end otherwise (SQL slicing specs); the metrics below take single examples too."""
    extractors = tfma.default_extractors(
        eval_shared_model=eval_shared_model, eval_config=eval_config,
        tensor_adapter_config=tensor_adapter_config)
    if [e.stage_name for e in extractors[-2:]] != _PER_EXAMPLE_STAGES:
        return extractors
    return extractors[:-2] + [slice_groups.GroupRowsBySlice(eval_config)]


def custom_eval_shared_model(eval_saved_model_path: str, model_name: str,
                             eval_config: tfma.EvalConfig, **kwargs):
    """TFX's Evaluator calls this (module_path) for each model: TFMA's default shared model,
    whose signatures take the batch positionally as TFMA passes it (components/evaluate/positional_signatures.py)."""
    return positional_signatures.with_positional_signatures(tfma.default_eval_shared_model(
        eval_saved_model_path=eval_saved_model_path, model_name=model_name,
        eval_config=eval_config, **kwargs))


class _OnRowBatches:
    """A TFMA metric whose combiners take groups of rows (row_batch_combiners.on_rows)."""

    def computations(self, *args, **kwargs):
        return row_batch_combiners.on_rows(super().computations(*args, **kwargs),
                                         kwargs.get("eval_config"))


class BatchedExampleCount(_OnRowBatches, tfma.metrics.ExampleCount):
    """TFMA's ExampleCount."""


class BatchedAUC(_OnRowBatches, tfma.metrics.AUC):
    """TFMA's AUC."""


class BatchedConfusionMatrixPlot(_OnRowBatches, tfma.metrics.ConfusionMatrixPlot):
    """TFMA's ConfusionMatrixPlot."""


class BatchedCalibrationPlot(_OnRowBatches, tfma.metrics.CalibrationPlot):
    """TFMA's CalibrationPlot."""


class BatchedMultiClassConfusionMatrixPlot(_OnRowBatches,
                                           tfma.metrics.MultiClassConfusionMatrixPlot):
    """TFMA's MultiClassConfusionMatrixPlot."""


def _matrices(eval_config, model_name: str, output_name: str, example_weighted: bool):
    """TFMA's multi-class confusion matrices at MATRIX_THRESHOLDS, and their key."""
    computations = multi_class_confusion_matrix_metrics.multi_class_confusion_matrices(
        thresholds=list(MATRIX_THRESHOLDS), eval_config=eval_config, model_name=model_name,
        output_name=output_name, example_weighted=example_weighted)
    return computations, computations[-1].keys[-1]


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


class ArgmaxAccuracy(_OnRowBatches, tfma.metrics.Metric):
    """Accuracy of the argmax class against the label id, named like Keras'
    sparse_categorical_accuracy, off the shared multi-class confusion matrix at threshold 0."""

    def __init__(self, name: str = ACCURACY_NAME, code_fingerprint: str = ""):
        # code_fingerprint is not used here: it sits in the eval config (the Evaluator's
        # properties, which TFX caches on) so that editing this module re-runs the Evaluator.
        super().__init__(tfma.metrics.merge_per_key_computations(_accuracy), name=name)


def _accuracy(name: str = ACCURACY_NAME, eval_config=None, model_name: str = "",
              output_name: str = "", example_weighted: bool = False):
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 example_weighted=example_weighted)
    computations, matrices_key = _matrices(eval_config, model_name, output_name,
                                           example_weighted)

    def result(metrics: dict) -> dict:
        matrix = metrics[matrices_key].get(_ARGMAX, {})
        correct = sum(v for k, v in matrix.items() if k.actual_class_id == k.predicted_class_id)
        return {key: _ratio(correct, sum(matrix.values()))}

    computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations


class ClassPrecision(_OnRowBatches, tfma.metrics.Metric):
    """TFMA's binarized Precision at 0.5 (same name and sub keys, one per binarized class), off
    the shared multi-class confusion matrix at 0.5."""

    def __init__(self, name: str = PRECISION_NAME):
        super().__init__(tfma.metrics.merge_per_key_computations(_precision), name=name)


class ClassRecall(_OnRowBatches, tfma.metrics.Metric):
    """TFMA's binarized Recall at 0.5, off the shared multi-class confusion matrix at 0.5."""

    def __init__(self, name: str = RECALL_NAME):
        super().__init__(tfma.metrics.merge_per_key_computations(_recall), name=name)


def _precision(name: str = PRECISION_NAME, eval_config=None, model_name: str = "",
               output_name: str = "", sub_key=None, example_weighted: bool = False):
    return _at_half(name, eval_config, model_name, output_name, sub_key, example_weighted,
                    predicted=True)


def _recall(name: str = RECALL_NAME, eval_config=None, model_name: str = "",
            output_name: str = "", sub_key=None, example_weighted: bool = False):
    return _at_half(name, eval_config, model_name, output_name, sub_key, example_weighted,
                    predicted=False)


def _at_half(name, eval_config, model_name, output_name, sub_key, example_weighted, predicted):
    """Precision (predicted=True: true positives over examples predicted as the class) or recall
    (over examples of the class) of sub_key's class at 0.5."""
    if sub_key is None or sub_key.class_id is None:
        raise ValueError(f"{name} needs a binarized class (MetricsSpec.binarize.class_ids)")
    class_id = sub_key.class_id
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 sub_key=sub_key, example_weighted=example_weighted)
    computations, matrices_key = _matrices(eval_config, model_name, output_name,
                                           example_weighted)

    def result(metrics: dict) -> dict:
        matrix = metrics[matrices_key].get(_HALF, {})
        hits = sum(v for k, v in matrix.items()
                   if k.actual_class_id == class_id and k.predicted_class_id == class_id)
        side = "predicted_class_id" if predicted else "actual_class_id"
        total = sum(v for k, v in matrix.items() if getattr(k, side) == class_id)
        return {key: _ratio(hits, total)}

    computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations


def _regression(name: str = "", figure: str = "", mean_key: str = "", eval_config=None,
                model_name: str = "", output_name: str = "", example_weighted: bool = False):
    """A derived regression metric (`figure` of row_batch_combiners.regression_figures) off the
    shared sums, which TFMA computes once per model and slice whatever metrics read them."""
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 example_weighted=example_weighted)
    sums_key = metric_types.MetricKey(name=_REGRESSION_SUMS_NAME, model_name=model_name,
                                      output_name=output_name, example_weighted=example_weighted)
    sums = metric_types.MetricComputation(
        keys=[sums_key], preprocessors=None,
        combiner=row_batch_combiners.RegressionSumsOnRows(sums_key, eval_config, mean_key))

    def result(metrics: dict) -> dict:
        return {key: row_batch_combiners.regression_figures(metrics[sums_key])[figure]}

    return [sums, metric_types.DerivedMetricComputation(keys=[key], result=result)]


class _RegressionMetric(tfma.metrics.Metric):
    """One figure of a regression model's errors against the label, by rows. mean_key: the
    model output with the training label's mean (for the improvement over predicting it)."""

    FIGURE = ""
    NAME = ""

    def __init__(self, name: str = "", mean_key: str = "training_label_mean",
                 code_fingerprint: str = "", **_):
        # code_fingerprint: as ArgmaxAccuracy's, only there to re-run the Evaluator on an edit.
        super().__init__(tfma.metrics.merge_per_key_computations(_regression),
                         name=name or self.NAME, figure=self.FIGURE, mean_key=mean_key)


PREDICTION_SAMPLE_NAME = "prediction_sample"


class RegressionPredictionSample(tfma.metrics.Metric):
    """Up to `size` (label, prediction) pairs, an array metric for the tracked run's plots
    (pipeline/tracking/plots.py); not a number, so it is no metric in MLflow."""

    def __init__(self, name: str = PREDICTION_SAMPLE_NAME, size: int = 2000, **_):
        super().__init__(tfma.metrics.merge_per_key_computations(_prediction_sample),
                         name=name, size=size)


def _prediction_sample(name: str = PREDICTION_SAMPLE_NAME, size: int = 2000, eval_config=None,
                       model_name: str = "", output_name: str = "",
                       example_weighted: bool = False):
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 example_weighted=example_weighted)
    return [metric_types.MetricComputation(
        keys=[key], preprocessors=None,
        combiner=row_batch_combiners.PredictionSampleOnRows(key, eval_config, size))]


class RegressionExampleCount(_RegressionMetric):
    """TFMA's example_count for a regression model (rows with a label and a prediction)."""
    FIGURE, NAME = "count", "example_count"


class RegressionMeanSquaredError(_RegressionMetric):
    """Mean squared error (TFMA's MeanSquaredError, by rows)."""
    FIGURE, NAME = "mse", MSE_NAME


class RegressionRootMeanSquaredError(_RegressionMetric):
    """Root mean squared error, in the label's units: the regression gate's metric."""
    FIGURE, NAME = "rmse", RMSE_NAME


class RegressionMeanAbsoluteError(_RegressionMetric):
    """Mean absolute error (TFMA's MeanAbsoluteError, by rows)."""
    FIGURE, NAME = "mae", MAE_NAME


class RegressionRSquared(_RegressionMetric):
    """R^2: 1 - MSE / variance of the label over the rows evaluated (NaN for a constant label)."""
    FIGURE, NAME = "r_squared", R_SQUARED_NAME


class RegressionImprovementOverMean(_RegressionMetric):
    """1 - RMSE / RMSE of predicting the training split's label mean for every row: 0 is no
    better than the mean, 0.2 is an RMSE 20% below it."""
    FIGURE, NAME = "improvement", IMPROVEMENT_NAME
