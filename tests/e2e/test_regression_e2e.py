"""Regression end to end (docs/regression.md): the real pipeline on a sample of the shipped
taxi_fare dataset, blessed, pushed, registered and served by a real `mlflow models serve`, whose
answers equal the SavedModel's in process; then a worse run that the champion gate refuses."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlflow_runs
from conftest import DATA, write_csv_sample
from pipeline.config.settings import Settings
from pipeline.console import blessing_verdict
from pipeline.tracking import lineage, mlflow_cli, mlflow_store, registry

pytestmark = pytest.mark.e2e

ROWS = 3000
# A barely trained model: one epoch of two hidden units. It cannot match the champion's RMSE,
# and no slack is allowed against it.
WORSE_ARGS = ("--epochs", "1", "--hidden-units", "2", "--max-rmse-increase", "0")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("regression")
    sample = write_csv_sample(DATA / "taxi" / "data.csv", tmp / "input" / "data.csv", rows=ROWS)
    settings = Settings(dataset="taxi_fare", csv=sample, output_root=tmp / "outputs")
    first = mlflow_runs.run(settings, "--csv", str(sample), "--epochs", "15")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    worse = mlflow_runs.run(settings, "--csv", str(sample), *WORSE_ARGS)
    assert worse.returncode == 0, worse.stdout[-3000:] + worse.stderr[-3000:]
    return settings, first.stdout, worse.stdout


@pytest.fixture(scope="module")
def client(runs):
    from mlflow import MlflowClient

    return MlflowClient(mlflow_runs.store_uri(runs[0]))


def _line(stdout: str, stage: str) -> str:
    return next(line for line in stdout.splitlines() if line.strip().startswith(stage))


def test_the_first_run_is_blessed_pushed_and_registered_as_champion(runs, client, monkeypatch):
    settings, first, _ = runs
    evaluator = _line(first, "Evaluator")
    assert "RMSE " in evaluator and "MAE " in evaluator and "R² " in evaluator
    assert evaluator.endswith("blessed yes"), evaluator
    assert "below the training mean's RMSE (gate" in evaluator, evaluator  # the gated figure
    assert "val RMSE" in _line(first, "Trainer")
    assert "pushed to" in _line(first, "Pusher")
    champion = client.get_model_version_by_alias(settings.registered_model_name,
                                                 registry.CHAMPION)
    assert champion.version in (1, "1")
    # The pyfunc's signature answers one number per row, in the label's units.
    import mlflow

    monkeypatch.delenv(mlflow_store.TRACKING_URI_ENV, raising=False)
    with mlflow_store.active_store(settings):
        info = mlflow.models.get_model_info(registry.model_uri(settings.registered_model_name))
    assert [(c.name, c.type.name) for c in info.signature.outputs.inputs] == [
        ("prediction", "double")]
    parent = mlflow_runs.parent_run(client, settings, lineage.tfx_run_ids(settings)[0])
    metrics = parent.data.metrics
    for name in ("root_mean_squared_error", "mean_squared_error", "mean_absolute_error",
                 "r_squared", "example_count", "rmse_improvement_over_mean"):
        assert f"eval/{name}" in metrics, name
    assert metrics["eval/r_squared"] > 0.5
    assert metrics["eval/root_mean_squared_error"] == pytest.approx(
        np.sqrt(metrics["eval/mean_squared_error"]), rel=1e-9)
    assert any(k.startswith("eval/payment_type:Cash/root_mean_squared_error") for k in metrics)
    evaluator_run = mlflow_runs.child_runs(client, parent)["Evaluator"]
    plots = {f.path for f in client.list_artifacts(evaluator_run.info.run_id, "plots")}
    assert {"plots/predicted_vs_actual.png", "plots/residuals.png",
            "plots/rmse_by_slice.png"} <= plots


def test_a_run_worse_than_the_champion_is_not_blessed_and_says_why(runs, client):
    settings, _, worse = runs
    evaluator = _line(worse, "Evaluator")
    assert "blessed no" in evaluator and "above the champion's" in evaluator, evaluator
    assert "gates.max_rmse_increase" in evaluator
    assert "not pushed" in _line(worse, "Pusher")
    versions = client.search_model_versions(f"name = '{settings.registered_model_name}'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    second = next(v for v in versions if int(v.version) == 2)
    assert second.tags[registry.TAG_BLESSED] == "false"
    # The registry names the champion by its version.
    assert "above champion version 1's" in second.tags[blessing_verdict.TAG]
    champion = client.get_model_version_by_alias(settings.registered_model_name,
                                                 registry.CHAMPION)
    assert int(champion.version) == 1


@pytest.fixture(scope="module")
def served(runs):
    settings = runs[0].replace(serve_port=mlflow_runs.free_port(), serve_workers=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(mlflow_store.TRACKING_URI_ENV, raising=False)
        env = mlflow_cli.serve_env(settings)
    with mlflow_runs.server(mlflow_cli.serve_command(settings), env,
                            f"http://127.0.0.1:{settings.serve_port}/ping"):
        yield settings


def _in_process(settings: Settings, client, frame: pd.DataFrame) -> np.ndarray:
    """The champion SavedModel's serving_raw answer in this process."""
    import tensorflow as tf

    version = client.get_model_version_by_alias(settings.registered_model_name,
                                                registry.CHAMPION)
    model = tf.saved_model.load(str(Path(version.tags[registry.TAG_MODEL_URI]) /
                                    "Format-Serving"))
    fn = model.signatures["serving_raw"]
    _, specs = fn.structured_input_signature
    columns = {v: k for k, v in settings.load_spec().serving_inputs.items()}
    inputs = {name: tf.constant(frame[columns[name]].fillna("").astype(str).tolist())
              if spec.dtype == tf.string else
              tf.constant(frame[columns[name]].to_numpy(dtype=np.float64))
              for name, spec in specs.items()}
    outputs = fn(**inputs)
    assert set(outputs) == {"prediction"}
    return outputs["prediction"].numpy()


def test_served_predictions_are_in_the_labels_units_and_equal_the_model_in_process(
        served, client):
    spec = served.load_spec()
    types = mlflow_cli.feature_types(served)
    frame = registry.feature_rows(spec.csv_path, list(types),
                                  {n for n, t in types.items() if t != "string"}, rows=500)
    assert frame.isna().any().any()  # gaps travel as null
    status, text = mlflow_cli.post(mlflow_cli.invocations_url(served), json.dumps(
        {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}))
    assert status == 200, text
    answers = pd.DataFrame(json.loads(text)["predictions"])
    assert list(answers.columns) == ["prediction"]
    np.testing.assert_allclose(answers["prediction"].to_numpy(),
                               _in_process(served, client, frame), atol=1e-5, rtol=0)
    # Dollars, not standard deviations: close to the fares themselves.
    fares = pd.read_csv(spec.csv_path, nrows=500)["fare"].to_numpy()
    assert np.median(np.abs(answers["prediction"].to_numpy() - fares)) < 2.0


def test_make_predict_prints_actual_beside_predicted(served, monkeypatch):
    monkeypatch.delenv(mlflow_store.TRACKING_URI_ENV, raising=False)
    out = io.StringIO()
    assert mlflow_cli.predict(served, rows=3, out=out) == 0
    lines = out.getvalue().splitlines()
    header = lines.index("HTTP 200") + 1
    assert lines[header].split() == ["actual", "predicted", "error"]
    rows = [line.split() for line in lines[header + 1:]]
    assert len(rows) == 3
    for actual, predicted, error in rows:
        assert float(predicted) - float(actual) == pytest.approx(float(error), abs=0.01)
