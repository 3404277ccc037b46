"""`make bench`, airflow section (docs/team.md): a scheduled Airflow run on PostgreSQL with the
LocalExecutor against `make pipeline` on the same data, and each task's fixed cost.

For penguins and taxi (the shipped CSVs), each in a fresh output root of its own, nothing cached:
- `make pipeline`: the whole `python -m pipeline run` process, start to exit;
- the DAG's first scheduled run under Airflow's real scheduler (pipeline/runners/airflow/
  one_run.py), on a throwaway PostgreSQL server (pipeline/bench/local_postgres.py): the run's
  own start to end as Airflow records it, and every task instance's duration.
  Target: at most 1.3x `make pipeline`.
- each task's fixed cost: its command run again on the finished run, where the stage has nothing
  left to do (TFX's launcher finds the execution done), so what remains is the process start,
  the imports, the pipeline's compiled IR and ML Metadata: what every task pays before its work.
  Target: at most 3 s for the gates and the tracking task. The tracking task cannot run "again
  with nothing to do" (it would log a second MLflow run), so its row is its task instance's
  duration in the run, work included.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from pipeline.config import stage_names
from pipeline.config.settings import AIRFLOW_DB_URL_ENV, Settings, settings_args

DATASETS = ("penguins", "taxi")
RUN_RATIO = 1.3  # target: the Airflow run at most this times `make pipeline`
FIXED_COST_S = 3.0  # target for the gates and the tracking task
GATES = (stage_names.EXPECTATIONS_GATE, stage_names.ANOMALIES_GATE, stage_names.DRIFT_GATE)


def _timed(command: list[str], env: dict | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    return time.perf_counter() - started, done.returncode


def task_fixed_costs(settings: Settings, run_id: str, nodes: list[str]) -> dict[str, float]:
    """Each node's `run-node` command again on finished run `run_id`: its fixed cost (s)."""
    costs = {}
    for node in nodes:
        seconds, code = _timed([sys.executable, "-m", "pipeline", "run-node", "--node", node,
                                "--run-id", run_id, *settings_args(settings)])
        costs[node] = round(seconds, 2) if code == 0 else float("nan")
    return costs


def run_dataset(dataset: str, root: Path, say: Callable[[str], None], db_url: str) -> dict:
    from pipeline.bench.process import measure, pipeline_command
    from pipeline.runners.airflow import one_run

    local = Settings(dataset=dataset, output_root=root / "local")
    pipeline = measure(pipeline_command("run", *settings_args(local)))
    say(f"airflow: {dataset} make pipeline {pipeline.wall_seconds:.1f} s")

    settings = Settings(dataset=dataset, output_root=root / "airflow", retries=0)
    saved = os.environ.get(AIRFLOW_DB_URL_ENV)
    os.environ[AIRFLOW_DB_URL_ENV] = db_url  # the scheduler and its tasks inherit it
    try:
        seen = one_run.run_scheduled(settings, timeout_s=3600)
    finally:
        if saved is None:
            os.environ.pop(AIRFLOW_DB_URL_ENV, None)
        else:
            os.environ[AIRFLOW_DB_URL_ENV] = saved
    run_s = (seen["end"] or 0) - (seen["start"] or 0)
    tasks = {task: round(t["end"] - t["start"], 2) for task, t in seen["tasks"].items()
             if t["start"] and t["end"]}
    say(f"airflow: {dataset} scheduled run on PostgreSQL {run_s:.1f} s ({seen['state']})")
    stages = [t for t in tasks if t not in ("check_inputs", "track_mlflow")]
    fixed = task_fixed_costs(settings, seen["run_id"], stages)
    fixed["track_mlflow (task instance, work included)"] = tasks.get("track_mlflow", float("nan"))
    return {"make_pipeline_s": round(pipeline.wall_seconds, 1), "airflow_run_s": round(run_s, 1),
            "airflow_state": seen["state"], "scheduler_wall_s": round(seen["wall_s"], 1),
            "ratio": round(run_s / pipeline.wall_seconds, 2), "task_seconds": tasks,
            "fixed_cost_s": fixed}


def run_airflow(root: Path, say: Callable[[str], None], report: dict,
                datasets: tuple[str, ...] = DATASETS) -> dict:
    from pipeline.bench import local_postgres

    with local_postgres.running() as postgres:
        for number, dataset in enumerate(datasets):
            url = postgres.database(f"airflow_bench_{number}")
            report[dataset] = run_dataset(dataset, root / dataset, say, url)
    report["targets"] = {
        "run_ratio_max": RUN_RATIO, "fixed_cost_max_s": FIXED_COST_S,
        "run_ratio_met": all(report[d]["ratio"] <= RUN_RATIO for d in datasets),
        "fixed_cost_met": all(v <= FIXED_COST_S for d in datasets
                              for k, v in report[d]["fixed_cost_s"].items()
                              if k in GATES or k.startswith("track_mlflow")),
    }
    say("airflow: " + json.dumps(report["targets"]))
    return report


def markdown(report: dict) -> str:
    """The section's table for bench.md."""
    lines = ["## Airflow on PostgreSQL (LocalExecutor)", "",
             "| dataset | make pipeline s | scheduled Airflow run s | ratio (target <= 1.3) |",
             "|---|---|---|---|"]
    datasets = [d for d in report if d != "targets"]
    for d in datasets:
        r = report[d]
        lines.append(f"| {d} | {r['make_pipeline_s']} | {r['airflow_run_s']} | {r['ratio']} |")
    lines += ["", "| task | " + " | ".join(f"{d} fixed cost s" for d in datasets) + " |",
              "|---|" + "---|" * len(datasets)]
    for task in report[datasets[0]]["fixed_cost_s"] if datasets else []:
        lines.append(f"| {task} | " + " | ".join(
            str(report[d]["fixed_cost_s"].get(task, "")) for d in datasets) + " |")
    return "\n".join(lines) + "\n"
