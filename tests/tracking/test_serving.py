"""Serving: the pyfunc around serving_raw, and a real `mlflow models serve` of the champion."""
from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import os
import socket
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlflow_runs
import toy_saved_model
from mlflow_runs import runs  # noqa: F401 - a pytest fixture
from components.train import export_signatures
from pipeline.bench import baselines
from pipeline.config.settings import Settings, from_args
from pipeline.tracking import mlflow_cli, mlflow_store, registry, serving_pyfunc


def test_pyfunc_names_match_the_exported_signature():
    # serving_pyfunc.py may not import the repository's code (it travels inside the model).
    assert serving_pyfunc.SIGNATURE == export_signatures.SERVING_RAW
    assert serving_pyfunc.SIGNATURE_PROBABILITIES == export_signatures.PROBABILITIES
    assert serving_pyfunc.SIGNATURE_CLASS == export_signatures.CLASS_NAME


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory) -> serving_pyfunc.RawFeaturesModel:
    """tests/toy_saved_model.py's classifier, loaded as the pyfunc loads the pipeline's model."""
    path = toy_saved_model.write(tmp_path_factory.mktemp("toy") / "saved_model")
    return serving_pyfunc.RawFeaturesModel(path, toy_saved_model.CLASSES)


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


def test_pyfunc_takes_columns_as_they_come(toy_model):
    # Extra columns and any order; pandas' own missing values; numbers in a string column.
    frame = pd.DataFrame({"extra": [1, 2], "color": pd.Series(["red", pd.NA], dtype="string"),
                          "x": pd.Series([2.0, pd.NA], dtype="Float64")})
    expected = toy_model.predict(pd.DataFrame({"x": [2.0, np.nan], "color": ["red", None]}))
    pd.testing.assert_frame_equal(toy_model.predict(frame), expected)
    assert list(toy_model.predict({"x": [0], "color": [12345]})["class"]) == ["high"]
    untouched = frame.copy()
    toy_model.predict(frame)
    pd.testing.assert_frame_equal(frame, untouched)  # the caller's frame is left as it was


def test_pyfunc_freezes_the_heap_only_in_a_scoring_server(toy_model, monkeypatch):
    """In `mlflow models serve`, the loaded model and libraries leave the garbage collector's
    view (full collections walked them all: ~0.3 s stalls); anywhere else nothing changes."""
    import gc

    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append("collect"))
    monkeypatch.setattr(serving_pyfunc, "RawFeaturesModel", lambda path, classes: toy_model)
    config = {serving_pyfunc.CLASSES_KEY: ["low", "high"]}
    monkeypatch.delenv(serving_pyfunc.SCORING_SERVER_ENV, raising=False)
    assert serving_pyfunc._load_pyfunc("data", config) is toy_model and calls == []
    monkeypatch.setenv(serving_pyfunc.SCORING_SERVER_ENV, "file:///model")
    serving_pyfunc._load_pyfunc("data", config)
    assert calls == ["collect", "freeze"]


def test_scoring_server_env_name_is_mlflows():
    from mlflow.pyfunc import scoring_server

    assert serving_pyfunc.SCORING_SERVER_ENV == scoring_server._SERVER_MODEL_PATH


def test_serve_command_runs_one_worker_per_core_unless_told(monkeypatch):
    def workers(settings):
        command = mlflow_cli.serve_command(settings)
        return command[command.index("--workers") + 1]

    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert Settings().serve_workers == 0 and workers(Settings()) == "3"
    assert workers(from_args(["--serve-workers", "5"])) == "5"
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert workers(Settings()) == "1"


