"""The tracked run's regression plots (pipeline/tracking/plots.py) from what the Evaluator
writes: its sample of (actual, predicted) pairs and its RMSE per slice."""
from __future__ import annotations

import pytest

from pipeline.tracking import plots


def test_sample_pairs_read_tfmas_array_value_as_actual_predicted_rows():
    value = {"arrayValue": {"dataType": "FLOAT64", "shape": [3, 2],
                            "float64Values": [1.0, 1.5, 2.0, "NaN", 3.0, 2.5]}}
    pairs = plots.sample_pairs(value)
    assert pairs[0] == (1.0, 1.5) and pairs[2] == (3.0, 2.5) and len(pairs) == 3
    assert plots.sample_pairs({}) == []


def test_regression_plots_are_written_as_png(tmp_path):
    pairs = [(float(a), float(a) + (-1) ** a) for a in range(50)]
    written = [plots.predicted_vs_actual(pairs, tmp_path / plots.PREDICTED_FILE),
               plots.residuals(pairs, tmp_path / plots.RESIDUALS_FILE),
               plots.rmse_by_slice({"overall": 1.0, "payment_type:Cash": 1.2},
                                   {"overall": 50, "payment_type:Cash": 20},
                                   tmp_path / plots.SLICE_RMSE_FILE)]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Training curves show RMSE beside the loss when the history has no accuracy.
    curves = plots.training_curves({"loss": [2.0, 1.0], "val_loss": [2.1, 1.2],
                                    "rmse": [3.0, 2.0], "val_rmse": [3.1, 2.2]},
                                   tmp_path / plots.TRAINING_FILE)
    assert curves.stat().st_size > 0


@pytest.mark.parametrize("history, metric", [({"accuracy": [0.5]}, "accuracy"),
                                             ({"rmse": [1.0]}, "rmse")])
def test_training_curves_pick_the_tasks_metric(tmp_path, history, metric, monkeypatch):
    titles = []
    from matplotlib.axes import Axes

    original = Axes.set_title
    monkeypatch.setattr(Axes, "set_title", lambda self, t, *a, **k: (titles.append(t),
                                                                      original(self, t, *a, **k)))
    plots.training_curves({"loss": [1.0], **history}, tmp_path / "curves.png")
    assert titles == ["loss", metric]


def test_classification_runs_do_not_log_the_regression_settings():
    from pipeline.config.settings import REGRESSION_SETTINGS, Settings
    from pipeline.tracking import pipeline_runs

    taxi = Settings(dataset="taxi")
    assert set(REGRESSION_SETTINGS).isdisjoint(pipeline_runs.settings_params(
        taxi, taxi.load_spec()))
    fare = Settings(dataset="taxi_fare", regression_loss="huber")
    params = pipeline_runs.settings_params(fare, fare.load_spec())
    assert params["regression_loss"] == "huber" and "max_rmse" in params


def test_the_gates_logged_are_those_the_run_was_judged_by():
    # A gate left to the spec was logged as `None`, and the other tasks' gates beside it.
    from pipeline.config.settings import Settings
    from pipeline.tracking import pipeline_runs

    fare = Settings(dataset="taxi_fare", min_improvement_over_mean=0.25)
    params = pipeline_runs.settings_params(fare, fare.load_spec())
    assert params["min_improvement_over_mean"] == "0.25"  # the flag's
    assert params["max_rmse_increase"] == str(fare.gate(fare.load_spec(), "max_rmse_increase").value)
    assert "min_auc" not in params and "min_accuracy" not in params
    taxi = Settings(dataset="taxi")
    params = pipeline_runs.settings_params(taxi, taxi.load_spec())
    spec_gate = taxi.gate(taxi.load_spec(), "min_auc")
    assert params["min_auc"] == str(spec_gate.value) != "None"
    assert "min_accuracy" not in params and "min_improvement_over_mean" not in params
