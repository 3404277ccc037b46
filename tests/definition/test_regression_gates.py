"""The regression eval config's gates (definition/eval_config.py), judged by TFMA's own metrics
validator: RMSE against the champion (lower is better), against predicting the training mean,
and against an optional bound."""
from __future__ import annotations

import pytest

tfma = pytest.importorskip("tensorflow_model_analysis")

from tensorflow_model_analysis.evaluators import metrics_validator  # noqa: E402
from tensorflow_model_analysis.metrics import metric_types  # noqa: E402

from pipeline.config.settings import Settings  # noqa: E402
from pipeline.definition.eval_config import gated_metric, make_eval_config  # noqa: E402

RMSE, OVER_MEAN = "root_mean_squared_error", "rmse_improvement_over_mean"


def _failed(settings: Settings, rmse: float, over_mean: float, champion: float | None) -> set:
    """The names of the gates a candidate with these figures fails (empty: blessed)."""
    config = make_eval_config(settings.load_spec(), settings)
    config = tfma.utils.update_eval_config_with_defaults(
        config, has_baseline=champion is not None, rubber_stamp=champion is None)
    model = tfma.CANDIDATE_KEY if champion is not None else ""
    metrics = {metric_types.MetricKey(RMSE, model_name=model): rmse,
               metric_types.MetricKey(OVER_MEAN, model_name=model): over_mean}
    if champion is not None:
        metrics[metric_types.MetricKey(RMSE, model_name=tfma.BASELINE_KEY)] = champion
        metrics[metric_types.MetricKey(RMSE, model_name=model, is_diff=True)] = rmse - champion
    result = metrics_validator.validate_metrics(((), metrics), config)
    return {(f.metric_key.name, f.metric_key.is_diff)
            for s in result.metric_validations_per_slice for f in s.failures}


def test_a_better_model_than_the_mean_and_the_champion_is_blessed():
    settings = Settings(dataset="taxi_fare")
    assert gated_metric(settings.load_spec()) == RMSE
    assert _failed(settings, rmse=3.0, over_mean=0.7, champion=None) == set()
    assert _failed(settings, rmse=3.0, over_mean=0.7, champion=3.0) == set()  # a re-run ties
    assert _failed(settings, rmse=2.9, over_mean=0.7, champion=3.0) == set()


def test_an_rmse_above_the_champions_is_not_blessed_lower_is_better():
    settings = Settings(dataset="taxi_fare")
    assert _failed(settings, rmse=3.1, over_mean=0.7, champion=3.0) == {(RMSE, True)}
    # Allowed: up to 5% above the champion's.
    assert _failed(settings.replace(max_rmse_increase=0.05), rmse=3.1, over_mean=0.7,
                   champion=3.0) == set()


def test_a_model_no_better_than_the_training_mean_is_not_blessed():
    settings = Settings(dataset="taxi_fare")
    assert _failed(settings, rmse=11.5, over_mean=0.0, champion=None) == {(OVER_MEAN, False)}
    assert _failed(settings, rmse=12.0, over_mean=-0.04, champion=None) == {(OVER_MEAN, False)}
    strict = settings.replace(min_improvement_over_mean=0.8)
    assert _failed(strict, rmse=3.0, over_mean=0.7, champion=None) == {(OVER_MEAN, False)}


def test_a_bound_on_the_rmse_applies_when_set():
    settings = Settings(dataset="taxi_fare", max_rmse=2.5)
    assert _failed(settings, rmse=3.0, over_mean=0.7, champion=None) == {(RMSE, False)}
    assert _failed(settings, rmse=2.4, over_mean=0.8, champion=None) == set()


def test_the_summary_line_shows_the_gated_improvement_over_the_mean_and_its_gate():
    # "R² -0.00, blessed yes" read as a mistake: the line now says what the gate judged. The
    # gate is read back from the eval config as TFX records it on the Evaluator's execution.
    from google.protobuf import json_format

    from pipeline.console import summary_figures

    def recorded(settings: Settings) -> str:
        config = make_eval_config(settings.load_spec(), settings)
        return json_format.MessageToJson(config, preserving_proto_field_name=True)

    settings = Settings(dataset="taxi_fare")
    gate = summary_figures._improvement_gate(recorded(settings))
    assert 0 < gate < 1e-6  # left at 0: any improvement
    assert summary_figures._improvement_over_mean(0.0031, gate) == (
        "0.3% below the training mean's RMSE (gate > 0)")
    strict = summary_figures._improvement_gate(
        recorded(settings.replace(min_improvement_over_mean=0.5)))
    assert strict == 0.5
    assert summary_figures._improvement_over_mean(0.692, strict) == (
        "69.2% below the training mean's RMSE (gate 50.0%)")
    assert summary_figures._improvement_gate("") is None
    assert summary_figures._improvement_over_mean(-0.04, None) == (
        "4.0% above the training mean's RMSE")
