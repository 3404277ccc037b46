"""Why a regression model is not blessed (pipeline/console/blessing_verdict.py), from failures
shaped as the regression eval config's gates write them (definition/eval_config.py)."""
from __future__ import annotations

import pytest

tfma = pytest.importorskip("tensorflow_model_analysis")

from tensorflow_model_analysis.proto import validation_result_pb2  # noqa: E402

from pipeline.console import blessing_verdict  # noqa: E402


def _failure(name: str, value: float, *, is_diff: bool = False, lower: float | None = None,
             upper: float | None = None, relative: float | None = None):
    result = validation_result_pb2.ValidationResult()
    failure = result.metric_validations_per_slice.add().failures.add()
    failure.metric_key.name, failure.metric_key.is_diff = name, is_diff
    failure.metric_value.double_value.value = value
    threshold = failure.metric_threshold
    if lower is not None:
        threshold.value_threshold.lower_bound.value = lower
    if upper is not None:
        threshold.value_threshold.upper_bound.value = upper
    if relative is not None:
        threshold.change_threshold.relative.value = relative + 1e-10
        threshold.change_threshold.direction = tfma.MetricDirection.LOWER_IS_BETTER
    return result


def test_an_rmse_above_the_champions_names_the_rise_and_the_gate():
    result = _failure("root_mean_squared_error", 0.15, is_diff=True, relative=0.01)
    (reason,) = blessing_verdict.reasons(result, {"root_mean_squared_error": 4.15})
    assert reason == ("RMSE 4.15 is 3.8% above the champion's 4 (allowed 1.0%: "
                      "gates.max_rmse_increase in spec.yaml, or --max-rmse-increase)")
    assert blessing_verdict.naming_champion(reason, "2").startswith(
        "RMSE 4.15 is 3.8% above champion version 2's 4 (")


def test_an_rmse_above_its_bound_and_one_not_beating_the_mean_say_so():
    (above,) = blessing_verdict.reasons(_failure("root_mean_squared_error", 5.5, upper=5.0), {})
    assert above == ("RMSE 5.5 is above the gate 5 (gates.max_rmse in spec.yaml, or --max-rmse)")
    (mean,) = blessing_verdict.reasons(
        _failure("rmse_improvement_over_mean", -0.02, lower=1e-10),
        {"root_mean_squared_error": 10.2})
    assert mean.startswith("RMSE 10.2 is not below predicting the training mean (RMSE 10")
    assert mean.endswith("the gate asks 0.0% lower (gates.min_improvement_over_mean in "
                         "spec.yaml, or --min-improvement-over-mean)")
    (short,) = blessing_verdict.reasons(
        _failure("rmse_improvement_over_mean", 0.1, lower=0.25), {"root_mean_squared_error": 9.0})
    assert short.startswith("RMSE 9 is 10.0% below predicting the training mean (RMSE 10)")
    assert "the gate asks 25.0% lower" in short


class _Node:
    """What summary_figures reads of a Trainer execution: its model_run folder."""

    def __init__(self, folder):
        self.folder = str(folder)

    def output_uri(self, key):
        return self.folder


@pytest.mark.parametrize("history, line", [
    ({"val_loss": [0.5, 0.3, 0.4], "val_accuracy": [0.8, 0.9, 0.85]},
     "val accuracy 0.900 (epoch 2 of 3)"),  # classification, as it always read
    ({"val_loss": [0.5, 0.3], "val_rmse": [4.5, 3.2861]}, "val RMSE 3.29 (epoch 2 of 2)"),
    ({"val_loss": [0.2], "val_rmse": [12345.6]}, "val RMSE 12,346 (epoch 1 of 1)"),
    ({"val_loss": [0.2], "val_rmse": [0.012345]}, "val RMSE 0.0123 (epoch 1 of 1)"),
])
def test_the_trainer_line_shows_accuracy_or_rmse(tmp_path, history, line):
    import json

    from components.train.trainer_module import HISTORY_FILE
    from pipeline.console import summary_figures

    (tmp_path / HISTORY_FILE).write_text(json.dumps(history))
    assert summary_figures._trainer(_Node(tmp_path)) == line
