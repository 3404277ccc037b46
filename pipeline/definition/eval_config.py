"""TFMA EvalConfig built from the dataset spec and its blessing gates (Settings.gate: the command
line, then the spec's `gates:` block, then the defaults)."""
from __future__ import annotations

import json

import tensorflow_model_analysis as tfma

from components.evaluate import evaluator_module
from components.train.export_signatures import (
    PREDICTION,
    PROBABILITIES,
    SERVING_DEFAULT,
    TRAINING_LABEL_MEAN,
    TRANSFORM_FEATURES,
)
from pipeline.config.dataset_spec import BINARY, DatasetSpec
from pipeline.config.settings import Settings

# Tiny slack so that a re-trained model scoring exactly the baseline still passes "no worse".
_EPSILON = 1e-10


def gated_metric(spec: DatasetSpec) -> str:
    """The metric that decides blessing: AUC for binary tasks, RMSE for regression, accuracy
    otherwise."""
    if spec.is_regression:
        return evaluator_module.RMSE_NAME
    return "auc" if spec.task == BINARY else "sparse_categorical_accuracy"


def _overall_only(metric: tfma.MetricConfig, threshold: tfma.MetricThreshold) -> tfma.MetricConfig:
    metric.per_slice_thresholds.append(tfma.PerSliceMetricThreshold(
        slicing_specs=[tfma.SlicingSpec()], threshold=threshold))
    return metric


def regression_metrics_specs(spec: DatasetSpec, settings: Settings,
                             module_fingerprint: str = "") -> list[tfma.MetricsSpec]:
    """MSE, RMSE, MAE, R^2, the improvement over predicting the training mean and the example
    count, overall and per slice (docs/regression.md). Gates, on the overall slice (as _gated's):
    RMSE at most max_rmse (when set) and at most max_rmse_increase above the champion's
    (lower is better); the improvement over the mean at least min_improvement_over_mean, and
    above 0 whatever it is set to: a model no better than the training mean is not blessed."""
    def metric(cls: type, **extra) -> tfma.MetricConfig:
        return _ours(cls, json.dumps({"name": cls.NAME, "mean_key": TRAINING_LABEL_MEAN, **extra}))

    max_rmse = settings.gate(spec, "max_rmse").value
    increase = settings.gate(spec, "max_rmse_increase").value
    improvement = settings.gate(spec, "min_improvement_over_mean").value
    rmse = _overall_only(
        metric(evaluator_module.RegressionRootMeanSquaredError,
               **({"code_fingerprint": module_fingerprint} if module_fingerprint else {})),
        tfma.MetricThreshold(
            value_threshold=(tfma.GenericValueThreshold(upper_bound={"value": max_rmse})
                             if max_rmse != float("inf") else None),
            change_threshold=tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.LOWER_IS_BETTER,
                relative={"value": increase + _EPSILON})))
    over_mean = _overall_only(
        metric(evaluator_module.RegressionImprovementOverMean),
        tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
            lower_bound={"value": improvement if improvement > 0 else _EPSILON})))
    return [
        # The baseline needs the RMSE alone, for the change threshold.
        tfma.MetricsSpec(metrics=[rmse]),
        tfma.MetricsSpec(metrics=[
            metric(evaluator_module.RegressionExampleCount),
            metric(evaluator_module.RegressionMeanSquaredError),
            metric(evaluator_module.RegressionMeanAbsoluteError),
            metric(evaluator_module.RegressionRSquared),
            over_mean,
            # (label, prediction) pairs for the tracked run's plots
            _ours(evaluator_module.RegressionPredictionSample),
        ], model_names=_CANDIDATE_ONLY),
    ]


def _gated(metric: tfma.MetricConfig, lower_bound: float, max_drop: float) -> tfma.MetricConfig:
    """Gate on the overall slice only: a plain MetricConfig.threshold would also apply to every
    slice, and a slice of 7 rows (a rare payment type) would veto a good model."""
    metric.per_slice_thresholds.append(tfma.PerSliceMetricThreshold(
        slicing_specs=[tfma.SlicingSpec()],
        threshold=tfma.MetricThreshold(
            value_threshold=tfma.GenericValueThreshold(lower_bound={"value": lower_bound}),
            change_threshold=tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                absolute={"value": -max_drop - _EPSILON},
            ),
        ),
    ))
    return metric


def _ours(metric: type, config: str = "") -> tfma.MetricConfig:
    """A metric of components/evaluate/evaluator_module.py: TFMA's, with combiners that take groups of rows."""
    return tfma.MetricConfig(class_name=metric.__name__, module=evaluator_module.__name__,
                             config=config)


