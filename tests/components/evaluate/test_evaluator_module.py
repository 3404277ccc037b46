"""The Evaluator's module code (components/evaluate/evaluator_module.py) and what the eval config asks of TFMA:
rows grouped by slice, accuracy off the confusion matrix, the baseline scored on the gated metric."""
from __future__ import annotations

import json
import pickle

import apache_beam as beam
import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.extractors import slice_key_extractor
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.slicer import slicer_lib

from components.evaluate import evaluator_module, row_batch_combiners, slice_groups
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
    computations = evaluator_module.ArgmaxAccuracy().computations(eval_config=tfma.EvalConfig())
    results = _run_computations(computations, inputs)
    key = metric_types.MetricKey(name=evaluator_module.ACCURACY_NAME)
    expected = float(np.mean(probabilities.argmax(axis=1) == labels))
    assert results[key] == pytest.approx(expected, abs=1e-12)
    # It shares the confusion plot's matrices instead of running a combiner of its own.
    plot = evaluator_module.BatchedMultiClassConfusionMatrixPlot(
        thresholds=list(evaluator_module.MATRIX_THRESHOLDS)).computations(eval_config=tfma.EvalConfig())
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
        evaluator_module.ClassPrecision().computations(sub_keys=sub_keys, eval_config=config)
        + evaluator_module.ClassRecall().computations(sub_keys=sub_keys, eval_config=config), inputs)
    theirs = _run_computations(
        tfma.metrics.Precision().computations(sub_keys=sub_keys, eval_config=config)
        + tfma.metrics.Recall().computations(sub_keys=sub_keys, eval_config=config), inputs)
    for name in (evaluator_module.PRECISION_NAME, evaluator_module.RECALL_NAME):
        for sub_key in sub_keys:
            key = metric_types.MetricKey(name=name, sub_key=sub_key)
            assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-12), key


def _batches(rng, classes: int, models: list[str], batches: int = 3, size: int = 97):
    """Batched extracts as TFMA's extractors leave them before the per-example split: a
    slicing column with a rare value, a label column, each model's probabilities."""
    out = []
    for _ in range(batches):
        labels = rng.integers(0, classes, size=(size, 1))
        sharp = rng.dirichlet(np.full(classes, 0.3), size=size)
        # The serving signature's outputs: the class name first, then the probabilities.
        probabilities = {name: {"class_name": np.full(size, b"a"), "probabilities": np.where(
            rng.random((size, 1)) < 0.5, sharp, rng.dirichlet(np.full(classes, 5.0), size=size))}
            for name in models}
        # Edges: ties, certainties and values on bucket and threshold boundaries.
        edges = np.zeros((5, classes))
        edges[0, :2] = 0.5  # a tie at the threshold
        edges[1, 1] = edges[2, 0] = 1.0
        edges[3, :] = 1.0 / classes
        edges[4, :2] = 0.75, 0.25
        for name in models:
            probabilities[name]["probabilities"][:5] = edges
        # Object arrays of bytes, as TFMA decodes string columns.
        slices = rng.choice([b"Cash", b"Credit Card", b"No Charge"], p=[0.5, 0.48, 0.02],
                            size=(size, 1)).astype(object)
        out.append({
            constants.FEATURES_KEY: {"payment_type": slices, "fare": rng.random((size, 1))},
            constants.LABELS_KEY: labels if len(models) == 1 else {m: labels for m in models},
            constants.PREDICTIONS_KEY: (probabilities[models[0]] if len(models) == 1
                                        else probabilities),
            constants.EXAMPLE_WEIGHTS_KEY: None,
        })
    return out


def _append(item, path: str) -> None:
    with open(path, "ab") as f:
        pickle.dump(item, f)


def _evaluate(batches, eval_config, tail, folder) -> dict:
    """Metrics and plots per slice from TFMA's own evaluator, run by Beam, after `tail`."""
    kinds = (constants.METRICS_KEY, constants.PLOTS_KEY)
    with beam.Pipeline() as pipeline:
        extracts = pipeline | beam.Create(batches, reshuffle=False)
        for extractor in tail:
            extracts = extracts | extractor.stage_name >> extractor.ptransform
        evaluator = tfma.evaluators.MetricsPlotsAndValidationsEvaluator(eval_config)
        evaluation = extracts | evaluator.stage_name >> evaluator.ptransform
        for kind in kinds:
            _ = evaluation[kind] | f"Keep{kind}" >> beam.Map(_append, str(folder / kind))
    found = {}
    for kind in kinds:
        with open(folder / kind, "rb") as f:
            while f.peek(1):
                slice_key, values = pickle.load(f)
                found.setdefault(kind, {})[slice_key] = values
    return found


