"""The plain baselines `make bench` measures the pipeline against, on the same data in the
same invocation: pandas for StatisticsGen and Transform, Keras `model.fit` on in-memory arrays
for the Trainer, the SavedModel called in process for `mlflow models serve`."""
from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config.settings import Settings

# ---- baselines ---------------------------------------------------------------------------------

def pandas_statistics(csv_path: Path) -> float:
    """What StatisticsGen computes, single process: counts, missing, mean, std, min, max,
    quantiles for numbers; distinct counts and top values for strings. Returns seconds."""
    started = time.perf_counter()
    frame = pd.read_csv(csv_path)
    for name in frame.columns:
        column = frame[name]
        column.isna().sum()
        if pd.api.types.is_numeric_dtype(column):
            column.agg(["count", "mean", "std", "min", "max"])
            column.quantile(np.linspace(0, 1, 11))
            (column == 0).sum()
        else:
            column.nunique()
            column.value_counts().head(10)
    return time.perf_counter() - started


def pandas_transform(csv_path: Path, settings: Settings) -> float:
    """What the Transform does, single process: impute + z-score, quantile buckets,
    vocabularies with OOV, label ids. Returns seconds."""
    spec = settings.load_spec()
    started = time.perf_counter()
    frame = pd.read_csv(csv_path, dtype={f.name: str for f in spec.features
                                          if f.is_categorical or f.role == "label"})
    out = {}
    for feature in spec.model_features:
        column = frame[feature.name]
        if feature.is_numeric:
            values = column.astype("float64")
            imputed = values.fillna(values.mean())
            out[feature.name] = (imputed - imputed.mean()) / imputed.std(ddof=0)
            if feature.buckets:
                edges = np.nanquantile(values, np.linspace(0, 1, feature.buckets + 1)[1:-1])
                out[feature.name + "_bucket"] = np.digitize(imputed, edges)
        else:
            vocab = column.dropna().value_counts().index
            ids = pd.Series(np.arange(len(vocab)), index=vocab)
            out[feature.name] = column.map(ids).fillna(len(vocab)).astype("int64")
    classes = {c: i for i, c in enumerate(spec.classes)}
    out[spec.label] = frame[spec.label].astype(str).map(classes).fillna(-1)
    pd.DataFrame(out)
    return time.perf_counter() - started


def keras_in_memory(settings: Settings) -> dict[str, float]:
    """Train the same model with plain model.fit on the Transform's output held in memory as
    arrays, for as many epochs as the Trainer ran; compare with the Trainer's own fit time."""
    import tensorflow as tf
    import tensorflow_transform as tft
    import tf_keras as keras

    from components.model import ModelConfig, build_model
    from components.training import TIMING_FILE, model_inputs
    from pipeline.definition import builder
    from pipeline.mlmd import queries

    spec = settings.load_spec()
    with queries.open_store_context(settings.metadata_path) as store:
        transform = queries.node_execution(store, settings.full_pipeline_name, builder.TRANSFORM)
        trainer = queries.node_execution(store, settings.full_pipeline_name, builder.TRAINER)
    tft_output = tft.TFTransformOutput(transform.outputs["transform_graph"][0].uri)
    timing = json.loads(Path(trainer.outputs["model_run"][0].uri, TIMING_FILE).read_text())
    examples_uri = transform.outputs["transformed_examples"][0].uri
    feature_spec = tft_output.transformed_feature_spec()

    def arrays(split: str):
        files = tf.io.gfile.glob(f"{examples_uri}/Split-{split}/*")
        dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096).map(
            lambda x: tf.io.parse_example(x, feature_spec))
        columns: dict[str, list] = {}
        for batch in dataset:
            for key, value in batch.items():
                columns.setdefault(key, []).append(
                    tf.sparse.to_dense(value).numpy() if isinstance(value, tf.SparseTensor)
                    else value.numpy())
        data = {k: np.concatenate(v).reshape(-1, 1) for k, v in columns.items()}
        label = data.pop(spec.transformed_label).reshape(-1)
        return data, label

    x_train, y_train = arrays("train")
    x_eval, y_eval = arrays("eval")
    keras.utils.set_random_seed(settings.seed)
    model = build_model(model_inputs(spec, tft_output), ModelConfig(
        num_classes=spec.num_classes, hidden_units=settings.hidden_units,
        hidden_layers=settings.hidden_layers, learning_rate=settings.learning_rate))
    started = time.perf_counter()
    model.fit(x_train, y_train, validation_data=(x_eval, y_eval), epochs=timing["epochs"],
              batch_size=settings.batch_size, verbose=0)
    keras_seconds = time.perf_counter() - started
    rows = len(y_train) * timing["epochs"]
    return {
        "epochs": timing["epochs"],
        "trainer_examples_per_s": rows / timing["fit_seconds"],
        "keras_examples_per_s": rows / keras_seconds,
        "ratio": keras_seconds and (rows / timing["fit_seconds"]) / (rows / keras_seconds),
    }


# ---- serving -------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _latencies(call, requests: int) -> dict[str, float]:
    call()  # warm-up, untimed: the first call traces the signature / opens the connection
    times = []
    started = time.perf_counter()
    for _ in range(requests):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    total = time.perf_counter() - started
    return {"p50_ms": float(np.percentile(times, 50) * 1e3),
            "p99_ms": float(np.percentile(times, 99) * 1e3), "rps": requests / total}


def serving(settings: Settings, requests: int = 200) -> dict[str, dict]:
    import requests as http
    import tensorflow as tf

    from pipeline.tracking import mlflow_cli

    spec = settings.load_spec()
    settings = settings.replace(serve_port=_free_port())
    names = [f.name for f in spec.model_features]
    frame = pd.read_csv(settings.csv or spec.csv_path, nrows=100)[names]
    server = subprocess.Popen(mlflow_cli.serve_command(settings),
                              env=mlflow_cli.mlflow_env(settings),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = mlflow_cli.invocations_url(settings)
    results: dict[str, dict] = {}
    try:
        deadline = time.time() + 180
        while True:
            try:
                if http.get(url.replace("/invocations", "/ping"), timeout=1).ok:
                    break
            except http.ConnectionError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"mlflow models serve did not come up: {url}")
            time.sleep(0.5)
        pushed = sorted(p for p in settings.serving_dir.iterdir() if p.is_dir())[-1]
        signature = tf.saved_model.load(str(pushed)).signatures["serving_raw"]
        dtypes = signature.structured_input_signature[1]
        session = http.Session()  # one kept-alive connection, as a real client would
        for rows in (1, 100):
            part = frame.head(rows)
            body = {"dataframe_split": json.loads(part.to_json(orient="split", index=False))}
            results[f"http_{rows}_rows"] = _latencies(
                lambda: session.post(url, json=body, timeout=30).raise_for_status(), requests)
            tensors = {
                name: tf.constant(part[name].fillna("").astype(str).tolist())
                if dtypes[name].dtype == tf.string
                else tf.constant(part[name].astype("float64").to_numpy())
                for name in names}
            results[f"in_process_{rows}_rows"] = _latencies(lambda: signature(**tensors), requests)
    finally:
        server.terminate()
        server.wait(30)
    return results

