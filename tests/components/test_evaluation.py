"""The Evaluator's module code (components/evaluation.py) and what the eval config asks of TFMA:
the pruned batch, accuracy off the confusion matrix, the baseline scored on the gated metric."""
from __future__ import annotations

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
    process."""
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
    plot = tfma.metrics.MultiClassConfusionMatrixPlot().computations(
        eval_config=tfma.EvalConfig())
    combiners = {c for c in computations + plot if isinstance(c, metric_types.MetricComputation)}
    assert len(combiners) == 1


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
    assert {"ExampleCount", "ArgmaxAccuracy", "Precision", "Recall", "ConfusionMatrixPlot",
            "CalibrationPlot", "MultiClassConfusionMatrixPlot"} <= candidate_metrics
    # Without a baseline (a first run) every spec applies to the one model.
    alone = tfma.utils.update_eval_config_with_defaults(config, has_baseline=False,
                                                       rubber_stamp=True)
    assert all(list(s.model_names) == [""] for s in alone.metrics_specs)
