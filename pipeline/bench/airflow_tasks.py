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
- the same run and fixed costs without the warm worker (CSV2MODEL_WARM_WORKER=0, a fresh
  output root): each task imports TensorFlow, TFX and Beam itself, as before the worker.
- Airflow's own latency: each task's start minus its last upstream task's end, summed along
  the run's critical path (from the tracking task back, the upstream that ended last).
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
from pipeline.runners import warm_worker

DATASETS = ("penguins", "taxi")
RUN_RATIO = 1.3  # target: the Airflow run at most this times `make pipeline`
FIXED_COST_S = 3.0  # target for the gates and the tracking task
GATES = (stage_names.EXPECTATIONS_GATE, stage_names.ANOMALIES_GATE, stage_names.DRIFT_GATE)


def _timed(command: list[str], env: dict | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    return time.perf_counter() - started, done.returncode


def task_fixed_costs(settings: Settings, run_id: str, nodes: list[str],
                     env: dict | None = None) -> dict[str, float]:
    """Each node's `run-node` command again on finished run `run_id`: its fixed cost (s)."""
    costs = {}
    for node in nodes:
        seconds, code = _timed([sys.executable, "-m", "pipeline", "run-node", "--node", node,
                                "--run-id", run_id, *settings_args(settings)], env=env)
        costs[node] = round(seconds, 2) if code == 0 else float("nan")
    return costs


def critical_path_gaps(seen: dict, spec: dict) -> list[tuple[str, float]]:
    """(task, its start minus its last upstream task's end) along the run's critical path:
    from the tracking task back, each time to the upstream task that ended last."""
    upstream = {t["task_id"]: t["upstream"] or [spec["check"]["task_id"]] for t in spec["tasks"]}
    upstream[spec["track"]["task_id"]] = [t["task_id"] for t in spec["tasks"]]
    tasks = {task: t for task, t in seen["tasks"].items() if t["start"] and t["end"]}
    path, task = [], spec["track"]["task_id"]
    while task in upstream and task in tasks:
        before = [u for u in upstream[task] if u in tasks]
        if not before:
            break
        last = max(before, key=lambda u: tasks[u]["end"])
        path.append((task, round(tasks[task]["start"] - tasks[last]["end"], 2)))
        task = last
    return path[::-1]


def _scheduled(settings: Settings, db_url: str, worker: bool) -> dict:
    from pipeline.runners.airflow import one_run, scheduler

    names = (AIRFLOW_DB_URL_ENV, warm_worker.ENV_SWITCH)
    saved = {name: os.environ.get(name) for name in names}
    os.environ[AIRFLOW_DB_URL_ENV] = db_url  # the scheduler and its tasks inherit them
    os.environ[warm_worker.ENV_SWITCH] = "1" if worker else "0"
    try:
        seen = one_run.run_scheduled(settings, timeout_s=3600)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    spec = json.loads(next((scheduler.airflow_home(settings) / scheduler.SPEC_FOLDER)
                           .glob("*.json")).read_text())
    seen["critical_path_gaps"] = critical_path_gaps(seen, spec)
    return seen


def _run_figures(seen: dict, settings: Settings, pipeline_s: float, worker: bool) -> dict:
    run_s = (seen["end"] or 0) - (seen["start"] or 0)
    tasks = {task: round(t["end"] - t["start"], 2) for task, t in seen["tasks"].items()
             if t["start"] and t["end"]}
    stages = [t for t in tasks if t not in ("check_inputs", "track_mlflow")]
    env = dict(os.environ, **{warm_worker.ENV_SWITCH: "1" if worker else "0"})
    fixed = task_fixed_costs(settings, seen["run_id"], stages, env)
    fixed["track_mlflow (task instance, work included)"] = tasks.get("track_mlflow", float("nan"))
    gaps = seen["critical_path_gaps"]
    return {"airflow_run_s": round(run_s, 1), "airflow_state": seen["state"],
            "scheduler_wall_s": round(seen["wall_s"], 1), "ratio": round(run_s / pipeline_s, 2),
            "task_seconds": tasks, "fixed_cost_s": fixed,
            "critical_path_gap_s": round(sum(gap for _, gap in gaps), 1),
            "critical_path": gaps}


def run_dataset(dataset: str, root: Path, say: Callable[[str], None], db_url: str,
                db_url_without_worker: str) -> dict:
    from pipeline.bench.process import measure, pipeline_command

    local = Settings(dataset=dataset, output_root=root / "local")
    pipeline = measure(pipeline_command("run", *settings_args(local)))
    pipeline_s = pipeline.wall_seconds
    say(f"airflow: {dataset} make pipeline {pipeline_s:.1f} s")
    result = {"make_pipeline_s": round(pipeline_s, 1)}
    for worker, folder, url in ((True, "airflow", db_url),
                                (False, "airflow-without-worker", db_url_without_worker)):
        settings = Settings(dataset=dataset, output_root=root / folder, retries=0)
        try:
            seen = _scheduled(settings, url, worker)
            figures = _run_figures(seen, settings, pipeline_s, worker)
        finally:
            warm_worker.stop(settings.output_root)  # not left to its idle time
        say(f"airflow: {dataset} scheduled run on PostgreSQL "
            f"{'with' if worker else 'without'} the warm worker {figures['airflow_run_s']} s "
            f"({figures['ratio']}x, {seen['state']}), "
            f"{figures['critical_path_gap_s']} s between tasks on its critical path")
        if worker:
            result.update(figures)
        else:
            result["without_worker"] = figures
    return result


def run_airflow(root: Path, say: Callable[[str], None], report: dict,
                datasets: tuple[str, ...] = DATASETS) -> dict:
    from pipeline.bench import local_postgres

    with local_postgres.running() as postgres:
        for number, dataset in enumerate(datasets):
            report[dataset] = run_dataset(dataset, root / dataset, say,
                                          postgres.database(f"airflow_bench_{number}"),
                                          postgres.database(f"airflow_bench_{number}_off"))
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
             "| dataset | make pipeline s | scheduled Airflow run s | ratio (target <= 1.3) "
             "| between tasks on the critical path s | without the warm worker: run s, ratio, "
             "between tasks s |", "|---|---|---|---|---|---|"]
    datasets = [d for d in report if d != "targets"]
    for d in datasets:
        r = report[d]
        off = r.get("without_worker", {})
        lines.append(f"| {d} | {r['make_pipeline_s']} | {r['airflow_run_s']} | {r['ratio']} | "
                     f"{r.get('critical_path_gap_s', '')} | {off.get('airflow_run_s', '')}, "
                     f"{off.get('ratio', '')}, {off.get('critical_path_gap_s', '')} |")
    lines += ["", "| task | " + " | ".join(f"{d} fixed cost s (without the worker)"
                                           for d in datasets) + " |",
              "|---|" + "---|" * len(datasets)]
    for task in report[datasets[0]]["fixed_cost_s"] if datasets else []:
        lines.append(f"| {task} | " + " | ".join(
            f"{report[d]['fixed_cost_s'].get(task, '')} "
            f"({report[d].get('without_worker', {}).get('fixed_cost_s', {}).get(task, '')})"
            for d in datasets) + " |")
    return "\n".join(lines) + "\n"
