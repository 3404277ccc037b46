"""The Evaluator's module code (components/evaluation.py) and what the eval config asks of TFMA:
the pruned batch, accuracy off the confusion matrix, the baseline scored on the gated metric."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.metrics import metric_types

from components import evaluation
from pipeline.config.settings import Settings
from pipeline.definition.eval_config import gated_metric, make_eval_config


def _run_computations(computations, inputs):
    """TFMA's combiners then its derived computations, as its evaluator chains them, in
    process; like TFMA, a computation that several metrics include runs once."""
    computations = list(dict.fromkeys(computations))
    results = {}
    for c in computations:
        if isinstance(c, metric_types.MetricComputation):
            accumulator = c.combiner.create_accumulator()
            for element in inputs:
                accumulator = c.combiner.add_input(accumulator, element)
            results.update(c.combiner.extract_output(accumulator))
    for c in computations:
        if isinstance(c, metric_types.DerivedMetricComputation):
            results.update(c.result(results))
    return results


def test_argmax_accuracy_counts_the_argmax_class_against_the_label():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(3), size=200)
    labels = rng.integers(0, 3, size=200)
    inputs = [metric_types.StandardMetricInputs(labels=np.array([label]), predictions=p,
                                                example_weights=np.array([1.0]))
              for label, p in zip(labels, probabilities)]
    computations = evaluation.ArgmaxAccuracy().computations(eval_config=tfma.EvalConfig())
    results = _run_computations(computations, inputs)
    key = metric_types.MetricKey(name=evaluation.ACCURACY_NAME)
    expected = float(np.mean(probabilities.argmax(axis=1) == labels))
    assert results[key] == pytest.approx(expected, abs=1e-12)
    # It shares the confusion plot's matrices instead of running a combiner of its own.
    plot = tfma.metrics.MultiClassConfusionMatrixPlot(
        thresholds=list(evaluation.MATRIX_THRESHOLDS)).computations(eval_config=tfma.EvalConfig())
    combiners = {c for c in computations + plot if isinstance(c, metric_types.MetricComputation)}
    assert len(combiners) == 1


@pytest.mark.parametrize("classes", [2, 3])
def test_precision_and_recall_equal_tfmas_own_at_every_class(classes):
    rng = np.random.default_rng(classes)
    # Sharp and flat probability rows, so that some rows have no class above 0.5.
    probabilities = np.concatenate([rng.dirichlet(np.full(classes, 0.3), size=150),
                                    rng.dirichlet(np.full(classes, 5.0), size=150)])
    labels = rng.integers(0, classes, size=300)
    inputs = [metric_types.StandardMetricInputs(labels=np.array([label]), predictions=p,
                                                example_weights=np.array([1.0]))
              for label, p in zip(labels, probabilities)]
    sub_keys = [metric_types.SubKey(class_id=c) for c in range(classes)]
    config = tfma.EvalConfig()
    ours = _run_computations(
        evaluation.ClassPrecision().computations(sub_keys=sub_keys, eval_config=config)
        + evaluation.ClassRecall().computations(sub_keys=sub_keys, eval_config=config), inputs)
    theirs = _run_computations(
        tfma.metrics.Precision().computations(sub_keys=sub_keys, eval_config=config)
        + tfma.metrics.Recall().computations(sub_keys=sub_keys, eval_config=config), inputs)
    for name in (evaluation.PRECISION_NAME, evaluation.RECALL_NAME):
        for sub_key in sub_keys:
            key = metric_types.MetricKey(name=name, sub_key=sub_key)
            assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-12), key


def test_prune_batch_keeps_only_the_slicing_columns_labels_and_predictions():
    batch = {
        constants.FEATURES_KEY: {"payment_type": np.array([b"Cash"]), "fare": np.array([3.0])},
        constants.TRANSFORMED_FEATURES_KEY: {"fare_xf": np.array([0.1])},
        constants.LABELS_KEY: np.array([1]),
        constants.PREDICTIONS_KEY: np.array([[0.2, 0.8]]),
        constants.INPUT_KEY: np.array([b"serialized"]),
    }
    pruned = evaluation.prune_batch(batch, ["payment_type"])
    assert set(pruned[constants.FEATURES_KEY]) == {"payment_type"}
    assert pruned[constants.TRANSFORMED_FEATURES_KEY] == {}
    assert constants.INPUT_KEY not in pruned
    assert pruned[constants.LABELS_KEY] is batch[constants.LABELS_KEY]
    assert set(batch[constants.FEATURES_KEY]) == {"payment_type", "fare"}  # input untouched


@pytest.mark.parametrize("dataset", ["taxi", "penguins"])
def test_the_baseline_model_is_scored_on_the_gated_metric_only(dataset):
    settings = Settings(dataset=dataset)
    spec = settings.load_spec()
    config = make_eval_config(spec, settings)
    assert evaluation.slicing_columns(config) == ({spec.slice_by} if spec.slice_by else set())
    with_baseline = tfma.utils.update_eval_config_with_defaults(config, has_baseline=True)
    baseline_metrics = {m.class_name for s in with_baseline.metrics_specs
                        if tfma.BASELINE_KEY in s.model_names for m in s.metrics}
    candidate_metrics = {m.class_name for s in with_baseline.metrics_specs
                         if tfma.CANDIDATE_KEY in s.model_names for m in s.metrics}
    gated_class = {"auc": "AUC", "sparse_categorical_accuracy": "ArgmaxAccuracy"}
    assert baseline_metrics == {gated_class[gated_metric(spec)]}
    assert {"ExampleCount", "ArgmaxAccuracy", "ClassPrecision", "ClassRecall",
            "ConfusionMatrixPlot",
            "CalibrationPlot", "MultiClassConfusionMatrixPlot"} <= candidate_metrics
    # TFMA keeps one of the computations of the shared matrices: the plot's must list the
    # thresholds accuracy, precision and recall read.
    plots = [json.loads(m.config) for s in config.metrics_specs for m in s.metrics
             if m.class_name == "MultiClassConfusionMatrixPlot"]
    assert plots == [{"thresholds": list(evaluation.MATRIX_THRESHOLDS)}]
    # Without a baseline (a first run) every spec applies to the one model.
    alone = tfma.utils.update_eval_config_with_defaults(config, has_baseline=False,
                                                       rubber_stamp=True)
    assert all(list(s.model_names) == [""] for s in alone.metrics_specs)
