"""The scoring DAG `make airflow --score-csv` serves beside the training DAG (issue 25), as the
Airflow venv loads it: one task running `python -m pipeline score` on the configured file, on
its own schedule, no tracking task (the command logs its run itself), no retries of a refused
file or a critical drift."""
from __future__ import annotations

from test_airflow_dag import AIRFLOW_PY, probe

import pytest

from pipeline.config.settings import Settings
from pipeline.runners import single_node
from pipeline.runners.airflow import scheduler


@pytest.mark.skipif(not AIRFLOW_PY.exists(), reason="needs the Airflow venv (make airflow-venv)")
def test_the_scoring_dag_scores_the_configured_file_on_its_own_schedule(tmp_path):
    settings = Settings(dataset="penguins", output_root=tmp_path, retries=2)
    scheduler.write_dag_spec(settings)
    new = tmp_path / "incoming" / "today.csv"
    scheduler.write_dag_spec(settings, spec=scheduler.scoring_dag_spec(settings, new, "0 6 * * *"))
    seen = probe(settings)
    assert seen["import_errors"] == {}
    assert set(seen["dags"]) == {"csv2model-penguins", "csv2model-penguins-score"}
    scoring = seen["dags"]["csv2model-penguins-score"]
    assert scoring["schedule"] == "0 6 * * *" and scoring["catchup"] is False
    assert scoring["max_active_runs"] == 1
    [(task_id, task)] = scoring["tasks"].items()
    assert task_id == scheduler.SCORE_TASK and task["retries"] == 2
    command = task["command"]
    assert command[1:5] == ["-m", "pipeline", "score", "--csv"] and command[5] == str(new)
    assert command[command.index("--dataset") + 1] == "penguins"
    # The training DAG is unchanged by it: its check, its stages, its tracking task.
    training = seen["dags"]["csv2model-penguins"]["tasks"]
    assert scheduler.TRACK_TASK in training and single_node.CHECK_TASK in training


def test_the_scoring_task_carries_the_settings_score_reads_and_no_training_option(tmp_path):
    """`make airflow` may be started with training options (--epochs 5); `score` refuses them,
    so the scoring task's command leaves them out and keeps the rest (the gates, the output
    root), and the command parses as `python -m pipeline score` parses it."""
    from pipeline.cli import main

    settings = Settings(dataset="penguins", output_root=tmp_path, epochs=5, tune=True,
                        min_accuracy=0.9)
    spec = scheduler.scoring_dag_spec(settings, tmp_path / "new.csv", "none")
    [task] = spec["tasks"]
    flags = task["command"][3:]
    assert "--epochs" not in flags and "--tune" not in flags
    assert flags[flags.index("--min-accuracy") + 1] == "0.9"
    assert main._parser().parse_args(flags).output_root == tmp_path
    with pytest.raises(SystemExit) as refused:  # as a user typing it gets it
        main._parser().parse_args(["score", "--csv", "x.csv", "--epochs", "3"])
    assert refused.value.code == 2