def _leaves(value, path=()) -> dict:
    """Every number of a metric or plot (a proto, a list or a number) by its path, so that they
    compare with a tolerance: the sums run in another order."""
    if hasattr(value, "DESCRIPTOR"):
        value = json_format.MessageToDict(value)
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, (list, tuple)) else None)
    if items is None:
        return {path: value}
    return {k: v for key, item in items for k, v in _leaves(item, path + (key,)).items()}


@pytest.mark.e2e  # TFMA's evaluator in a real Beam pipeline
@pytest.mark.parametrize("classes,models", [(2, ["candidate", "baseline"]), (3, [""])])
def test_rows_grouped_by_slice_give_tfmas_per_example_metrics_and_plots(
        classes, models, monkeypatch, tmp_path):
    """Every metric and plot of the eval config, per slice, as TFMA computes them example by
    example, for a binary task against a baseline and a three-class task on its own."""
    settings = Settings(dataset="taxi" if classes == 2 else "penguins")
    spec = settings.load_spec()
    config = make_eval_config(spec, settings)
    del config.slicing_specs[1:]
    config.slicing_specs.append(tfma.SlicingSpec(feature_keys=["payment_type"]))
    config.model_specs[0].prediction_key = "probabilities"
    config.model_specs[0].label_key = ""
    if len(models) == 2:
        baseline = config.model_specs.add()
        baseline.CopyFrom(config.model_specs[0])
        config.model_specs[0].name, baseline.name, baseline.is_baseline = models + [True]
    config = tfma.utils.update_eval_config_with_defaults(
        config, has_baseline=len(models) == 2, rubber_stamp=len(models) == 1)
    batches = _batches(np.random.default_rng(classes), classes, models)

    (tmp_path / "ours").mkdir(), (tmp_path / "theirs").mkdir()
    ours = _evaluate(batches, config, [slice_groups.GroupRowsBySlice(config)],
                     tmp_path / "ours")
    # TFMA's own path: its combiners, one example at a time, after its per-example split.
    monkeypatch.setattr(row_batch_combiners, "on_rows", lambda computations, _: computations)
    theirs = _evaluate(batches, config, [
        tfma.extractors.UnbatchExtractor(),
        tfma.extractors.SliceKeyExtractor(eval_config=config, materialize=False)],
        tmp_path / "theirs")

    assert ours.keys() == theirs.keys() == {constants.METRICS_KEY, constants.PLOTS_KEY}
    for kind in ours:
        assert ours[kind].keys() == theirs[kind].keys()
        assert len(ours[kind]) == 4  # overall and three payment types
        for slice_key, values in theirs[kind].items():
            assert values.keys() == ours[kind][slice_key].keys()
            assert values, slice_key
            for key, value in values.items():
                mine, expected = _leaves(ours[kind][slice_key][key]), _leaves(value)
                assert mine.keys() == expected.keys(), (slice_key, key)
                assert mine == pytest.approx(expected, rel=1e-9, abs=1e-12, nan_ok=True), (
                    slice_key, key)


def test_group_rows_keeps_each_rows_values_and_drops_the_columns_no_metric_reads():
    batch = _batches(np.random.default_rng(0), 2, [""], batches=1, size=40)[0]
    config = tfma.EvalConfig(slicing_specs=[tfma.SlicingSpec(),
                                            tfma.SlicingSpec(feature_keys=["payment_type"])])
    groups = slice_groups.group_rows(
        batch, slice_groups.slice_specs(config), {"payment_type"},
        slice_key_extractor.ExtractSliceKeysFn(config, materialize=False))
    payment = batch[constants.FEATURES_KEY]["payment_type"][:, 0]
    assert len(groups) == len(set(payment.tolist()))
    seen = 0
    for group in groups:
        assert set(group) == {constants.LABELS_KEY, constants.PREDICTIONS_KEY,
                              constants.EXAMPLE_WEIGHTS_KEY, constants.SLICE_KEY_TYPES_KEY}
        keys = set(group[constants.SLICE_KEY_TYPES_KEY])
        value = next(v for k in keys for c, v in k if c == "payment_type")
        rows = np.flatnonzero(payment == value.encode())
        assert keys == {(), (("payment_type", value),)}
        np.testing.assert_array_equal(group[constants.LABELS_KEY],
                                      batch[constants.LABELS_KEY][rows])
        for output in ("class_name", "probabilities"):
            np.testing.assert_array_equal(group[constants.PREDICTIONS_KEY][output],
                                          batch[constants.PREDICTIONS_KEY][output][rows])
        seen += len(rows)
    assert seen == 40


