"""The pipeline as Airflow DAGs: a check, one task per TFX stage, then a task that logs the run
to MLflow.

Imported by Airflow (in .venv-airflow), so it uses only Airflow and the standard library. The
pipeline itself is not defined here: scheduler.py beside this file compiles create_pipeline and
writes one JSON description per DAG under $AIRFLOW_HOME/csv2model/; this module turns each into a
DAG whose tasks run `python -m pipeline run-node ...` in the pipeline's venv.

Every task of a DAG run passes the Airflow run id as the TFX pipeline run id: stages find their
inputs from the same run, and a failed stage is retried alone with the outputs of the stages
before it.

The first task, check_inputs, runs `python -m pipeline check-inputs`, which takes a second (no
TensorFlow import). When the inputs are byte-identical to the last successful run's, it exits with
the spec's skip_exit_code: the task is skipped, Airflow's default trigger rule (all_success)
skips every stage after it, and the tracking task skips itself: nothing ran, nothing new to log.
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any, Sequence

from airflow import DAG
from airflow.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.hooks.subprocess import SubprocessHook
from airflow.models import BaseOperator
from airflow.utils.trigger_rule import TriggerRule

SPEC_FOLDER = "csv2model"  # the same name as in pipeline/runners/airflow/scheduler.py


class PipelineCommandOperator(BaseOperator):
    """Runs one pipeline command; its output is the task log.

    Exit codes in no_retry_exit_codes (a refused input, a broken data contract) fail the task
    without retries: running it again cannot help. Exit codes in skip_exit_codes skip the task
    (and with it the tasks downstream), its last output line saying why. Any other failure is
    retried."""

    template_fields: Sequence[str] = ("command",)
    ui_color = "#e8f4fd"

    def __init__(self, *, command: list[str], cwd: str, no_retry_exit_codes: Sequence[int] = (),
                 skip_exit_codes: Sequence[int] = (), **kwargs: Any):
        super().__init__(**kwargs)
        self.command = command
        self.cwd = cwd
        self.no_retry_exit_codes = tuple(no_retry_exit_codes)
        self.skip_exit_codes = tuple(skip_exit_codes)

    def run_command(self, command: list[str]) -> None:
        result = SubprocessHook().run_command(command=command, cwd=self.cwd)
        if result.exit_code in self.skip_exit_codes:
            raise AirflowSkipException(result.output)
        if result.exit_code in self.no_retry_exit_codes:
            raise AirflowFailException(
                f"{self.task_id} failed (exit {result.exit_code}; not retried): {result.output}")
        if result.exit_code != 0:
            raise AirflowException(f"{self.task_id} failed (exit {result.exit_code}): "
                                   f"{result.output}")

    def execute(self, context: Any) -> None:
        self.run_command(self.command)


class TrackRunOperator(PipelineCommandOperator):
    """Logs the run to MLflow once every stage is done, failed ones included (so a failed run is
    tracked FAILED with its reason), then fails itself if a stage failed: as the DAG's only leaf,
    its state is the DAG run's state.

    When the check task was skipped (the inputs are those of the last successful run) no stage
    ran: it skips itself without starting the pipeline's Python, and the DAG run succeeds."""

    def __init__(self, *, check_task_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.check_task_id = check_task_id

    def execute(self, context: Any) -> None:
        states = {ti.task_id: ti.state for ti in context["dag_run"].get_task_instances()
                  if ti.task_id != self.task_id}
        if self.check_task_id and states.get(self.check_task_id) == "skipped":
            raise AirflowSkipException(f"{self.check_task_id} found nothing to run (its log "
                                       "names the last successful run): nothing to track")
        failed = sorted(task for task, state in states.items() if state == "failed")
        self.run_command(self.command + [arg for task in failed for arg in ("--failed-node", task)])
        not_run = sorted(task for task, state in states.items() if state == "upstream_failed")
        if failed or not_run:
            raise AirflowFailException(f"the run was tracked; failed: {', '.join(failed)}; "
                                       f"not run: {', '.join(not_run) or 'none'}")


def build_dag(spec: dict) -> DAG:
    """One DAG from a description written by pipeline/runners/airflow/scheduler.py."""
    dag = DAG(
        dag_id=spec["dag_id"],
        description=spec["description"],
        schedule=spec["schedule"],
        start_date=datetime.datetime.fromisoformat(spec["start_date"]).replace(
            tzinfo=datetime.timezone.utc),
        catchup=spec["catchup"],
        # Runs share one ML Metadata store (SQLite) and the serving folder; overlapping runs
        # would also compete for the same cores.
        max_active_runs=1,
        is_paused_upon_creation=False,
        default_args={
            "retries": spec["retries"],
            "retry_delay": datetime.timedelta(seconds=spec["retry_delay_s"]),
        },
        tags=["csv2model", spec["dataset"]],
        doc_md=spec["description"],
    )
    common = {"cwd": spec["cwd"], "no_retry_exit_codes": spec["no_retry_exit_codes"], "dag": dag}
    tasks = {t["task_id"]: PipelineCommandOperator(task_id=t["task_id"], command=t["command"],
                                                   **common)
             for t in spec["tasks"]}
    for t in spec["tasks"]:
        for upstream in t["upstream"]:
            tasks[upstream] >> tasks[t["task_id"]]
    check = spec.get("check")  # absent from descriptions written before the check existed
    if check:
        check_task = PipelineCommandOperator(task_id=check["task_id"], command=check["command"],
                                             skip_exit_codes=[check["skip_exit_code"]], **common)
        # Before the stages that have no upstream stage, so before every stage.
        check_task >> [tasks[t["task_id"]] for t in spec["tasks"] if not t["upstream"]]
    if spec.get("track"):  # the scoring DAG's one task tracks its run itself
        track = TrackRunOperator(task_id=spec["track"]["task_id"],
                                 command=spec["track"]["command"],
                                 check_task_id=check["task_id"] if check else None,
                                 trigger_rule=TriggerRule.ALL_DONE, **common)
        list(tasks.values()) >> track
    return dag


def build_dags(airflow_home: str | Path) -> dict[str, DAG]:
    """A DAG per description in <airflow_home>/csv2model/ (none yet: no DAG, no error)."""
    folder = Path(airflow_home) / SPEC_FOLDER
    specs = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    return {spec["dag_id"]: build_dag(spec) for spec in specs}