def _plots(*metrics: type) -> list[tfma.MetricConfig]:
    return [_ours(metric, _PLOT_CONFIGS.get(metric, "")) for metric in metrics]


# Plot data for the tracked run (tracking/plots.py draws it): ROC and PR curves come from the
# confusion matrices at thresholds, one-vs-rest per binarized class; the class-by-class confusion
# matrix needs the non-binarized spec.
_CURVE_PLOTS = (evaluator_module.BatchedConfusionMatrixPlot, evaluator_module.BatchedCalibrationPlot)
_CONFUSION_PLOT = evaluator_module.BatchedMultiClassConfusionMatrixPlot
# The confusion plot's matrices also give accuracy, precision and recall
# (components/evaluate/evaluator_module.py): they must be computed at the thresholds those read.
_PLOT_CONFIGS = {_CONFUSION_PLOT: json.dumps({"thresholds": list(evaluator_module.MATRIX_THRESHOLDS)})}


# Metrics for the evaluated model only. Against a baseline, TFMA computes every metric of a spec
# for both models unless the spec names its models; the baseline only needs the gated metric.
_CANDIDATE_ONLY = [tfma.CANDIDATE_KEY]


def make_eval_config(spec: DatasetSpec, settings: Settings,
                     module_fingerprint: str = "") -> tfma.EvalConfig:
    """module_fingerprint: of the Evaluator's modules, carried in the accuracy metric's config.
    TFX loads them by dotted path and caches the Evaluator on its properties alone."""
    # Accuracy, precision and recall off the multi-class confusion matrix the confusion plot
    # computes anyway (components/evaluate/evaluator_module.py): no combiner of their own run per example.
    # The name in the config too: tracking names the gate's parameters after it.
    accuracy, precision, recall = (
        _ours(metric, json.dumps({"name": name, **extra}))
        for metric, name, extra in (
            (evaluator_module.ArgmaxAccuracy, evaluator_module.ACCURACY_NAME,
             {"code_fingerprint": module_fingerprint} if module_fingerprint else {}),
            (evaluator_module.ClassPrecision, evaluator_module.PRECISION_NAME, {}),
            (evaluator_module.ClassRecall, evaluator_module.RECALL_NAME, {})))
    count = _ours(evaluator_module.BatchedExampleCount)
    max_drop = settings.gate(spec, "max_metric_drop").value
    if spec.is_regression:
        metrics_specs = regression_metrics_specs(spec, settings, module_fingerprint)
    elif spec.task == BINARY:
        # Two softmax outputs: binarize on the positive class (id 1) for AUC, precision, recall.
        binarize = tfma.BinarizationOptions(class_ids={"values": [1]})
        metrics_specs = [
            tfma.MetricsSpec(metrics=[count, accuracy, *_plots(_CONFUSION_PLOT)],
                             model_names=_CANDIDATE_ONLY),
            tfma.MetricsSpec(
                metrics=[_gated(_ours(evaluator_module.BatchedAUC, '{"name": "auc"}'),
                                settings.gate(spec, "min_auc").value, max_drop)],
                binarize=binarize),
            tfma.MetricsSpec(metrics=[precision, recall, *_plots(*_CURVE_PLOTS)],
                             binarize=binarize, model_names=_CANDIDATE_ONLY),
        ]
    else:
        _gated(accuracy, settings.gate(spec, "min_accuracy").value, max_drop)
        metrics_specs = [
            tfma.MetricsSpec(metrics=[accuracy]),
            tfma.MetricsSpec(metrics=[count, *_plots(_CONFUSION_PLOT)],
                             model_names=_CANDIDATE_ONLY),
            tfma.MetricsSpec(
                metrics=[precision, recall, *_plots(*_CURVE_PLOTS)],
                binarize=tfma.BinarizationOptions(
                    class_ids={"values": list(range(spec.num_classes))}),
                model_names=_CANDIDATE_ONLY,
            ),
        ]
    slicing = [tfma.SlicingSpec()]
    if spec.slice_by:
        slicing.append(tfma.SlicingSpec(feature_keys=[spec.slice_by]))
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=SERVING_DEFAULT,
                prediction_key=PREDICTION if spec.is_regression else PROBABILITIES,
                label_key=spec.transformed_label,
                preprocessing_function_names=[TRANSFORM_FEATURES],
            )
        ],
        metrics_specs=metrics_specs,
        slicing_specs=slicing,
    )
