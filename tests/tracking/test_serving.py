"""Serving: the pyfunc around serving_raw, and a real `mlflow models serve` of the champion."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlflow_runs
from components import signatures
from pipeline.tracking import mlflow_cli, pipeline_runs, registry, serving_pyfunc


def test_pyfunc_names_match_the_exported_signature():
    # serving_pyfunc.py may not import the repository's code (it travels inside the model).
    assert serving_pyfunc.SIGNATURE == signatures.SERVING_RAW
    assert serving_pyfunc.SIGNATURE_PROBABILITIES == signatures.PROBABILITIES
    assert serving_pyfunc.SIGNATURE_CLASS == signatures.CLASS_NAME


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory) -> serving_pyfunc.RawFeaturesModel:
    """A SavedModel with a serving_raw signature like the pipeline's: logits are the number x
    (0 when missing) and the length of the string `color`."""
    import tensorflow as tf

    class Toy(tf.Module):
        @tf.function(input_signature=[{"x": tf.TensorSpec([None], tf.float64, name="x"),
                                        "color": tf.TensorSpec([None], tf.string, name="color")}])
        def serve(self, features):
            x = features["x"]
            x = tf.where(tf.math.is_nan(x), tf.zeros_like(x), x)
            length = tf.cast(tf.strings.length(features["color"]), tf.float64)
            probabilities = tf.nn.softmax(tf.cast(tf.stack([x, length], axis=1), tf.float32))
            class_id = tf.argmax(probabilities, axis=1)
            return {"probabilities": probabilities, "class_id": class_id,
                    "class": tf.gather(tf.constant(["low", "high"]), class_id)}

    toy = Toy()
    path = tmp_path_factory.mktemp("toy") / "saved_model"
    tf.saved_model.save(toy, str(path),
                        signatures={signatures.SERVING_RAW: toy.serve.get_concrete_function()})
    return serving_pyfunc.RawFeaturesModel(str(path), ["low", "high"])


def test_pyfunc_sends_missing_values_the_way_serving_raw_expects(toy_model):
    frame = pd.DataFrame({"x": [2.0, None, 1.0], "color": ["red", None, np.nan]})
    result = toy_model.predict(frame)
    assert list(result.columns) == ["probability_low", "probability_high", "class"]
    # row 0: logits (2, 3); rows 1-2: missing number -> NaN -> 0, missing string -> "" -> 0.
    e = np.exp(1.0)
    np.testing.assert_allclose(result["probability_high"], [e / (1 + e), 0.5, 1 / (1 + e)],
                               rtol=1e-6)
    assert list(result["class"]) == ["high", "low", "low"]
    # JSON integers are numbers too.
    assert list(toy_model.predict({"x": [5], "color": ["ab"]})["class"]) == ["low"]


def test_pyfunc_names_the_column_it_cannot_use(toy_model):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="missing feature column.*color"):
        toy_model.predict(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(MlflowException, match="column 'x' must hold numbers"):
        toy_model.predict(pd.DataFrame({"x": ["heavy"], "color": ["red"]}))


def test_request_body_is_dataframe_split_with_null_for_missing():
    frame = pd.DataFrame({"x": [1.5, np.nan], "color": ["red", None]})
    body = json.loads(mlflow_cli.request_body(frame))
    assert body == {"dataframe_split": {"columns": ["x", "color"],
                                        "data": [[1.5, "red"], [None, None]]}}


# ---- a real `mlflow models serve` of the champion ----------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> mlflow_runs.PenguinRuns:
    return mlflow_runs.penguin_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def served(runs):
    settings = runs.settings.replace(serve_port=mlflow_runs.free_port())
    command = mlflow_cli.serve_command(settings)
    assert command[command.index("--env-manager") + 1] == "local"
    assert command[command.index("--host") + 1] == "127.0.0.1"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(pipeline_runs.TRACKING_URI_ENV, raising=False)
        env = mlflow_cli.mlflow_env(settings)
    ping = f"http://127.0.0.1:{settings.serve_port}/ping"
    with mlflow_runs.server(command, env, ping):
        yield settings


def _post(settings, payload: dict) -> tuple[int, dict]:
    status, text = mlflow_cli.post(mlflow_cli.invocations_url(settings), json.dumps(payload))
    return status, json.loads(text)


@pytest.fixture(scope="module")
def champion_saved_model(runs):
    """The champion's SavedModel as the Trainer wrote it, loaded in this process."""
    import tensorflow as tf
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_runs.store_uri(runs.settings))
    version = client.get_model_version_by_alias(runs.settings.registered_model_name,
                                                registry.CHAMPION)
    path = Path(version.tags[registry.TAG_MODEL_URI]) / "Format-Serving"
    return tf.saved_model.load(str(path))


