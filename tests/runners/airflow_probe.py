"""Run by the tests with the Airflow venv's python: prints, as JSON, what Airflow makes of the
project's DAG folder (and, with --runs DAG_ID, the states of that DAG's runs in Airflow's DB).

The Airflow venv cannot import the pipeline's stack, so the tests ask it questions this way."""
from __future__ import annotations

import json
import sys


def describe_dags() -> dict:
    from airflow.models import DagBag

    bag = DagBag(include_examples=False)
    dags = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "schedule": dag.schedule_interval,
            "catchup": dag.catchup,
            "start_date": dag.start_date.isoformat(),
            "max_active_runs": dag.max_active_runs,
            "is_paused_upon_creation": dag.is_paused_upon_creation,
            "tasks": {
                task.task_id: {
                    "upstream": sorted(task.upstream_task_ids),
                    "retries": task.retries,
                    "retry_delay_s": task.retry_delay.total_seconds(),
                    "trigger_rule": str(task.trigger_rule),
                    "operator": type(task).__name__,
                    "skip_exit_codes": list(getattr(task, "skip_exit_codes", ())),
                    "command": task.render_template(task.command, {"run_id": "RUN-ID"}),
                }
                for task in dag.tasks
            },
        }
    heavy = sorted(m for m in ("tensorflow", "tfx", "mlflow", "great_expectations")
                   if m in sys.modules)
    return {"import_errors": {k: str(v) for k, v in bag.import_errors.items()},
            "dags": dags, "heavy_modules_loaded": heavy}


def describe_runs(dag_id: str) -> dict:
    from airflow.models import DagRun

    return {run.run_id: {"state": str(run.state),
                         "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()},
                         "tries": {ti.task_id: ti.try_number for ti in run.get_task_instances()}}
            for run in DagRun.find(dag_id=dag_id)}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--runs"]:
        print(json.dumps(describe_runs(sys.argv[2])))
    else:
        print(json.dumps(describe_dags()))
