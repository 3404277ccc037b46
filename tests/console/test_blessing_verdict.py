"""Why a model is not blessed: the phrases read from TFMA's ValidationResult."""
from __future__ import annotations

import pytest

tfma = pytest.importorskip("tensorflow_model_analysis")

from tensorflow_model_analysis.proto import validation_result_pb2  # noqa: E402

from pipeline.console import blessing_verdict  # noqa: E402


def _failure(result, name: str, value: float, *, lower: float | None = None,
             drop: float | None = None, is_diff: bool = False, slice_column: str = ""):
    per_slice = result.metric_validations_per_slice.add()
    if slice_column:
        key = per_slice.slice_key.single_slice_keys.add()
        key.column, key.bytes_value = slice_column, b"Dream"
    failure = per_slice.failures.add()
    failure.metric_key.name = name
    failure.metric_key.is_diff = is_diff
    failure.metric_value.double_value.value = value
    if lower is not None:
        failure.metric_threshold.value_threshold.lower_bound.value = lower
    if drop is not None:
        failure.metric_threshold.change_threshold.absolute.value = -drop - 1e-10
    return result


def test_a_value_gate_names_the_figure_the_gate_and_where_to_change_it():
    result = _failure(validation_result_pb2.ValidationResult(), "auc", 0.82, lower=0.93)
    assert blessing_verdict.reasons(result, {"auc": 0.82}) == [
        "AUC 0.820 is below the gate 0.930 (gates.min_auc in spec.yaml, or --min-auc)"]


def test_a_change_gate_names_the_drop_and_the_champion():
    result = _failure(validation_result_pb2.ValidationResult(), "sparse_categorical_accuracy",
                      -0.012, drop=0.005, is_diff=True)
    (reason,) = blessing_verdict.reasons(result, {"sparse_categorical_accuracy": 0.812})
    assert reason == ("accuracy 0.812 is 0.012 below the champion (allowed drop 0.005: "
                      "gates.max_metric_drop in spec.yaml, or --max-metric-drop)")
    assert blessing_verdict.naming_champion(reason, "3").startswith(
        "accuracy 0.812 is 0.012 below champion version 3 (")


def test_every_failure_is_listed_and_a_slice_is_named():
    result = _failure(validation_result_pb2.ValidationResult(), "auc", 0.5, lower=0.6)
    _failure(result, "sparse_categorical_accuracy", 0.4, lower=0.9, slice_column="island")
    reasons = blessing_verdict.reasons(result, {})
    assert len(reasons) == 2
    assert reasons[1].startswith("accuracy 0.400 is below the gate 0.900 on slice island=Dream")


def test_verdict_reads_the_validations_file_the_evaluator_writes(tmp_path):
    import tensorflow as tf

    result = _failure(validation_result_pb2.ValidationResult(validation_ok=False), "auc", 0.7,
                      lower=0.75)
    with tf.io.TFRecordWriter(str(tmp_path / "validations.tfrecord")) as writer:
        writer.write(result.SerializeToString())
    assert blessing_verdict.verdict(str(tmp_path), {"auc": 0.7}) == (
        "AUC 0.700 is below the gate 0.750 (gates.min_auc in spec.yaml, or --min-auc)")
    assert "no readable validation result" in blessing_verdict.verdict(str(tmp_path / "none"), {})


@pytest.mark.parametrize("value, bound, text", [
    (0.993, 0.99999, "AUC 0.993 is below the gate 0.99999"),
    (0.9991, 0.9995, "AUC 0.999 is below the gate 0.9995"),
    (0.99991, 0.99999, "AUC 0.99991 is below the gate 0.99999"),
    (0.82, 0.93, "AUC 0.820 is below the gate 0.930"),
])
def test_figures_are_shown_apart_from_the_gate(value, bound, text):
    result = _failure(validation_result_pb2.ValidationResult(), "auc", value, lower=bound)
    assert blessing_verdict.reasons(result, {})[0].startswith(text)