def test_slices_and_their_columns_include_cross_slices_once():
    by_payment = tfma.SlicingSpec(feature_keys=["payment_type"])
    config = tfma.EvalConfig(
        slicing_specs=[tfma.SlicingSpec(), by_payment],
        cross_slicing_specs=[tfma.CrossSlicingSpec(
            baseline_spec=by_payment,
            slicing_specs=[tfma.SlicingSpec(feature_values={"company": "Flash Cab"})])])
    assert slice_groups.slicing_columns(config) == {"payment_type", "company"}
    specs = slice_groups.slice_specs(config)
    assert len(specs) == 3 and len(set(specs)) == 3
    assert slice_groups.slice_specs(tfma.EvalConfig()) == [slicer_lib.SingleSliceSpec()]


def test_the_evaluator_extractors_end_in_row_groups_not_examples():
    config = tfma.EvalConfig(slicing_specs=[tfma.SlicingSpec(feature_keys=["payment_type"])])
    extractors = evaluator_module.custom_extractors(None, config, None)
    stages = [e.stage_name for e in extractors]
    assert isinstance(extractors[-1].ptransform, beam.ParDo)  # ours, not TFMA's
    assert stages[-1] == slice_groups.GROUP_STAGE_NAME
    assert "ExtractUnbatchedInputs" not in stages
    assert stages.count(slice_groups.GROUP_STAGE_NAME) == 1


@pytest.mark.parametrize("dataset", ["taxi", "penguins"])
def test_the_baseline_model_is_scored_on_the_gated_metric_only(dataset):
    settings = Settings(dataset=dataset)
    spec = settings.load_spec()
    config = make_eval_config(spec, settings)
    assert slice_groups.slicing_columns(config) == ({spec.slice_by} if spec.slice_by else set())
    with_baseline = tfma.utils.update_eval_config_with_defaults(config, has_baseline=True)
    baseline_metrics = {m.class_name for s in with_baseline.metrics_specs
                        if tfma.BASELINE_KEY in s.model_names for m in s.metrics}
    candidate_metrics = {m.class_name for s in with_baseline.metrics_specs
                         if tfma.CANDIDATE_KEY in s.model_names for m in s.metrics}
    gated_class = {"auc": "BatchedAUC", "sparse_categorical_accuracy": "ArgmaxAccuracy"}
    assert baseline_metrics == {gated_class[gated_metric(spec)]}
    assert {"BatchedExampleCount", "ArgmaxAccuracy", "ClassPrecision", "ClassRecall",
            "BatchedConfusionMatrixPlot", "BatchedCalibrationPlot",
            "BatchedMultiClassConfusionMatrixPlot"} <= candidate_metrics
    # TFMA keeps one of the computations of the shared matrices: the plot's must list the
    # thresholds accuracy, precision and recall read.
    plots = [json.loads(m.config) for s in config.metrics_specs for m in s.metrics
             if m.class_name == "BatchedMultiClassConfusionMatrixPlot"]
    assert plots == [{"thresholds": list(evaluator_module.MATRIX_THRESHOLDS)}]
    # Without a baseline (a first run) every spec applies to the one model.
    alone = tfma.utils.update_eval_config_with_defaults(config, has_baseline=False,
                                                       rubber_stamp=True)
    assert all(list(s.model_names) == [""] for s in alone.metrics_specs)


def _regression_batches(rng, models: list[str], batches: int = 3, size: int = 97):
    """Batched extracts of a regression model: labels far from zero, each model's prediction
    and the training label mean its serving signature outputs beside it."""
    out = []
    for _ in range(batches):
        labels = 1000.0 + 50.0 * rng.normal(size=(size, 1))
        predictions = {name: {"prediction": labels[:, 0] + (10.0 + 20.0 * i) * rng.normal(size=size),
                              "training_label_mean": np.full(size, 1002.0)}
                       for i, name in enumerate(models)}
        slices = rng.choice([b"Cash", b"Credit Card", b"No Charge"], p=[0.5, 0.48, 0.02],
                            size=(size, 1)).astype(object)
        out.append({
            constants.FEATURES_KEY: {"payment_type": slices},
            constants.LABELS_KEY: labels if len(models) == 1 else {m: labels for m in models},
            constants.PREDICTIONS_KEY: (predictions[models[0]] if len(models) == 1
                                        else predictions),
            constants.EXAMPLE_WEIGHTS_KEY: None,
        })
    return out


