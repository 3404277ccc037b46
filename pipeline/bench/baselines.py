"""The plain baselines `make bench` measures the pipeline against, on the same data in the
same invocation: pandas for StatisticsGen and Transform, Keras `model.fit` on in-memory arrays
for the Trainer, the SavedModel called in process for `mlflow models serve`."""
from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from components.ingest import csv_format
from pipeline.config.settings import MODEL_SETTINGS, Settings

# ---- baselines ---------------------------------------------------------------------------------

def column_statistics(frame: pd.DataFrame) -> dict[str, dict]:
    """What StatisticsGen computes, single process: counts, missing, mean, std, min, max,
    deciles and zeros for numbers; distinct counts and top values for strings."""
    result = {}
    for name in frame.columns:
        column = frame[name]
        stats = {"missing": int(column.isna().sum())}
        if pd.api.types.is_numeric_dtype(column):
            stats.update(column.agg(["count", "mean", "std", "min", "max"]).to_dict())
            stats["deciles"] = column.quantile(np.linspace(0, 1, 11)).tolist()
            stats["zeros"] = int((column == 0).sum())
        else:
            stats["distinct"] = int(column.nunique())
            stats["top"] = column.value_counts().head(10).to_dict()
        result[name] = stats
    return result


def pandas_statistics(csv_path: Path) -> float:
    """Seconds to read the CSV and compute column_statistics: the StatisticsGen baseline."""
    started = time.perf_counter()
    column_statistics(csv_format.read_frame(csv_path))
    return time.perf_counter() - started


def pandas_transform(csv_path: Path, settings: Settings) -> float:
    """What the Transform does, single process: impute + z-score, quantile buckets,
    vocabularies with OOV, label ids. Returns seconds."""
    spec = settings.load_spec()
    started = time.perf_counter()
    pandas_transformed(csv_path, spec)
    return time.perf_counter() - started


def pandas_transformed(csv_path: Path, spec) -> pd.DataFrame:
    """The pandas Transform's output: what pandas_transform times."""
    frame = csv_format.read_frame(csv_path, dtype={
        f.name: str for f in spec.features if f.is_categorical or f.role == "label"})
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
    return pd.DataFrame(out)


# The interleaved fits are repeated while they are short (up to ROUNDS_UP_TO examples trained
# per fit, ~10 s here): the same 150k-row fit took 6.7-12.0 s within one minute.
INTERLEAVED_ROUNDS, ROUNDS_UP_TO = 3, 1_000_000


def interleaved_rounds(examples_trained: int) -> int:
    """Rounds of interleaved fits: three while a fit is short, so that one slow minute on a
    shared machine does not decide the figure; one for long fits."""
    return INTERLEAVED_ROUNDS if examples_trained <= ROUNDS_UP_TO else 1


