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
import socket
import subprocess
import sys
import threading
import time
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
    peak_rss_mb: float
    stages: dict[str, float]  # stage -> seconds
    states: dict[str, str]
    stdout: str


def run_pipeline(settings: Settings, *extra: str) -> PipelineRun:
    """The real CLI in a subprocess, sampling the RSS of it and its children every 0.2 s."""
    command = [sys.executable, "-m", "pipeline", "run", "--dataset", settings.dataset,
               "--output-root", str(settings.output_root), "--beam-mode", settings.beam_mode,
               *(["--csv", str(settings.csv)] if settings.csv else []), *extra]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    done = threading.Event()

    def watch():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            done.wait(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stdout, _ = proc.communicate()
    done.set()
    watcher.join()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"pipeline failed ({' '.join(command)}):\n{stdout[-3000:]}")
    stages, states = {}, {}
    for line in stdout.splitlines():
        match = _STAGE_LINE.match(line)
        if match:
            stages[match[1]] = float(match[3])
            states[match[1]] = match[2]
    return PipelineRun(wall, peak / 2**20, stages, states, stdout)


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
    server = subprocess.Popen(mlflow_cli.serve_command(settings), env=mlflow_cli.mlflow_env(settings),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = mlflow_cli.invocations_url(settings)
    results: dict[str, dict] = {}
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                http.get(url.replace("/invocations", "/ping"), timeout=1)
                break
            except http.ConnectionError:
                time.sleep(0.5)
        pushed = sorted(p for p in settings.serving_dir.iterdir() if p.is_dir())[-1]
        signature = tf.saved_model.load(str(pushed)).signatures["serving_raw"]
        dtypes = signature.structured_input_signature[1]
        for rows in (1, 100):
            part = frame.head(rows)
            body = {"dataframe_split": json.loads(part.to_json(orient="split", index=False))}
            results[f"http_{rows}_rows"] = _latencies(
                lambda: http.post(url, json=body, timeout=30).raise_for_status(), requests)
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

    return {"cores": str(os.cpu_count()), "memory_gib": f"{psutil.virtual_memory().total / 2**30:.0f}",
            "cpu": platform.processor() or platform.machine(), "python": platform.python_version()}


def bench(sizes: list[int], root: Path, out=sys.stdout) -> dict:
    from pipeline.data_scale import write_scaled_csv

    base = Settings(dataset="taxi", output_root=root / "runs")
    spec = base.load_spec()
    report: dict = {"machine": machine(), "sizes": {}}
    for multiple in sizes:
        rows = BASE_ROWS * multiple
        csv = spec.csv_path if multiple == 1 else write_scaled_csv(
            spec, rows, root / "data" / f"x{multiple}" / "data.csv", seed=multiple)
        entry: dict = {"rows": rows}
        out.write(f"[bench] {rows:,} rows: pipeline (multi_processing)\n")
        settings = base.replace(csv=csv, output_root=root / "runs" / f"x{multiple}")
        # A small AUC bar: the point here is time, and the first run must bless to be served.
        run = run_pipeline(settings, "--min-auc", "0.5")
        entry["multi_processing"] = dataclasses.asdict(run) | {"stdout": None}
        entry["stage_rows_per_s"] = {s: rows / t for s, t in run.stages.items() if t > 0}
        out.write(f"[bench] {rows:,} rows: plain Keras and pandas baselines\n")
        entry["training"] = keras_in_memory(settings)
        entry["pandas_statistics_s"] = pandas_statistics(csv)
        entry["pandas_transform_s"] = pandas_transform(csv, settings)
        out.write(f"[bench] {rows:,} rows: pipeline (in_memory)\n")
        in_memory = run_pipeline(settings.replace(beam_mode="in_memory",
                                                  output_root=root / "runs" / f"x{multiple}-mem"),
                                 "--min-auc", "0.5")
        entry["in_memory"] = dataclasses.asdict(in_memory) | {"stdout": None}
        if multiple == sizes[0]:
            out.write("[bench] fixed overhead: cached re-run, 100-row sample\n")
            report["cached_rerun_s"] = run_pipeline(settings, "--min-auc", "0.5").wall_seconds
            small = root / "data" / "rows100" / "data.csv"
            small.parent.mkdir(parents=True, exist_ok=True)
            pd.read_csv(spec.csv_path, nrows=100).to_csv(small, index=False)
            report["rows100_run_s"] = run_pipeline(
                settings.replace(csv=small, output_root=root / "runs" / "rows100"),
                "--min-auc", "0").wall_seconds
            out.write("[bench] serving\n")
            report["serving"] = serving(settings)
        report["sizes"][str(rows)] = entry
    return report


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"Machine: {m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}, Python {m['python']}",
             "", "| rows | stage | seconds | rows/s | in_memory s | peak RSS (run) |",
             "|---:|---|---:|---:|---:|---:|"]
    for rows, entry in report["sizes"].items():
        multi, mem = entry["multi_processing"], entry["in_memory"]
        for stage, seconds in multi["stages"].items():
            if seconds < 0.05:
                continue
            rate = int(rows) / seconds
            lines.append(f"| {int(rows):,} | {stage} | {seconds:.1f} | {rate:,.0f} | "
                         f"{mem['stages'].get(stage, float('nan')):.1f} | |")
        lines.append(f"| {int(rows):,} | **whole run** | {multi['wall_seconds']:.1f} | | "
                     f"{mem['wall_seconds']:.1f} | {multi['peak_rss_mb']:,.0f} MB |")
    lines += ["", "| rows | Trainer ex/s | plain Keras ex/s | ratio | StatisticsGen / pandas | "
                  "Transform / pandas |", "|---:|---:|---:|---:|---:|---:|"]
    for rows, entry in report["sizes"].items():
        t = entry["training"]
        stages = entry["multi_processing"]["stages"]
        stats_ratio = entry["pandas_statistics_s"] / stages.get("StatisticsGen", float("nan"))
        transform_ratio = entry["pandas_transform_s"] / stages.get("Transform", float("nan"))
        lines.append(f"| {int(rows):,} | {t['trainer_examples_per_s']:,.0f} | "
                     f"{t['keras_examples_per_s']:,.0f} | {t['ratio']:.2f} | "
                     f"{stats_ratio:.3f} | {transform_ratio:.3f} |")
    lines += ["", "(ratios are speed relative to the baseline: below 1 means slower than it)", "",
              f"Fixed overhead: cached re-run {report.get('cached_rerun_s', float('nan')):.1f} s, "
              f"100-row run {report.get('rows100_run_s', float('nan')):.1f} s", ""]
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
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    report = bench(sizes, args.root)
    args.root.mkdir(parents=True, exist_ok=True)
    (args.root / "bench.json").write_text(json.dumps(report, indent=2))
    table = markdown(report)
    (args.root / "bench.md").write_text(table)
    print(table)
    print(f"written: {args.root / 'bench.json'}, {args.root / 'bench.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
