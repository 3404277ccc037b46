"""Waits for one DAG run and reports it, from Airflow's own database: run by the Airflow venv's
python (`python -m pipeline.runners.airflow.run_report DAG_ID RUN_ID`), as dag.py, with
Airflow and the standard library only.

Prints one JSON line: the run's state and start/end, and each task instance's state, tries and
start/end (epoch seconds). The bench times a scheduled run with it, and the tests read from it
whether independent stages overlapped under the LocalExecutor.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

FINISHED = ("success", "failed")
LATEST = "latest"


def _epoch(moment) -> float | None:
    return moment.timestamp() if moment is not None else None


def report(dag_id: str, run_id: str) -> dict | None:
    """The run `run_id` of the DAG ("latest": its newest run), or None while there is none."""
    from airflow.models import DagRun

    runs = DagRun.find(dag_id=dag_id, run_id=None if run_id == LATEST else run_id)
    if not runs:
        return None
    run = max(runs, key=lambda r: r.execution_date)
    return {
        "run_id": run.run_id, "state": str(run.state),
        "start": _epoch(run.start_date), "end": _epoch(run.end_date),
        "tasks": {ti.task_id: {"state": str(ti.state), "tries": ti.try_number,
                               "start": _epoch(ti.start_date), "end": _epoch(ti.end_date)}
                  for ti in run.get_task_instances()},
    }


def wait(dag_id: str, run_id: str, timeout_s: float, poll_s: float = 1.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        seen = report(dag_id, run_id)
        if seen is not None and seen["state"] in FINISHED:
            return seen
        if time.monotonic() > deadline:
            return seen or {"state": "not found", "tasks": {}}
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dag_id")
    parser.add_argument("run_id", help=f"the run's id, or {LATEST!r} for the newest run")
    parser.add_argument("--timeout-s", type=float, default=0,
                        help="wait up to this long for the run to finish (0: report at once)")
    args = parser.parse_args(argv)
    seen = (wait(args.dag_id, args.run_id, args.timeout_s) if args.timeout_s
            else report(args.dag_id, args.run_id))
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
