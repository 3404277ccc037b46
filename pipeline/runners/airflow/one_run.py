"""One scheduled DAG run under Airflow's real scheduler, start to finish, then stop: what the
bench times and the PostgreSQL tests run. `make airflow` is the same scheduler left running.

The scheduler, started on a fresh Airflow database, parses the DAG and creates the run of the
latest schedule interval (catch-up off) at once; its executor (the LocalExecutor on
PostgreSQL, docs/team.md) runs the tasks; run_report.py, in the Airflow venv, waits for that
run and reads each task's start and end from Airflow's database.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from pipeline.config.settings import REPO_ROOT, Settings
from pipeline.runners.airflow import scheduler


def run_scheduled(settings: Settings, venv: Path = scheduler.AIRFLOW_VENV,
                  timeout_s: float = 1800) -> dict:
    """Run the DAG's first scheduled run and return run_report's description of it, plus
    "wall_s" (scheduler start to the run's end) and "scheduler_log" (its path)."""
    venv = Path(venv).resolve()
    home = scheduler.airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    spec = json.loads(scheduler.write_dag_spec(settings, home).read_text())
    env = scheduler.airflow_env(settings, home, venv)
    scheduler.start_warm_worker(settings, env)  # as `make airflow` does; the caller stops it
    subprocess.run([str(venv / "bin" / "airflow"), "db", "migrate"], env=env, check=True,
                   capture_output=True, timeout=600)
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "scheduler.log"
    started = time.monotonic()
    with open(log_path, "a") as log:
        process = subprocess.Popen([str(venv / "bin" / "airflow"), "scheduler",
                                    "--skip-serve-logs"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        report = subprocess.Popen(
            [str(venv / "bin" / "python"), "-m", "pipeline.runners.airflow.run_report",
             spec["dag_id"], "latest", "--timeout-s", str(timeout_s)],
            env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while report.poll() is None:
            if process.poll() is not None:  # a dead scheduler finishes no run: say so now
                report.kill()
                report.wait()
                raise RuntimeError(f"the Airflow scheduler stopped (exit {process.returncode});"
                                   f" see {log_path}")
            time.sleep(1)
        out, err = report.communicate()
        if report.returncode != 0:
            raise RuntimeError(f"run_report failed:\n{err[-3000:]}")
        seen = json.loads(out.strip().splitlines()[-1])
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    seen["wall_s"] = time.monotonic() - started
    seen["scheduler_log"] = str(log_path)
    return seen
