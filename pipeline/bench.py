"""`make bench`: speed, memory and scaling of the pipeline, side by side with plain baselines.

Each figure is measured in this run, on this machine:
  1. per stage and size: wall seconds, rows/s, peak resident memory of the whole run (the
     pipeline process and its Beam workers);
  2. training: Trainer examples/s against plain Keras `model.fit` on the same transformed
     features held in memory as arrays;
  3. StatisticsGen and Transform against single-process pandas doing the same work;
  4. Beam DirectRunner multi_processing against in_memory on the data stages;
  5. fixed overhead: a fully cached re-run and a run on a 100-row sample;
  6. serving: p50/p99 latency and requests/s of `mlflow models serve`, 1-row and 100-row
     requests, against calling the SavedModel's raw signature in process.
Results go to outputs/bench/bench.json and bench.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.settings import Settings

BASE_ROWS = 15_002  # the shipped taxi sample
DATA_STAGES = ("CsvExampleGen", "StatisticsGen", "Transform")
_STAGE_LINE = re.compile(r"^\s+(\S+)\s+(ran|cached|resolved|FAILED)\s+([\d.]+)s")


# ---- running the pipeline and watching its memory ------------------------------------------

def _tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


@dataclasses.dataclass
class PipelineRun:
    wall_seconds: float
    peak_rss_mb: float  # the whole run: the pipeline process and its Beam worker processes
    stages: dict[str, float]  # stage -> seconds
    stage_peak_rss_mb: dict[str, float]  # stage -> peak RSS while it ran
    states: dict[str, str]
    stdout: str


def run_pipeline(settings: Settings, *extra: str) -> PipelineRun:
    """The real CLI in a subprocess, sampling the RSS of it and its children every 0.2 s.

    The summary prints a line as each stage ends, so the peak between two such lines is the
    stage's peak (the first stage's window also holds the start-up imports)."""
    command = [sys.executable, "-m", "pipeline", "run", "--dataset", settings.dataset,
               "--output-root", str(settings.output_root), "--beam-mode", settings.beam_mode,
               "--epochs", str(settings.epochs), "--min-auc", str(settings.min_auc),
               *(["--csv", str(settings.csv)] if settings.csv else []),
               *(["--until", settings.until] if settings.until else []), *extra]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lock = threading.Lock()
    peak = {"run": 0, "stage": 0, "last": 0}
    done = threading.Event()

    def watch():
        while not done.is_set():
            rss = _tree_rss(proc.pid)
            with lock:
                peak["run"] = max(peak["run"], rss)
                peak["stage"] = max(peak["stage"], rss)
                peak["last"] = rss
            done.wait(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stages, stage_peaks, states, lines = {}, {}, {}, []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        match = _STAGE_LINE.match(line)
        if match:
            with lock:
                stage_peaks[match[1]] = peak["stage"] / 2**20
                # A stage shorter than one sample still holds at least what is resident now.
                peak["stage"] = peak["last"]
            stages[match[1]] = float(match[3])
            states[match[1]] = match[2]
    proc.wait()
    done.set()
    watcher.join()
    wall = time.perf_counter() - started
    stdout = "".join(lines)
    if proc.returncode != 0:
        raise RuntimeError(f"pipeline failed ({' '.join(command)}):\n{stdout[-3000:]}")
    return PipelineRun(wall, peak["run"] / 2**20, stages, stage_peaks, states, stdout)


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
    from pipeline import builder, metadata

    spec = settings.load_spec()
    with metadata.open_store_context(settings.metadata_path) as store:
        transform = metadata.node_execution(store, settings.full_pipeline_name, builder.TRANSFORM)
        trainer = metadata.node_execution(store, settings.full_pipeline_name, builder.TRAINER)
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

    from pipeline import mlflow_cli

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


# ---- the whole benchmark -------------------------------------------------------------------

def machine() -> dict[str, str]:
    import psutil

    return {"cores": str(os.cpu_count()),
            "memory_gib": f"{psutil.virtual_memory().total / 2**30:.0f}",
            "cpu": platform.processor() or platform.machine(), "python": platform.python_version()}


def _summary(run: PipelineRun) -> dict:
    return dataclasses.asdict(run) | {"stdout": None}


def bench(sizes: list[int], root: Path, epochs: int = 3, serving_requests: int = 200,
          out=sys.stdout) -> dict:
    from pipeline.data_scale import write_scaled_csv

    # A fixed number of epochs (early stopping cannot end 3 epochs early) so every size trains on
    # the same number of passes; a low AUC bar because the first run must bless to be served.
    base = Settings(dataset="taxi", output_root=root / "runs", epochs=epochs, min_auc=0.5)
    spec = base.load_spec()
    report: dict = {"machine": machine(), "epochs": epochs, "sizes": {}}
    # Earlier bench runs would make this one a cached re-run: start from empty output roots.
    shutil.rmtree(root / "runs", ignore_errors=True)

    def say(text: str) -> None:
        # Each step also saves what is measured so far: a late failure keeps the early figures.
        root.mkdir(parents=True, exist_ok=True)
        (root / "bench.json").write_text(json.dumps(report, indent=2))
        out.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
        out.flush()

    for multiple in sizes:
        rows = BASE_ROWS * multiple
        if multiple == 1:
            csv = spec.csv_path
        else:
            say(f"writing {rows:,} rows")
            csv = write_scaled_csv(spec, rows, root / "data" / f"x{multiple}" / "data.csv",
                                   seed=multiple)
        settings = base.replace(csv=csv, output_root=root / "runs" / f"x{multiple}")
        entry: dict = {"rows": rows}
        report["sizes"][str(rows)] = entry
        say(f"{rows:,} rows: the pipeline (Beam multi_processing)")
        run = run_pipeline(settings)
        entry["multi_processing"] = _summary(run)
        say(f"{rows:,} rows: plain Keras on in-memory arrays, pandas baselines")
        entry["training"] = keras_in_memory(settings)
        entry["pandas_statistics_s"] = pandas_statistics(csv)
        entry["pandas_transform_s"] = pandas_transform(csv, settings)
        say(f"{rows:,} rows: the data stages again with Beam in_memory")
        entry["in_memory"] = _summary(run_pipeline(settings.replace(
            beam_mode="in_memory", until="Transform",
            output_root=root / "runs" / f"x{multiple}-in-memory")))
        if multiple == sizes[0]:
            say("fixed overhead: a cached re-run, a 100-row run")
            report["cached_rerun_s"] = run_pipeline(settings).wall_seconds
            small = root / "data" / "rows100" / "data.csv"
            small.parent.mkdir(parents=True, exist_ok=True)
            # A random sample: the file's first rows are not representative (28% of them lack
            # a drop-off place against 3% overall) and the data contract rightly refuses them.
            # Read as text so the sample keeps each cell as written (pandas would turn an int
            # column with gaps into floats, which the schema rightly refuses).
            pd.read_csv(spec.csv_path, dtype=str, keep_default_na=False).sample(
                100, random_state=0).to_csv(small, index=False)
            small_run = run_pipeline(settings.replace(
                csv=small, output_root=root / "runs" / "rows100", min_auc=0.0))
            report["rows100_run_s"] = small_run.wall_seconds
            report["rows100_stages"] = small_run.stages
            say("serving: mlflow models serve against the SavedModel in process")
            report["serving"] = serving(settings, serving_requests)
    return report


def _mb(value: float | None) -> str:
    return f"{value:,.0f} MB" if value else ""


def cost_split(report: dict) -> dict[str, tuple[float, float]]:
    """stage -> (fixed seconds, seconds per 100,000 rows): the line through the stage's time at
    the smallest and the largest size. Fixed is what a stage costs however little data it gets."""
    sizes = sorted(report["sizes"].values(), key=lambda e: e["rows"])
    if len(sizes) < 2:
        return {}
    small, large = sizes[0], sizes[-1]
    split = {}
    for stage, t_large in large["multi_processing"]["stages"].items():
        t_small = small["multi_processing"]["stages"].get(stage)
        if t_small is None or t_large < 0.5:
            continue
        per_row = (t_large - t_small) / (large["rows"] - small["rows"])
        split[stage] = (max(t_small - per_row * small["rows"], 0.0), per_row * 100_000)
    return split


def _cost_split(report: dict) -> list[str]:
    split = cost_split(report)
    if not split:
        return []
    lines = ["", "| stage | fixed s | s per 100k rows |", "|---|---:|---:|"]
    for stage, (fixed, per_100k) in split.items():
        lines.append(f"| {stage} | {fixed:.1f} | {per_100k:.1f} |")
    return lines


def markdown(report: dict) -> str:
    m = report["machine"]
    nan = float("nan")
    lines = [f"Machine: {m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}, Python "
             f"{m['python']}. Trainer: {report.get('epochs', '?')} epochs at every size.", "",
             "| rows | stage | seconds | rows/s | peak RSS | in_memory s |",
             "|---:|---|---:|---:|---:|---:|"]
    for rows, entry in report["sizes"].items():
        multi, mem = entry["multi_processing"], entry["in_memory"]
        peaks = multi.get("stage_peak_rss_mb", {})
        for stage, seconds in multi["stages"].items():
            if seconds < 0.05:
                continue
            in_memory = mem["stages"].get(stage)
            lines.append(f"| {int(rows):,} | {stage} | {seconds:.1f} | {int(rows) / seconds:,.0f} "
                         f"| {_mb(peaks.get(stage))} | "
                         f"{'' if in_memory is None else f'{in_memory:.1f}'} |")
        lines.append(f"| {int(rows):,} | **whole run** | {multi['wall_seconds']:.1f} | | "
                     f"{_mb(multi['peak_rss_mb'])} | |")
    lines += _cost_split(report)
    lines += ["", "| rows | Trainer ex/s | plain Keras ex/s | Trainer / Keras | "
                  "StatisticsGen / pandas | Transform / pandas |",
              "|---:|---:|---:|---:|---:|---:|"]
    for rows, entry in report["sizes"].items():
        t = entry["training"]
        stages = entry["multi_processing"]["stages"]
        stats_ratio = entry["pandas_statistics_s"] / stages.get("StatisticsGen", nan)
        transform_ratio = entry["pandas_transform_s"] / stages.get("Transform", nan)
        lines.append(f"| {int(rows):,} | {t['trainer_examples_per_s']:,.0f} | "
                     f"{t['keras_examples_per_s']:,.0f} | {t['ratio']:.2f} | "
                     f"{stats_ratio:.3f} | {transform_ratio:.3f} |")
    lines += ["", "Ratios are speeds relative to the baseline: below 1 is slower than it. "
                  "in_memory s: the data stages re-run with Beam's in_memory mode (one process) "
                  "instead of multi_processing (one worker process per core).", "",
              f"Fixed overhead: a cached re-run takes {report.get('cached_rerun_s', nan):.1f} s, "
              f"a run on a 100-row sample {report.get('rows100_run_s', nan):.1f} s.", ""]
    if report.get("serving"):
        lines += ["| serving | p50 ms | p99 ms | requests/s |", "|---|---:|---:|---:|"]
        for name, figures in report["serving"].items():
            lines.append(f"| {name.replace('_', ' ')} | {figures['p50_ms']:.1f} | "
                         f"{figures['p99_ms']:.1f} | {figures['rps']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "1,10"),
                        help="multiples of the 15,002-row taxi sample (default 1,10; 100 = 1.5M)")
    parser.add_argument("--root", type=Path, default=Settings().output_root / "bench",
                        help="folder for generated data, runs and the report")
    parser.add_argument("--epochs", type=int, default=3, help="Trainer epochs at every size")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    # The baselines import TensorFlow here: keep its C++ chatter and google-api-core's Python
    # 3.10 notices out of the report, as the pipeline's own CLI does.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    report = bench(sizes, args.root, epochs=args.epochs)
    args.root.mkdir(parents=True, exist_ok=True)
    (args.root / "bench.json").write_text(json.dumps(report, indent=2))
    table = markdown(report)
    (args.root / "bench.md").write_text(table)
    print(table)
    print(f"written: {args.root / 'bench.json'}, {args.root / 'bench.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
