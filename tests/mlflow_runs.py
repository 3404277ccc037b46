"""Penguin pipeline runs for the MLflow tests, shared by test_tracking.py and test_serving.py.

Two runs into one temp output folder, made once per test session (each takes minutes):
  first:  good enough to be blessed -> registered as version 1, `champion`
  second: forced worse (one hidden unit, one epoch, no drop allowed against the first) ->
          registered as version 2, not promoted; its data stages come from the first's cache.

A module-level cache instead of a conftest.py fixture keeps these runs beside the MLflow tests
while making them session-wide, whichever test module asks first.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from conftest import pipeline_command
from pipeline.config.settings import Settings
from pipeline.tracking import lineage, mlflow_store, run_logging

FIRST_EPOCHS = 6  # 5 already pass the 0.9 accuracy gate; one spare
WORSE_ARGS = ("--epochs", "1", "--hidden-units", "1", "--max-metric-drop", "0")


@dataclasses.dataclass(frozen=True)
class PenguinRuns:
    settings: Settings  # dataset and output root of both runs
    first_tfx_run: str
    second_tfx_run: str


_cache: dict[str, PenguinRuns | str] = {}


def clean_env() -> dict[str, str]:
    """This environment without MLFLOW_TRACKING_URI, so runs log to their temp folder's store."""
    env = dict(os.environ)
    env.pop(mlflow_store.TRACKING_URI_ENV, None)
    return env


def store_uri(settings: Settings) -> str:
    """Where the issue says the default store lives: outputs/<dataset>/mlflow/mlflow.db."""
    folder = Path(settings.output_root).resolve() / settings.dataset / "mlflow"
    return f"sqlite:///{folder / 'mlflow.db'}"


def run(settings: Settings, *args: str, **popen) -> subprocess.CompletedProcess:
    return subprocess.run(
        pipeline_command("run", "--dataset", settings.dataset,
                         "--output-root", str(settings.output_root), *args),
        capture_output=True, text=True, timeout=900, env=clean_env(), **popen)


def _make(root: Path) -> PenguinRuns:
    settings = Settings(dataset="penguins", output_root=root, epochs=FIRST_EPOCHS)
    for args in (("--epochs", str(FIRST_EPOCHS)), WORSE_ARGS):
        done = run(settings, *args)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    first, second = lineage.tfx_run_ids(settings)[-2:]
    return PenguinRuns(settings, first, second)


def penguin_runs(tmp_path_factory) -> PenguinRuns:
    if "runs" not in _cache:
        try:
            _cache["runs"] = _make(tmp_path_factory.mktemp("mlflow_penguins"))
        except AssertionError as e:  # remembered, so a second module does not rerun minutes
            _cache["runs"] = f"the shared penguin runs failed: {e}"
    if isinstance(_cache["runs"], str):
        pytest.fail(_cache["runs"])
    return _cache["runs"]


def parent_run(client, settings: Settings, tfx_run: str):
    """The MLflow run of a pipeline run, found by the TFX run id it is tagged with."""
    experiment = client.get_experiment_by_name(settings.full_pipeline_name)
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{run_logging.TAG_PIPELINE_RUN}` = '{tfx_run}' and "
                      f"tags.`{run_logging.TAG_PIPELINE}` = '{settings.full_pipeline_name}'")
    parents = [r for r in runs if run_logging.TAG_PARENT not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    return parents[0]


def child_runs(client, parent) -> dict[str, object]:
    """Node id -> child run."""
    runs = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{run_logging.TAG_PARENT}` = '{parent.info.run_id}'")
    return {r.data.tags[run_logging.TAG_NODE]: r for r in runs}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(command: list[str], env: dict[str, str], ready_url: str,
           timeout: float = 300) -> Iterator[subprocess.Popen]:
    """Run a server in its own process group until ready_url answers 200; stop the group after."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"{command[2:5]} did not come up:\n"
                                f"{log.read().decode(errors='replace')[-3000:]}")
                try:
                    with urllib.request.urlopen(ready_url, timeout=5) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(1)
            yield process
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# Fixtures for the test modules that read these runs; each imports them by name
# (`from mlflow_runs import client, runs`), and pytest finds them in the module's namespace.
@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> PenguinRuns:
    return penguin_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def client(runs):
    from mlflow import MlflowClient

    return MlflowClient(store_uri(runs.settings))
