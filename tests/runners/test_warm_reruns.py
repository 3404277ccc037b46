"""pipeline/runners/warm_reruns.py: a run leaves the warm worker, the next command runs in it.

Real processes: `python -m pipeline run` on penguins in a temp output root, then re-runs in the
worker the first left (its children, pipeline/runners/warm_worker.py)."""
from __future__ import annotations

import csv
import re
import subprocess
import time
from pathlib import Path

import mlflow
import pytest

import mlflow_runs
from conftest import DATA, pipeline_command
from pipeline.runners import warm_reruns
from pipeline.runners import warm_worker

LEFT = "warm worker: left for the next run or score here"
IN_WORKER = "warm worker: TensorFlow, TFX and the rest were imported already"


def test_the_switch_and_the_airflow_switch_turn_it_off():
    assert not warm_reruns.disabled({})
    assert warm_reruns.disabled({warm_reruns.ENV_SWITCH: "0"})
    assert warm_reruns.disabled({warm_reruns.ENV_SWITCH: "off"})
    assert warm_reruns.disabled({warm_worker.ENV_SWITCH: "0"})  # no warm worker at all


def _run(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = mlflow_runs.clean_env() | {warm_reruns.ENV_SWITCH: "1", warm_worker.IDLE_ENV: "120"}
    return subprocess.run(
        pipeline_command("run", "--dataset", "penguins", "--output-root", str(out),
                         "--min-accuracy", "0", *args),
        capture_output=True, text=True, timeout=900, env=env)


def _worker_log(out: Path) -> str:
    return "".join(p.read_text(errors="replace")
                   for p in (out / warm_worker.FOLDER).glob("*.log"))


def _workers_running(out: Path) -> bool:
    folder = out / warm_worker.FOLDER
    return any(warm_worker._worker_running(folder, lock.stem) for lock in folder.glob("*.lock"))


@pytest.mark.e2e
def test_a_run_leaves_a_worker_and_the_next_commands_run_in_it(tmp_path):
    out = tmp_path / "out"
    try:
        first = _run(out, "--epochs", "3")
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert LEFT in first.stdout and IN_WORKER not in first.stdout
        deadline = time.monotonic() + 30  # started as the command ended; it listens soon
        while not list((out / warm_worker.FOLDER).glob("*.sock")):
            assert time.monotonic() < deadline, _worker_log(out)
            time.sleep(0.1)

        # A changed setting: the Trainer and what follows run in the worker's child, the MLflow
        # tracking process forked from it, and the run is recorded as in a process of its own.
        second = _run(out, "--epochs", "4")
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert IN_WORKER in second.stdout and LEFT not in second.stdout
        assert second.stdout.index("Pipeline csv2model-penguins") < \
            second.stdout.index(IN_WORKER)  # the header comes first, as without a worker
        trainer = next(line for line in second.stdout.splitlines()
                       if line.strip().startswith("Trainer"))
        assert " ran " in trainer
        assert "model csv2model-penguins version 2" in second.stdout
        run_id = re.search(r"MLflow run (\w+) \(finished\)", second.stdout).group(1)
        client = mlflow.MlflowClient(f"sqlite:///{out}/penguins/mlflow/mlflow.db")
        assert client.get_run(run_id).info.status == "FINISHED"
        stages = client.search_runs([client.get_run(run_id).info.experiment_id],
                                    f"tags.mlflow.parentRunId = '{run_id}'")
        by_name = {r.info.run_name: r for r in stages}
        assert by_name["Trainer"].info.status == "FINISHED"
        assert "blessed" in by_name["Evaluator"].data.metrics

        # Nothing changed: answered here, before any worker (no TensorFlow needed).
        again = _run(out, "--epochs", "4")
        assert again.returncode == 0 and "Up to date" in again.stdout
        assert IN_WORKER not in again.stdout

        # A refusal in the worker's child: its one line and exit status reach the command.
        source = DATA / "penguins" / "data.csv"
        with open(source, newline="") as f:
            rows = list(csv.reader(f))
        dropped = rows[0].index("body_mass_g")
        bad = tmp_path / "bad.csv"
        with open(bad, "w", newline="") as f:
            csv.writer(f).writerows([r[:dropped] + r[dropped + 1:] for r in rows])
        refused = _run(out, "--csv", str(bad))
        assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
        assert str(bad) in refused.stderr and "body_mass_g" in refused.stderr
        assert IN_WORKER not in refused.stdout  # refused before the run's header
        ended = re.findall(r"task run: child \d+ exit (\d+)", _worker_log(out))
        assert ended == ["0", "2"]  # the re-run and the refusal; not the up-to-date answer
    finally:
        warm_worker.stop(out, wait_s=30)
    deadline = time.monotonic() + 10
    while _workers_running(out) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _workers_running(out)
