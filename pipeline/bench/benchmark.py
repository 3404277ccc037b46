"""`make bench`: the speed targets first, then speed, memory and scaling of the pipeline side by
side with plain baselines, all measured in this one invocation, on this machine.

Speed targets (pipeline/bench/targets.py): whole-process wall time of first runs (taxi,
penguins), a re-run with nothing changed and a `--force` one, a CSV that breaks the data contract,
a new 32-column dataset drafted and run (breast cancer), model quality, our penguins first run
against TFX's own reference penguin pipeline on the same data (pipeline/bench/reference_penguin.py),
and a whole Airflow DAG run of the taxi pipeline with nothing changed (`airflow dags test`).

Scaling, per multiple of the taxi sample (BENCH_SIZES, default 1):
  1. per stage and size: wall seconds, seconds per 1M rows, rows/s, peak resident memory of the
     whole run (the pipeline process and its Beam workers), in the Beam mode `auto` chose;
  2. training: Trainer examples/s against plain Keras `model.fit` on the same transformed
     features held in memory as arrays (the median of its fits), and the Trainer's input path
     fed to the same model in this process, interleaved with those fits (best against best);
  3. StatisticsGen and Transform against single-process pandas doing the same work;
  4. the data stages again in the Beam mode `auto` did not choose (--no-other-mode skips it);
  5. fixed overhead: a `--force` re-run (every stage cached) and a run on a 500-row sample;
  6. serving: p50/p99 latency and requests/s of `mlflow models serve`, 1-row and 100-row
     requests, against calling the SavedModel's raw signature in process.
Results go to outputs/bench/bench.json and bench.md (the targets table at the top).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import shutil
import sys
import time
import warnings
from pathlib import Path

from components.ingest import csv_format
from pipeline.bench.baselines import keras_in_memory, pandas_statistics, pandas_transform, serving
from pipeline.bench.process import PipelineRun, measure, pipeline_command
from pipeline.bench.report import markdown
from pipeline.config import stage_names
from pipeline.config.settings import Settings, settings_args
from pipeline.runners import warm_reruns

BASE_ROWS = 15_002  # the shipped taxi sample
SMALL_ROWS = 500  # the fixed-overhead run's sample
SECTIONS = ("targets", "regression", "scoring", "quality", "init", "airflow", "flink", "scaling")
__all__ = ["PipelineRun", "run_pipeline", "bench", "main"]


# ---- running the pipeline and watching its memory ------------------------------------------

def run_pipeline(settings: Settings, *extra: str) -> PipelineRun:
    """The real CLI in a subprocess, timed as a whole and per stage, with its memory
    (pipeline/bench/process.py)."""
    return measure(pipeline_command("run", *settings_args(settings), *extra))


# ---- the whole benchmark -------------------------------------------------------------------

def machine() -> dict[str, str]:
    import psutil

    return {"cores": str(os.cpu_count()),
            "memory_gib": f"{psutil.virtual_memory().total / 2**30:.0f}",
            "cpu": platform.processor() or platform.machine(), "python": platform.python_version()}


def _summary(run: PipelineRun) -> dict:
    return dataclasses.asdict(run) | {"stdout": None}


def bench(sizes: list[int], root: Path, epochs: int = 3, serving_requests: int = 200,
          out=sys.stdout, sections: tuple[str, ...] = SECTIONS, other_mode: bool = True) -> dict:
    report: dict = {"machine": machine()}

    def say(text: str) -> None:
        # Each step also saves what is measured so far: a late failure keeps the early figures.
        root.mkdir(parents=True, exist_ok=True)
        (root / "bench.json").write_text(json.dumps(report, indent=2))
        out.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
        out.flush()

    if "targets" in sections:
        from pipeline.bench.targets import run_targets

        run_targets(root / "targets", say, report.setdefault("targets", {}))
        say("targets done")
        # The first line and the MLflow logging after the Pusher, apart (bench/tracking_cost.py).
        from pipeline.bench.tracking_cost import tracking_costs

        report["tracking_cost"] = tracking_costs(root / "targets" / "runs", root / "tracking_cost")
        say(f"tracking and start-up fixed costs: {report['tracking_cost']}")
    if "regression" in sections:
        from pipeline.bench.regression import run_regression

        run_regression(root / "regression", say, report.setdefault("regression", {}))
        say("regression done")
    if "scoring" in sections:
        from pipeline.bench.scoring import run_scoring

        run_scoring(root / "scoring", say, report.setdefault("scoring", {}), sizes)
        say("scoring done")
    if "quality" in sections:
        from pipeline.bench.quality import run_quality

        run_quality(root / "quality", say, report.setdefault("quality", {}))
        say("quality done")
    if "init" in sections:
        from pipeline.bench.init_tables import run_init_tables

        run_init_tables(root / "init", say, report.setdefault("init", {}))
        say("init done")
    if "airflow" in sections:  # on PostgreSQL with the LocalExecutor (bench/airflow_tasks.py)
        from pipeline.bench.airflow_tasks import run_airflow

        run_airflow(root / "airflow", say, report.setdefault("airflow", {}))
        say("airflow done")
    if "flink" in sections:  # the Beam stages on a local Flink cluster (bench/flink.py)
        from pipeline.bench.flink import run_flink

        run_flink(root / "flink", say, report.setdefault("flink", {}), epochs)
        say("flink done")
    if "scaling" in sections and sizes:
        _scaling(report, sizes, root, epochs, serving_requests, say, other_mode)
    return report


def _scaling(report: dict, sizes: list[int], root: Path, epochs: int, serving_requests: int,
             say, other_mode: bool = True) -> None:
    from pipeline.bench.scaled_csv import write_scaled_csv

    # A fixed number of epochs (early stopping cannot end 3 epochs early) so every size trains on
    # the same number of passes; a low AUC bar because the first run must bless to be served.
    # Beam mode `auto`, the default: what a user's run would do at each size (the report names
    # the mode it chose); the other mode re-runs the data stages for comparison.
    base = Settings(dataset="taxi", output_root=root / "runs", epochs=epochs, min_auc=0.5,
                    beam_mode="auto")
    spec = base.load_spec()
    report.update(epochs=epochs, sizes={})
    # Earlier bench runs would make this one a cached re-run: start from empty output roots.
    shutil.rmtree(root / "runs", ignore_errors=True)
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
        say(f"{rows:,} rows: the pipeline (Beam mode auto)")
        run = run_pipeline(settings)
        entry["run"] = _summary(run)
        chosen = re.search(r"Beam: DirectRunner (\w+)", run.stdout)
        entry["beam_mode"] = chosen[1] if chosen else "?"
        say(f"{rows:,} rows: plain Keras on in-memory arrays, pandas baselines")
        entry["training"] = keras_in_memory(settings)
        entry["pandas_statistics_s"] = pandas_statistics(csv)
        entry["pandas_transform_s"] = pandas_transform(csv, settings)
        if other_mode:
            other = "multi_processing" if entry["beam_mode"] == "in_memory" else "in_memory"
            say(f"{rows:,} rows: the data stages again with Beam {other}")
            entry["other_mode"] = {"mode": other, **_summary(run_pipeline(settings.replace(
                beam_mode=other, until=stage_names.TRANSFORM,
                output_root=root / "runs" / f"x{multiple}-{other}")))}
        if multiple == sizes[0]:
            say(f"fixed overhead: a --force re-run (every stage cached), a {SMALL_ROWS}-row run")
            # --force: with nothing changed the CLI would say "Up to date" without TFX; this
            # measures TFX's cached path (the targets section times the up-to-date one).
            report["cached_rerun_s"] = run_pipeline(settings, "--force").wall_seconds
            small = root / "data" / "rows100" / "data.csv"
            small.parent.mkdir(parents=True, exist_ok=True)
            # A random sample: the file's first rows are not representative (28% of them lack
            # a drop-off place against 3% overall) and the data contract rightly refuses them.
            # Read as text so the sample keeps each cell as written (pandas would turn an int
            # column with gaps into floats, which the schema rightly refuses).
            # 500 rows: the label guard wants >= 11.2% positives in each split, which an eval
            # split of ~30 rows (a 100-row sample) misses by chance.
            csv_format.read_frame(spec.csv_path, dtype=str, keep_default_na=False).sample(
                SMALL_ROWS, random_state=0).to_csv(small, index=False)
            report["small_rows"] = SMALL_ROWS
            small_run = run_pipeline(settings.replace(
                csv=small, output_root=root / "runs" / "rows100", min_auc=0.0))
            report["rows100_run_s"] = small_run.wall_seconds
            report["rows100_stages"] = small_run.stages
            say("serving: mlflow models serve against the SavedModel in process")
            report["serving"] = serving(settings, serving_requests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default=os.environ.get("BENCH_SECTIONS", ",".join(SECTIONS)),
                        help="what to measure, comma-separated: targets, regression, quality, "
                             "scaling (default all; env BENCH_SECTIONS)")
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "1"),
                        help="scaling: multiples of the 15,002-row taxi sample (default 1; "
                             "1,10 adds 150k rows, 100 = 1.5M; env BENCH_SIZES)")
    parser.add_argument("--root", type=Path, default=Settings().output_root / "bench",
                        help="folder for generated data, runs and the report")
    parser.add_argument("--epochs", type=int, default=3,
                        help="scaling: Trainer epochs at every size")
    parser.add_argument("--other-mode", default=os.environ.get("BENCH_OTHER_MODE", "1") != "0",
                        action=argparse.BooleanOptionalAction,
                        help="scaling: re-run the data stages in the Beam mode auto did not "
                             "choose (default on; env BENCH_OTHER_MODE=0 skips it)")
    args = parser.parse_args(argv)
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    # A measured run or score leaves no warm worker (pipeline/runners/warm_reruns.py): one
    # importing in the background would slow the next measurement, a baseline among them. The
    # targets' taxi runs turn it on for themselves (row 11 measures a re-run in it).
    os.environ[warm_reruns.ENV_SWITCH] = "0"
    # The baselines import TensorFlow here: keep its C++ chatter and google-api-core's Python
    # 3.10 notices out of the report, as the pipeline's own CLI does.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    started = time.perf_counter()
    report = bench(sizes, args.root, epochs=args.epochs, sections=sections,
                   other_mode=args.other_mode)
    report["bench_wall_s"] = time.perf_counter() - started
    args.root.mkdir(parents=True, exist_ok=True)
    (args.root / "bench.json").write_text(json.dumps(report, indent=2))
    table = markdown(report)
    if report.get("regression"):
        from pipeline.bench.regression import table as regression_table

        table += "\n## Regression (eval split)\n\n" + regression_table(report["regression"])
    if report.get("airflow"):
        from pipeline.bench.airflow_tasks import markdown as airflow_table

        table += "\n" + airflow_table(report["airflow"])
    if report.get("flink"):
        from pipeline.bench.flink import markdown as flink_table

        table += "\n" + flink_table(report["flink"])
    if report.get("quality"):
        from pipeline.bench.quality import table as quality_table

        table += "\n## Model quality (eval split)\n\n" + quality_table(report["quality"])
    (args.root / "bench.md").write_text(table)
    print(table)
    print(f"written: {args.root / 'bench.json'}, {args.root / 'bench.md'} "
          f"(bench took {report['bench_wall_s'] / 60:.1f} min)")
    return 0