def test_serve_env_puts_the_start_up_hook_first(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = mlflow_cli.serve_env(Settings())
    assert env["PYTHONPATH"].split(os.pathsep) == [mlflow_cli.SERVE_HOOK_DIR, "/elsewhere"]
    assert Path(mlflow_cli.SERVE_HOOK_DIR, "sitecustomize.py").is_file()
    monkeypatch.delenv("PYTHONPATH")
    assert mlflow_cli.serve_env(Settings())["PYTHONPATH"] == mlflow_cli.SERVE_HOOK_DIR


def _serve_hook():
    """serve_hook/sitecustomize.py as a module of another name (this process has started)."""
    spec = importlib.util.spec_from_file_location(
        "serve_hook_under_test", Path(mlflow_cli.SERVE_HOOK_DIR) / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_serve_hook_gives_uvicorns_worker_socket_tcp_nodelay():
    """uvicorn --workers N binds its socket with proto 0, so asyncio leaves Nagle's algorithm on
    for every connection (each answer then waits ~40 ms for a delayed ACK). The hook's socket
    says IPPROTO_TCP, and the connections asyncio accepts from it get TCP_NODELAY."""
    from uvicorn.config import Config

    hook = _serve_hook()

    class PatchedConfig(Config):
        pass

    hook.keep_tcp_nodelay(PatchedConfig)
    hook.keep_tcp_nodelay(PatchedConfig)  # once is enough
    assert PatchedConfig.bind_socket.__wrapped__ is Config.bind_socket
    sock = PatchedConfig(app="app:app", host="127.0.0.1", port=0).bind_socket()
    assert sock.proto == socket.IPPROTO_TCP and sock.get_inheritable()

    async def nodelay_of_an_accepted_connection() -> int:
        accepted = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                accepted.set_result(transport.get_extra_info("socket").getsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        try:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            result = await asyncio.wait_for(accepted, 10)
            writer.close()
            return result
        finally:
            server.close()

    assert asyncio.run(nodelay_of_an_accepted_connection()) != 0

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
        assert hook.with_tcp_proto(unix) is unix  # anything else is left alone


def test_request_body_is_dataframe_split_with_null_for_missing():
    frame = pd.DataFrame({"x": [1.5, np.nan], "color": ["red", None]})
    body = json.loads(mlflow_cli.request_body(frame))
    assert body == {"dataframe_split": {"columns": ["x", "color"],
                                        "data": [[1.5, "red"], [None, None]]}}


# ---- a real `mlflow models serve` of the champion ----------------------------------------

@pytest.fixture(scope="module")
def served(runs):
    # Two workers whatever the cores: the multi-process path `make serve` takes on most machines.
    settings = runs.settings.replace(serve_port=mlflow_runs.free_port(), serve_workers=2)
    command = mlflow_cli.serve_command(settings)
    assert command[command.index("--env-manager") + 1] == "local"
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--workers") + 1] == "2"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(mlflow_store.TRACKING_URI_ENV, raising=False)
        env = mlflow_cli.serve_env(settings)
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

    _, specs = champion_saved_model.signatures[export_signatures.SERVING_RAW].structured_input_signature
    numeric = {n for n, s in specs.items() if s.dtype != tf.string}
    spec = runs.settings.load_spec()
    return registry.feature_rows(spec.csv_path, [f.name for f in spec.model_features], numeric)


def _assert_same_answers(served_frame: pd.DataFrame, expected: dict, runs) -> None:
    """The server's probabilities and classes equal the SavedModel's in process (1e-5)."""
    classes = list(runs.settings.load_spec().classes)
    np.testing.assert_allclose(
        served_frame[[serving_pyfunc.probability_column(c) for c in classes]].to_numpy(),
        expected[export_signatures.PROBABILITIES], atol=1e-5)
    assert list(served_frame["class"]) == [c.decode() for c in expected[export_signatures.CLASS_NAME]]


def _in_process(saved_model, frame: pd.DataFrame) -> dict:
    import tensorflow as tf

    fn = saved_model.signatures[export_signatures.SERVING_RAW]
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
    _assert_same_answers(served_frame, _in_process(champion_saved_model, rows), runs)


@pytest.mark.e2e
def test_concurrent_single_row_requests_all_get_the_in_process_answer(served, rows, runs,
                                                                      champion_saved_model):
    """16 clients, 4 single-row requests each, on kept-alive connections (~64 requests)."""
    clients, each = 16, 4
    with_gaps = rows[rows.isna().any(axis=1)].head(clients)
    picked = pd.concat([with_gaps, rows.drop(with_gaps.index)]).head(clients * each)
    picked = picked.reset_index(drop=True)
    bodies = baselines.serving_bodies(picked, 1)
    answers, _ = baselines.post_concurrently(mlflow_cli.invocations_url(served), bodies,
                                             clients, len(bodies), time_limit_s=120)
    assert all(a is not None and a[0] == 200 for a in answers), \
        [a[:2] if a else a for a in answers if a is None or a[0] != 200]
    served_frame = pd.DataFrame([json.loads(body)["predictions"][0] for _, _, body in answers])
    _assert_same_answers(served_frame, _in_process(champion_saved_model, picked), runs)


@pytest.mark.e2e
def test_one_client_is_not_held_by_delayed_acks(served, rows):
    """With Nagle's algorithm on (uvicorn --workers N without the serve hook), every answer on a
    kept-alive connection waits for the client's delayed ACK: 40 ms or more, every time."""
    bodies = baselines.serving_bodies(rows.head(20), 1)
    answers, _ = baselines.post_concurrently(mlflow_cli.invocations_url(served), bodies, 1,
                                             len(bodies), time_limit_s=60)
    assert all(a is not None and a[0] == 200 for a in answers)
    assert statistics.median(seconds for _, seconds, _ in answers) < 0.040


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
    monkeypatch.delenv(mlflow_store.TRACKING_URI_ENV, raising=False)
    out = io.StringIO()
    assert mlflow_cli.predict(served, rows=3, out=out) == 0
    lines = out.getvalue().splitlines()
    assert "HTTP 200" in lines
    answers = lines[lines.index("HTTP 200") + 2:]
    classes = set(served.load_spec().classes)
    assert len(answers) == 3
    assert all(line.split()[0] in classes and line.split()[1] in classes for line in answers)