@pytest.fixture(scope="module")
def rows(runs, champion_saved_model) -> pd.DataFrame:
    """Every row of the dataset's features, missing values included."""
    import tensorflow as tf

    _, specs = champion_saved_model.signatures[signatures.SERVING_RAW].structured_input_signature
    numeric = {n for n, s in specs.items() if s.dtype != tf.string}
    spec = runs.settings.load_spec()
    return registry.feature_rows(spec.csv_path, [f.name for f in spec.model_features], numeric)


def _in_process(saved_model, frame: pd.DataFrame) -> dict:
    import tensorflow as tf

    fn = saved_model.signatures[signatures.SERVING_RAW]
    _, specs = fn.structured_input_signature
    inputs = {}
    for name, spec in specs.items():
        if spec.dtype == tf.string:
            inputs[name] = tf.constant(frame[name].fillna("").astype(str).tolist())
        else:
            inputs[name] = tf.constant(frame[name].to_numpy(dtype=np.float64))
    return {k: v.numpy() for k, v in fn(**inputs).items()}


@pytest.mark.e2e
@pytest.mark.parametrize("orient", ["records", "split"])
def test_served_predictions_equal_the_saved_model_in_process(served, rows, runs,
                                                             champion_saved_model, orient):
    assert rows.isna().any().any()  # the data has gaps; they travel as null
    payload = {f"dataframe_{orient}": json.loads(rows.to_json(orient=orient))}
    status, body = _post(served, payload)
    assert status == 200, body
    served_frame = pd.DataFrame(body["predictions"])
    expected = _in_process(champion_saved_model, rows)
    classes = list(runs.settings.load_spec().classes)
    np.testing.assert_allclose(
        served_frame[[serving_pyfunc.probability_column(c) for c in classes]].to_numpy(),
        expected[signatures.PROBABILITIES], atol=1e-5)
    assert list(served_frame["class"]) == [c.decode() for c in expected[signatures.CLASS_NAME]]


@pytest.mark.e2e
def test_malformed_requests_get_400_with_the_reason_and_serving_goes_on(served, rows):
    record = json.loads(rows.head(1).to_json(orient="records"))[0]
    without_island = {k: v for k, v in record.items() if k != "island"}
    status, body = _post(served, {"dataframe_records": [without_island]})
    assert status == 400 and "missing inputs ['island']" in body["message"]

    status, body = _post(served, {"dataframe_records": [dict(record, bill_length_mm="long")]})
    assert status == 400 and "bill_length_mm" in body["message"]

    status, body = _post(served, {"dataframe_records": [record]})
    assert status == 200 and len(body["predictions"]) == 1


@pytest.mark.e2e
def test_predict_command_prints_the_served_answer(served, monkeypatch):
    monkeypatch.delenv(pipeline_runs.TRACKING_URI_ENV, raising=False)
    out = io.StringIO()
    assert mlflow_cli.predict(served, rows=3, out=out) == 0
    lines = out.getvalue().splitlines()
    assert "HTTP 200" in lines
    answers = lines[lines.index("HTTP 200") + 2:]
    classes = set(served.load_spec().classes)
    assert len(answers) == 3
    assert all(line.split()[0] in classes and line.split()[1] in classes for line in answers)
