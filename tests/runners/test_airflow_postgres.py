"""Airflow and MLflow for a team (docs/team.md), on a real PostgreSQL server (one per test
session, the `postgres` fixture): a scheduled DAG run under Airflow's real scheduler with the
LocalExecutor, tracked to a real MLflow tracking server whose backend store is on the same
PostgreSQL; independent stages overlap; no password shows anywhere.

One DAG run, ~4 min at load 7 on 2 cores. A refused CSV on this path (not retried, nothing
registered or pushed) is the SQLite test's (test_airflow_dag.py): the operator decides it, the
same under either executor; run once on PostgreSQL too (51 s), it passed, and was left out of
make test for its cost."""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DATA, write_csv_sample
from pipeline.bench.local_postgres import free_port
from pipeline.config import stage_names
from pipeline.config.settings import AIRFLOW_DB_URL_ENV, MLFLOW_BACKEND_STORE_ENV, Settings
from pipeline.runners import last_run, warm_worker
from pipeline.runners.airflow import one_run

pytestmark = pytest.mark.e2e

# Pairs of stages that depend on neither each other nor on each other's outputs.
INDEPENDENT = [(stage_names.EXAMPLE_GEN, stage_names.SCHEMA_IMPORTER),
               (stage_names.EXPECTATIONS_VALIDATOR, stage_names.STATISTICS_GEN)]


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"the MLflow server did not listen on {port} (exit {process.poll()})")


@pytest.fixture(scope="module")
def team(postgres, tmp_path_factory):
    """Airflow's database and an MLflow tracking server (`make mlflow-server`) on the session's
    PostgreSQL, each URL with a real password."""
    root = tmp_path_factory.mktemp("team")
    airflow_url = postgres.database("airflow_team")
    mlflow_url = postgres.database("mlflow_team")
    port = free_port()
    # The server does not check it; the client still sends it (HTTP basic auth), and it must
    # not show up anywhere either.
    tracking_password = "tp" + secrets.token_hex(10)
    log = root / "mlflow-server.log"
    env = dict(os.environ, **{MLFLOW_BACKEND_STORE_ENV: mlflow_url})
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "pipeline.tracking.mlflow_cli", "server",
             "--output-root", str(root / "server"), "--mlflow-ui-port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, server, 120)
        yield {"root": root, "airflow_url": airflow_url, "mlflow_url": mlflow_url,
               "tracking_uri": f"http://team:{tracking_password}@127.0.0.1:{port}",
               "passwords": [postgres.roles["csv2model"], tracking_password],
               "server": server, "log": log, "postgres": postgres, "port": port}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:  # uvicorn's workers drain slowly; nothing to keep
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


@pytest.fixture
def team_env(team, monkeypatch):
    monkeypatch.setenv(AIRFLOW_DB_URL_ENV, team["airflow_url"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team["tracking_uri"])
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    return team


def _client(team):
    import mlflow

    return mlflow.MlflowClient(team["tracking_uri"])


def _overlap(a: dict, b: dict) -> float:
    """Seconds two task instances ran at the same time (negative: apart)."""
    return min(a["end"], b["end"]) - max(a["start"], b["start"])


def _files_holding(folder: Path, secret: bytes) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if secret in path.read_bytes():
                    found.append(str(path))
            except OSError:
                pass
    return found


def test_scheduled_run_on_postgres_overlaps_stages_and_tracks_to_the_server(team_env):
    team = team_env
    sample = write_csv_sample(DATA / "penguins" / "data.csv",
                              team["root"] / "input" / "penguins.csv", 344)
    settings = Settings(dataset="penguins", csv=sample, output_root=team["root"] / "run",
                        retries=0, beam_mode="in_memory")
    try:
        seen = one_run.run_scheduled(settings, timeout_s=1500)
    finally:
        warm_worker.stop(settings.output_root)  # it ran the stages: not left to its idle time
    tasks = seen["tasks"]
    assert seen["state"] == "success", (seen, Path(seen["scheduler_log"]).read_text()[-3000:])
    assert {t["state"] for t in tasks.values()} == {"success"}
    # The stages' tasks ran in children of the warm worker (its log is searched for passwords
    # below with every other file).
    served = "".join(p.read_text() for p in
                     (settings.output_root / warm_worker.FOLDER).glob("*.log"))
    assert f"task run-node {stage_names.TRAINER}: child" in served, served[-3000:]
    print(f"scheduled run on PostgreSQL: {seen['end'] - seen['start']:.1f} s "
          f"(scheduler start to end {seen['wall_s']:.1f} s)")

    # The servers listen on 127.0.0.1 only (the kernel's socket table: no traffic).
    import psutil

    assert {c.laddr.ip for c in psutil.net_connections(kind="tcp") if c.status == "LISTEN"
            and c.laddr.port in (team["port"], team["postgres"].port)} == {"127.0.0.1"}

    # The LocalExecutor ran the independent stages at the same time (Airflow's own times).
    for a, b in INDEPENDENT:
        assert _overlap(tasks[a], tasks[b]) > 0, (a, tasks[a], b, tasks[b])

    # The run, its model version and the champion alias are on the tracking server.
    client = _client(team)
    experiment = client.get_experiment_by_name(settings.full_pipeline_name)
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.`tfx.pipeline_run_id` = '{seen['run_id']}'")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.status for r in parents] == ["FINISHED"]
    assert parents[0].info.artifact_uri.startswith("mlflow-artifacts:")  # through the server
    champion = client.get_model_version_by_alias(settings.registered_model_name, "champion")
    assert champion.run_id in {r.info.run_id for r in runs}  # this run's model
    assert list((team["root"] / "server" / "mlflow-server" / "artifacts").rglob("MLmodel"))
    recorded = last_run.load(settings)
    assert recorded is not None and recorded.champion

    # `make mlflow-ui` names the server's UI, password masked.
    ui = subprocess.run([sys.executable, "-m", "pipeline.tracking.mlflow_cli", "ui",
                         "--dataset", "penguins", "--output-root", str(settings.output_root)],
                        capture_output=True, text=True, timeout=120)
    assert "the UI is the tracking server's, http://team:***@127.0.0.1" in ui.stdout, ui.stdout

    # No password anywhere: files (task and scheduler logs, the DAG description and commands,
    # the run summary, last_success.json, the server's artifacts and log), both databases
    # (Airflow's serialized DAG, task instances and log table; MLflow's params, tags, registry),
    # and the command lines `ps` shows.
    track_log = "".join(p.read_text(errors="replace") for p in
                        (settings.output_root / "airflow" / "logs").rglob("*.log")
                        if "track_mlflow" in str(p))
    assert "store http://team:***@127.0.0.1" in track_log  # shown, masked
    dumps = {db: team["postgres"].dump(db) for db in ("airflow_team", "mlflow_team")}
    assert "check_inputs" in dumps["airflow_team"] and "run-node" in dumps["airflow_team"]
    assert "champion" in dumps["mlflow_team"]
    commands = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    for password in team["passwords"]:
        assert _files_holding(team["root"], password.encode()) == []
        for db, dump in dumps.items():
            assert password not in dump, db
        assert password not in commands