def keras_in_memory(settings: Settings, rounds: int | None = None) -> dict[str, float]:
    """Train the same model with plain model.fit on the Transform's output held in memory as
    arrays, for as many epochs as the Trainer ran, and compare with the Trainer's own fit time.

    The Trainer's fit ran minutes earlier, inside the pipeline; on a shared machine the speed
    can move by 2x between minutes. So the Trainer's input path (components/train/trainer_module.dataset,
    the same function run_fn feeds fit) is also timed here, interleaved with the arrays: arrays,
    input path, input path, arrays (three times over for short fits; `rounds` sets it), the best
    of each kept (`input_ratio`)."""
    import tensorflow as tf
    import tensorflow_transform as tft
    import tf_keras as keras
    from tfx.components.trainer.fn_args_utils import DataAccessor
    from tfx.components.util import tfxio_utils
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import io_utils

    from components.train import trainer_module
    from components.train.model import ModelConfig, build_model
    from pipeline.definition import builder
    from pipeline.mlmd import queries

    spec = settings.load_spec()
    with queries.open_store_context(settings.metadata_path) as store:
        transform = queries.node_execution(store, settings.full_pipeline_name, builder.TRANSFORM)
        trainer = queries.node_execution(store, settings.full_pipeline_name, builder.TRAINER)
    tft_output = tft.TFTransformOutput(transform.outputs["transform_graph"][0].uri)
    timing = json.loads(Path(trainer.outputs["model_run"][0].uri, trainer_module.TIMING_FILE)
                        .read_text())
    examples = standard_artifacts.Examples()
    examples.set_mlmd_artifact(transform.outputs["transformed_examples"][0])
    feature_spec = tft_output.transformed_feature_spec()

    def files(split: str) -> list[str]:
        return [io_utils.all_files_pattern(artifact_utils.get_split_uri([examples], split))]

    def arrays(split: str):
        dataset = tf.data.TFRecordDataset(tf.io.gfile.glob(files(split)[0]),
                                          compression_type="GZIP").batch(4096).map(
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
    accessor = DataAccessor(
        tf_dataset_factory=tfxio_utils.get_tf_dataset_factory_from_artifact([examples], []),
        record_batch_factory=None, data_view_decode_fn=None)
    input_path = {split: trainer_module.dataset(files(split), accessor, tft_output, spec,
                                          settings.batch_size, settings.seed,
                                          shuffle=split == "train")
                  for split in ("train", "eval")}

    def fit(source: str) -> float:
        keras.utils.set_random_seed(settings.seed)
        model = build_model(trainer_module.model_inputs(spec, tft_output), ModelConfig.from_settings(
            spec.num_classes, {name: getattr(settings, name) for name in MODEL_SETTINGS}))
        started = time.perf_counter()
        if source == "arrays":
            model.fit(x_train, y_train, validation_data=(x_eval, y_eval),
                      epochs=timing["epochs"], batch_size=settings.batch_size, verbose=0)
        else:
            model.fit(input_path["train"], validation_data=input_path["eval"],
                      epochs=timing["epochs"], verbose=0)
        return time.perf_counter() - started

    seconds: dict[str, list[float]] = {"arrays": [], "input_path": []}
    rows = len(y_train) * timing["epochs"]
    for _ in range(interleaved_rounds(rows) if rounds is None else rounds):
        for source in ("arrays", "input_path", "input_path", "arrays"):
            seconds[source].append(fit(source))
    # The Trainer's one fit against a typical plain fit (the median), not the luckiest; the
    # interleaved fits, as many on each side, best against best.
    keras_seconds = float(np.median(seconds["arrays"]))
    best_keras, best_input = min(seconds["arrays"]), min(seconds["input_path"])
    return {
        "epochs": timing["epochs"],
        "trainer_examples_per_s": rows / timing["fit_seconds"],
        "keras_examples_per_s": rows / keras_seconds,
        "ratio": keras_seconds / timing["fit_seconds"],
        "input_path_examples_per_s": rows / best_input,
        "input_ratio": best_keras / best_input,
        "keras_seconds": seconds["arrays"],
        "input_path_seconds": seconds["input_path"],
    }


# ---- serving -------------------------------------------------------------------------------

SERVING_CLIENTS = 16  # concurrent clients of the load test, each sending one row at a time
SERVING_TIME_LIMIT_S = 60.0  # per measurement: a slow server shortens it rather than the bench
SERVING_START_S = 180.0  # for `mlflow models serve` to load the model in every worker


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
    return _figures(times, total)


def _figures(times: list[float], seconds: float, errors: int = 0) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(times, 50) * 1e3) if times else float("nan"),
            "p99_ms": float(np.percentile(times, 99) * 1e3) if times else float("nan"),
            "rps": (len(times) - errors) / seconds if seconds else 0.0,
            "requests": len(times)}


Answer = tuple[int, float, bytes]  # HTTP status (0: no answer), seconds, body


def post_concurrently(url: str, bodies: list[bytes], clients: int, requests: int,
                      time_limit_s: float = SERVING_TIME_LIMIT_S,
                      ) -> tuple[list[Answer | None], float]:
    """`requests` JSON POSTs to `url` from `clients` threads, each on its own kept-alive
    HTTP/1.1 connection as that many independent callers would hold; request i sends
    bodies[i % len(bodies)]. Clients stop sending once time_limit_s has passed.

    Returns the answer to each request (None: not sent in time) and the run's wall seconds."""
    parsed = urllib.parse.urlsplit(url)
    answers: list[Answer | None] = [None] * requests
    start = threading.Barrier(clients + 1)
    deadline = time.perf_counter() + time_limit_s

    def client(first: int) -> None:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        start.wait()
        try:
            for i in range(first, requests, clients):  # client c sends c, c + clients, ...
                if time.perf_counter() > deadline:
                    break
                sent = time.perf_counter()
                try:
                    # A bytes body goes out with the headers in one send().
                    connection.request("POST", parsed.path, body=bodies[i % len(bodies)],
                                       headers={"Content-Type": "application/json"})
                    response = connection.getresponse()
                    body = response.read()
                    answers[i] = (response.status, time.perf_counter() - sent, body)
                except (OSError, http.client.HTTPException):
                    answers[i] = (0, time.perf_counter() - sent, b"")
                    connection.close()  # the next request connects again
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(max(deadline - time.perf_counter(), 0) + 35)  # past the socket timeout
    return answers, time.perf_counter() - started


def _cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and all its descendants (the uvicorn workers)."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def http_load(url: str, bodies: list[bytes], clients: int, requests: int,
              time_limit_s: float = SERVING_TIME_LIMIT_S,
              server_pid: int | None = None) -> dict[str, float]:
    """Requests/s, p50 and p99 latency and errors (any answer but 200) of `requests` POSTs from
    `clients` concurrent clients, after an untimed round of one request per client. With
    server_pid, also the server's CPU milliseconds per request (all its processes)."""
    post_concurrently(url, bodies, clients, clients, time_limit_s)
    cpu = _cpu_seconds(server_pid) if server_pid else 0.0
    answers, seconds = post_concurrently(url, bodies, clients, requests, time_limit_s)
    sent = [a for a in answers if a is not None]
    errors = sum(status != 200 for status, _, _ in sent)
    figures = _figures([t for _, t, _ in sent], seconds, errors)
    figures.update(errors=errors, clients=clients)
    if server_pid and sent:
        figures["server_cpu_ms"] = (_cpu_seconds(server_pid) - cpu) / len(sent) * 1e3
    return figures