def _regression_expected(batches, model: str, slice_value) -> dict:
    labels, predictions, means = [], [], []
    for batch in batches:
        rows = (batch[constants.FEATURES_KEY]["payment_type"][:, 0] == slice_value
                if slice_value is not None else slice(None))
        label = batch[constants.LABELS_KEY]
        label = label[model] if isinstance(label, dict) else label
        outputs = batch[constants.PREDICTIONS_KEY]
        outputs = outputs.get(model, outputs)
        labels.append(label[rows, 0])
        predictions.append(outputs["prediction"][rows])
        means.append(outputs["training_label_mean"][rows])
    y, p, m = (np.concatenate(v) for v in (labels, predictions, means))
    mse = np.mean((y - p) ** 2)
    return {"example_count": len(y), "mean_squared_error": mse,
            "root_mean_squared_error": np.sqrt(mse), "mean_absolute_error": np.mean(np.abs(y - p)),
            "r_squared": 1 - mse / np.var(y),
            "rmse_improvement_over_mean": 1 - np.sqrt(mse) / np.sqrt(np.mean((y - m) ** 2))}


@pytest.mark.e2e  # TFMA's evaluator in a real Beam pipeline
def test_regression_metrics_by_row_groups_are_their_definitions_per_slice_and_model(tmp_path):
    """The regression eval config (definition/eval_config.py) through TFMA's evaluator on groups
    of rows: MSE, RMSE, MAE, R^2, the improvement over the training mean and the count equal
    their formulas on each slice; the baseline gets the gated RMSE alone."""
    settings = Settings(dataset="taxi_fare")
    config = make_eval_config(settings.load_spec(), settings)
    models = ["candidate", "baseline"]
    baseline = config.model_specs.add()
    baseline.CopyFrom(config.model_specs[0])
    config.model_specs[0].name, baseline.name, baseline.is_baseline = models + [True]
    for spec in config.model_specs:
        spec.label_key = ""
        del spec.preprocessing_function_names[:]
    config = tfma.utils.update_eval_config_with_defaults(config, has_baseline=True)
    batches = _regression_batches(np.random.default_rng(7), models)
    found = _evaluate(batches, config, [slice_groups.GroupRowsBySlice(config)], tmp_path)
    metrics = found[constants.METRICS_KEY]
    assert len(metrics) == 4  # overall and three payment types
    for slice_key, values in metrics.items():
        value = dict(slice_key).get("payment_type")
        value = value.encode() if isinstance(value, str) else value
        by_name = {(k.name, k.model_name): v for k, v in values.items()
                   if not k.is_diff and not k.name.startswith("_")}
        for name, expected in _regression_expected(batches, "candidate", value).items():
            assert by_name[(name, "candidate")] == pytest.approx(expected, rel=1e-9), name
        baseline_names = {name for name, model in by_name if model == "baseline"}
        assert baseline_names == {"root_mean_squared_error"}
        assert by_name[("root_mean_squared_error", "baseline")] == pytest.approx(
            _regression_expected(batches, "baseline", value)["root_mean_squared_error"], rel=1e-9)
        # A sample of (label, prediction) pairs for the plots, at most its size.
        sample = by_name[("prediction_sample", "candidate")]
        assert sample.shape == (min(2000, int(by_name[("example_count", "candidate")])), 2)


def test_regression_figures_keep_r_squared_exact_far_from_zero_and_say_nan_when_undefined():
    rng = np.random.default_rng(3)
    y = 1e9 + rng.normal(size=500)
    p = y + 0.5 * rng.normal(size=500)
    inputs = [metric_types.StandardMetricInputs(
        labels=y[i:i + 50], predictions={"prediction": p[i:i + 50],
                                         "training_label_mean": np.full(50, 1e9)},
        example_weights=None) for i in range(0, 500, 50)]
    config = tfma.EvalConfig(model_specs=[tfma.ModelSpec(prediction_key="prediction")])
    computations = evaluator_module.RegressionRSquared().computations(eval_config=config)
    r2 = _run_computations(computations, inputs)[metric_types.MetricKey(name="r_squared")]
    assert r2 == pytest.approx(1 - np.mean((y - p) ** 2) / np.var(y), rel=1e-9)
    empty = row_batch_combiners.regression_figures(dict.fromkeys(
        row_batch_combiners.REGRESSION_SUMS, 0.0))
    assert empty["count"] == 0 and np.isnan(empty["rmse"]) and np.isnan(empty["r_squared"])
