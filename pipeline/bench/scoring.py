"""`make bench`, scoring section (docs/scoring.md): `make score` against MLflow's pyfunc.

A taxi model is trained once (the shipped 15,002 rows, a few epochs: its quality is not what is
measured) in an output root of its own. Then, each the whole `python -m pipeline score` process
from start to exit (bench/process.py samples the memory of it and its Beam workers):

- the shipped 15,002-row taxi file as it is (the label is there, so the Evaluator runs too), and
  the same rows without the label; target: at most 30 s;
- per multiple of the sample in BENCH_SIZES (1: 15,002 rows, 10: 150k, 100: 1.5M, written by
  bench/scaled_csv.py without the label, as files to score are), beside MLflow's pyfunc in one
  process: `mlflow.pyfunc.load_model(models:/<name>@champion)` then, timed, reading the CSV with
  pandas (typed as the model's signature says) and `.predict(frame)`; its whole process too.
  Targets: scoring at most 2x the pyfunc's read-and-predict seconds; the 1.5M peak at most 1.3x
  the 150k peak.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from pipeline.bench.process import measure, pipeline_command
from pipeline.config.settings import REPO_ROOT, Settings

BASE_ROWS = 15_002
TRAIN_EPOCHS = "3"
SMALL_FILE_SECONDS = 30.0  # target: the 15,002-row file, whole process
PYFUNC_RATIO = 2.0  # target: scoring at most this times pyfunc's read + predict
MEMORY_RATIO = 1.3  # target: the 1.5M peak at most this times the 150k peak

# Run in a subprocess with this interpreter: prints JSON {load_s, read_s, predict_s, rows}.
_PYFUNC = """
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import mlflow
from pipeline.tracking import registry
mlflow.set_tracking_uri(sys.argv[1])
started = time.perf_counter()
model = mlflow.pyfunc.load_model(registry.model_uri(sys.argv[2]))
loaded = time.perf_counter()
schema = model.metadata.get_input_schema()
names = [c.name for c in schema.inputs]
numeric = {c.name for c in schema.inputs if c.type.name == "double"}
frame = registry.feature_rows(sys.argv[3], names, numeric)
read = time.perf_counter()
result = model.predict(frame)
done = time.perf_counter()
print(json.dumps({"load_s": loaded - started, "read_s": read - loaded,
                  "predict_s": done - read, "rows": len(result)}))
"""


def _unlabelled(source: Path, target: Path, label: str) -> Path:
    """The CSV without its label column (pyarrow: streaming, the cells' text unchanged)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    from components.ingest import csv_format

    header = csv_format.inspect(source).header
    reader = pa_csv.open_csv(source, convert_options=pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in header}, strings_can_be_null=False))
    names = [n for n in reader.schema.names if n != label]
    first = True
    with open(target, "wb") as out:
        for batch in reader:
            table = pa.Table.from_batches([batch]).select(names)
            pa_csv.write_csv(table, out, write_options=pa_csv.WriteOptions(include_header=first))
            first = False
    return target


def _pyfunc(settings: Settings, csv: Path) -> dict:
    from pipeline.tracking import mlflow_store

    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PYFUNC, mlflow_store.tracking_uri(settings),
                           settings.registered_model_name, str(csv)],
                          capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["process_s"] = time.perf_counter() - started
    figures["read_predict_s"] = figures["read_s"] + figures["predict_s"]
    return figures


def _score(settings: Settings, csv: Path, log: Path) -> dict:
    from pipeline.config.settings import TRAINING_ONLY, settings_args

    run = measure(pipeline_command("score", *settings_args(settings, leave_out=TRAINING_ONLY),
                                   "--csv", str(csv)),
                  log=log)
    scored = [line for line in run.stdout.splitlines() if line.startswith("Scored ")]
    return {"wall_s": round(run.wall_seconds, 1), "peak_rss_mb": round(run.peak_rss_mb),
            "stages": run.stages, "scored": scored[-1] if scored else ""}


def run_scoring(root: Path, say: Callable[[str], None], results: dict,
                sizes: list[int] | None = None, fresh: bool = True) -> dict:
    """fresh=False reuses the champion an earlier call trained under root (more sizes)."""
    from pipeline.bench.scaled_csv import write_scaled_csv

    sizes = sizes or [1]
    root = Path(root)
    settings = Settings(dataset="taxi", output_root=root / "out")
    spec = settings.load_spec()
    if fresh or not settings.metadata_path.exists():
        shutil.rmtree(root, ignore_errors=True)
        say("scoring: training the taxi champion")
        measure(pipeline_command("run", "--dataset", "taxi", "--output-root",
                                 str(settings.output_root), "--epochs", TRAIN_EPOCHS),
                log=root / "logs" / "train.log")
        shipped = _score(settings, spec.csv_path, root / "logs" / "score-shipped.log")
        results["shipped_file"] = shipped | {"target_s": SMALL_FILE_SECONDS,
                                             "met": shipped["wall_s"] <= SMALL_FILE_SECONDS}
        say(f"scoring: the shipped 15,002-row file in {shipped['wall_s']} s (label present, "
            "evaluated too)")
    sized = results.setdefault("sizes", {})
    for size in sizes:
        rows = size * BASE_ROWS
        data = root / "data"
        data.mkdir(parents=True, exist_ok=True)
        labelled = write_scaled_csv(spec, rows, data / f"taxi-{rows}-labelled.csv") \
            if size > 1 else spec.csv_path
        csv = _unlabelled(labelled, data / f"taxi-{rows}.csv", spec.label)
        if labelled != spec.csv_path:
            labelled.unlink()
        scored = _score(settings, csv, root / "logs" / f"score-{rows}.log")
        pyfunc = _pyfunc(settings, csv)
        ratio = scored["wall_s"] / pyfunc["read_predict_s"]
        sized[str(rows)] = {"score": scored, "pyfunc": pyfunc,
                            "ratio_to_pyfunc_read_predict": round(ratio, 2),
                            "ratio_to_pyfunc_process": round(
                                scored["wall_s"] / pyfunc["process_s"], 2)}
        say(f"scoring {rows:,} rows: {scored['wall_s']} s, peak {scored['peak_rss_mb']} MB; "
            f"pyfunc read+predict {pyfunc['read_predict_s']:.1f} s (process "
            f"{pyfunc['process_s']:.1f} s): {ratio:.2f}x")
        csv.unlink()  # scaled CSVs do not stay behind
        shutil.rmtree(settings.output_dir / "scores", ignore_errors=True)
    if "150020" in sized and "1500200" in sized:
        peak = sized["1500200"]["score"]["peak_rss_mb"] / sized["150020"]["score"]["peak_rss_mb"]
        results["memory_ratio_1.5M_to_150k"] = round(peak, 2)
    return results