def serving_bodies(frame: pd.DataFrame, rows: int) -> list[bytes]:
    """Request bodies of `rows` consecutive rows each, as `make predict` sends them."""
    from pipeline.tracking import mlflow_cli

    return [mlflow_cli.request_body(frame.iloc[i:i + rows]).encode()
            for i in range(0, len(frame) - rows + 1, rows)]


def _wait_until_up(server: subprocess.Popen, url: str, log: Path, workers: int,
                   timeout: float) -> None:
    """Until `url` answers and every uvicorn worker has loaded the model (the server's log says
    so): a worker still loading takes no connections, so the load test's would all go to the
    others."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200 and \
                        log.read_bytes().count(b"Application startup complete") >= workers:
                    return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mlflow models serve did not come up with {workers} worker(s) "
                               f"at {url}:\n{log.read_bytes().decode(errors='replace')[-2000:]}")
        time.sleep(0.5)


def serving(settings: Settings, requests: int = 200,
            clients: int = SERVING_CLIENTS) -> dict[str, dict]:
    """`make serve`'s server (same command and workers, a free port on 127.0.0.1) of the
    registered champion against the model in process, on raw CSV rows with their gaps:

    http_1_rows     one client, `requests` single-row requests one after the other; its
                    "concurrent": `clients` clients sending 4 x `requests` single-row requests
                    between them, with the server's CPU time per request
    http_100_rows   one client, 100 rows a request
    in_process_N    the SavedModel's serving_raw alone on tensors built beforehand; its
                    "scoring_path": what the server runs per request besides HTTP, in process
                    (MLflow's JSON parsing and schema checks, the pyfunc, the JSON answer)

    Bounded: a fixed number of requests, each measurement cut at SERVING_TIME_LIMIT_S, and the
    server (all its processes) stopped at the end, whatever happened."""
    import mlflow
    import tensorflow as tf
    from mlflow.pyfunc import scoring_server

    from pipeline.tracking import mlflow_cli, mlflow_store, registry

    spec = settings.load_spec()
    settings = settings.replace(serve_port=_free_port())
    url = mlflow_cli.invocations_url(settings)
    pushed = sorted(p for p in settings.serving_dir.iterdir() if p.is_dir())[-1]
    signature = tf.saved_model.load(str(pushed)).signatures["serving_raw"]
    dtypes = signature.structured_input_signature[1]
    names = [f.name for f in spec.model_features]
    frame = registry.feature_rows(settings.csv or spec.csv_path, names,
                                  {n for n in names if dtypes[n].dtype != tf.string}, rows=400,
                                  missing_values=spec.missing_values)
    with mlflow_store.active_store(settings):
        model = mlflow.pyfunc.load_model(registry.model_uri(settings.registered_model_name))
    schema = model.metadata.get_input_schema()
    workers = mlflow_cli.serve_workers(settings)
    # The server writes its log through its own handle; this process only reads it by name.
    log = tempfile.NamedTemporaryFile(prefix="mlflow-serve-", suffix=".log")
    server = subprocess.Popen(mlflow_cli.serve_command(settings),
                              env=mlflow_cli.serve_env(settings), start_new_session=True,
                              stdout=log, stderr=subprocess.STDOUT)
    results: dict[str, dict] = {}
    try:
        _wait_until_up(server, url.replace("/invocations", "/ping"), Path(log.name), workers,
                       SERVING_START_S)
        for rows in (1, 100):
            bodies = serving_bodies(frame, rows)
            http = results[f"http_{rows}_rows"] = http_load(url, bodies, 1, requests)
            if rows == 1:
                http["concurrent"] = http_load(url, bodies, clients, 4 * requests,
                                               server_pid=server.pid)
                http["concurrent"]["workers"] = workers
            part = frame.head(rows)
            tensors = {
                name: tf.constant(part[name].fillna("").astype(str).tolist())
                if dtypes[name].dtype == tf.string
                else tf.constant(part[name].astype("float64").to_numpy())
                for name in names}
            in_process = results[f"in_process_{rows}_rows"] = _latencies(
                lambda: signature(**tensors), requests)
            next_body = itertools.cycle(bodies).__next__

            def score() -> None:
                answer = scoring_server.invocations(next_body(), "application/json", model,
                                                    schema)
                if answer.status != 200:
                    raise RuntimeError(f"the scoring path refused a request: {answer.response}")

            in_process["scoring_path"] = _latencies(score, requests)
    finally:
        _stop(server)
        log.close()
    return results


def _stop(server: subprocess.Popen) -> None:
    """Stop a server started in its own session: mlflow, uvicorn and uvicorn's workers."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
