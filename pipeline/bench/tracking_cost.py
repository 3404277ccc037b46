"""`make bench`: the two fixed costs issue 26 puts on tracking and start-up, measured apart from
the targets' whole runs (which report them too, pipeline/bench/fixed_costs.py):

- the first line: seconds from the command to its first output line, for `python -m pipeline
  run` and for `make pipeline` (make's own start on top), each started REPEATS times on a fresh
  output root and stopped (SIGKILL to its process group) once the line is out;
- MLflow logging after the Pusher: an already finished taxi run (the targets' first run) logged
  again into a fresh store, in a subprocess that has imported what a run has: live
  (live_tracking.py, as `make pipeline` does it: every stage reported as it ended, then the
  Evaluator's and the Pusher's, timed from there to finish()) against after the fact
  (pipeline_runs.log_pipeline_run, as an Airflow run's last task does it, store creation
  included, which is where a first run paid it before), same invocation, same records.

tracking_costs() returns the figures; lines() renders them for the report.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[2]
REPEATS = 3
FIRST_LINE_TARGET_S = 2.0
AFTER_PUSHER_TARGET_S = 3.0
DATASET = "taxi"


def first_line_s(command: list[str], timeout: float = 120) -> float:
    """Seconds from starting `command` to its first line of output; the command is then
    stopped, its process group killed."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        seconds = time.perf_counter() - started
        if not line:
            raise RuntimeError(f"{' '.join(command)} wrote nothing (exit {proc.wait(timeout)})")
        return seconds
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout)


def first_lines(work: Path, repeats: int = REPEATS) -> dict[str, float]:
    """Median first-line seconds of `python -m pipeline run` and `make pipeline`, alternated."""
    commands = {
        "python -m pipeline run": lambda root: [sys.executable, "-m", "pipeline", "run",
                                                "--dataset", DATASET, "--output-root", root],
        "make pipeline": lambda root: ["make", "--no-print-directory", "pipeline",
                                       f"DATASET={DATASET}", f"ARGS=--output-root {root}"],
    }
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            root = Path(tempfile.mkdtemp(dir=work))
            try:
                seconds[name].append(first_line_s(command(str(root))))
            finally:
                shutil.rmtree(root, ignore_errors=True)
    return {name: round(median(values), 2) for name, values in seconds.items()}


def logging_after_pusher(runs_root: Path, work: Path) -> dict[str, float]:
    """{"live": s, "after the fact": s} for the first TFX run of DATASET under runs_root."""
    done = subprocess.run([sys.executable, "-m", "pipeline.bench.tracking_cost", str(runs_root),
                           str(work)], cwd=REPO, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"replaying the run's MLflow logging failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def tracking_costs(runs_root: Path, work: Path) -> dict:
    """Both fixed costs; runs_root: an output root holding a finished taxi run."""
    work.mkdir(parents=True, exist_ok=True)
    return {"first_line_s": first_lines(work),
            "mlflow_after_pusher_s": logging_after_pusher(runs_root, work),
            "load_average": os.getloadavg()[0]}


def lines(figures: dict) -> list[str]:
    first, after = figures["first_line_s"], figures["mlflow_after_pusher_s"]
    ratio = after["after the fact"] / max(after["live"], 1e-9)
    return [
        "## Tracking and start-up fixed costs (issue 26)", "",
        f"Load average {figures.get('load_average', 0):.1f} at the start.", "",
        "| fixed cost | seconds | target |", "|---|---:|---|",
        *[f"| first line, `{name}` (median of {REPEATS}) | {s:.2f} | <= {FIRST_LINE_TARGET_S:g} s |"
          for name, s in first.items()],
        f"| MLflow logging after the Pusher, live (as `make pipeline`) | {after['live']:.2f} | "
        f"<= {AFTER_PUSHER_TARGET_S:g} s |",
        f"| the same records after the fact, a fresh store (as before) | "
        f"{after['after the fact']:.2f} | ({ratio:.1f}x) |",
        "",
    ]


# ---- the replay, in its own process (it imports TensorFlow, TFX, TFMA and TFDV) -------------

def _replay(runs_root: Path, work: Path) -> dict[str, float]:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import tensorflow  # noqa: F401 - what a run has imported when it logs
    import tensorflow_data_validation  # noqa: F401
    import tensorflow_model_analysis  # noqa: F401
    import tfx.v1  # noqa: F401

    from pipeline.config.settings import Settings
    from pipeline.mlmd import queries
    from pipeline.tracking import lineage, live_tracking, pipeline_runs

    settings = Settings(dataset=DATASET, output_root=runs_root)
    spec = settings.load_spec()
    tfx_run = lineage.tfx_run_ids(settings)[0]
    with queries.open_store_context(settings.metadata_path) as store:
        nodes = queries.run_executions(store, settings.full_pipeline_name, tfx_run)
    last_two = [n.node_id for n in nodes[-2:]]
    if last_two[-1] != "Pusher":
        raise RuntimeError(f"run {tfx_run} does not end with the Pusher: {last_two}")
    figures = {}
    for name in ("live", "after the fact"):
        # A fresh store per way, made where the variable says; new experiments keep their
        # artifacts under the working directory (./mlruns), in `work` too.
        folder = work / name.replace(" ", "_")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
        os.chdir(folder)
        started_ms = nodes[0].execution.create_time_since_epoch
        if name == "live":
            tracker = live_tracking.LiveTracker(settings, spec, tfx_run, started_ms).start()
            for node in nodes[:-2]:
                tracker.stage_finished(node)
            tracker.drain()  # what a real run's stages leave the worker time for
            started = time.perf_counter()
            for node in nodes[-2:]:
                tracker.stage_finished(node)
            tracker.finish(tfx_run)
        else:
            started = time.perf_counter()
            pipeline_runs.log_pipeline_run(settings, spec, tfx_run, started_ms=started_ms)
        figures[name] = round(time.perf_counter() - started, 2)
    return figures


if __name__ == "__main__":
    print(json.dumps(_replay(Path(sys.argv[1]), Path(sys.argv[2]))))
