"""Shared fixtures. Every test writes under tmp_path; nothing touches outputs/ or data/."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

# tf.Transform and TFMA need Keras 2; decide before any test imports TensorFlow.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# A `python -m pipeline run|score` in a subprocess leaves a warm worker for the next command on
# its output root (pipeline/runners/warm_reruns.py): ~800 MB for 5 minutes per test's temp folder.
# Tests of it set it back on for their own commands.
os.environ["CSV2MODEL_WARM_RERUNS"] = "0"

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"

# The tests' in-process runs import what `python -m pipeline` imports (pipeline/cli/main.py
# keeps the same modules out first thing).
from pipeline.cli import unused_imports  # noqa: E402

unused_imports.keep_out()

# A developer's environment must not steer test runs: MLFLOW_TRACKING_URI would send every
# run's records to their server, AIRFLOW_HOME / AIRFLOW__* would point the DAG tests at their
# Airflow, BENCH_* change what the bench does, TF_CPP_* / TF_ENABLE_ONEDNN_OPTS what TensorFlow
# prints and computes. (TF_USE_LEGACY_KERAS is set above, for every test.) Tests that need one
# set it themselves, with monkeypatch or a subprocess's env.
DEVELOPER_ENV_PREFIXES = ("MLFLOW_", "AIRFLOW_", "BENCH_", "TF_CPP_", "KERAS_", "GX_", "TFX_")
DEVELOPER_ENV_NAMES = ("TF_ENABLE_ONEDNN_OPTS", "__pyfunc_model_path__")


def developer_env(environ=os.environ) -> list[str]:
    return sorted(k for k in environ if k.startswith(DEVELOPER_ENV_PREFIXES)
                  or k in DEVELOPER_ENV_NAMES)


@pytest.fixture(autouse=True, scope="session")
def _no_developer_environment():
    """Session-wide, so that module-scoped fixtures (the shared pipeline runs) start clean too;
    the variables come back when the session ends."""
    with pytest.MonkeyPatch.context() as patch:
        for name in developer_env():
            patch.delenv(name)
        yield


def _restoring_environment():
    before = dict(os.environ)
    yield
    if os.environ != before:
        os.environ.clear()
        os.environ.update(before)


# What an in-process run sets in os.environ (main() sets TF_CPP_MIN_LOG_LEVEL and
# MLFLOW_DISABLE_TELEMETRY for its process) ends with the test, or with the module for a
# module-scoped run, so no test depends on which ran before it in the same worker
# (pytest-xdist spreads the files over two).
_environment_restored_per_test = pytest.fixture(autouse=True)(_restoring_environment)
_environment_restored_per_module = pytest.fixture(autouse=True, scope="module")(
    _restoring_environment)


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_as_in_a_terminal():
    """A `make test` started in the background by a non-interactive shell (`nohup make test &`,
    a CI step's job control) inherits SIGINT ignored, and Python then keeps it ignored: the
    Ctrl-C tests (tests/runners/test_termination.py) need the handler a terminal's run has."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture(autouse=True, scope="session")
def _suite_verdicts_of_the_session(tmp_path_factory):
    """In-process suite checks remember GX's verdicts in the session's own folder, not the
    checkout's .cache (components/contract/suite_verdicts.py): a test that needs GX consulted
    is not answered by what a developer's runs remembered."""
    from components.contract import suite_verdicts

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(suite_verdicts, "CACHE_DIR", tmp_path_factory.mktemp("suite-verdicts"))
        yield


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL server on 127.0.0.1 for the whole session (started on first
    use): each test makes its own databases with postgres.database(name)."""
    from pipeline.bench import local_postgres

    with local_postgres.running() as server:
        yield server


@pytest.fixture
def repo() -> Path:
    return REPO


def write_csv_sample(source: Path, target: Path, rows: int) -> Path:
    """The header and the first `rows` rows of a shipped CSV (the shipped file is not touched)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open() as src, target.open("w") as dst:
        for i, line in enumerate(src):
            if i > rows:
                break
            dst.write(line)
    return target


def pipeline_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *args]


def process_alive(pid: int) -> bool:
    """Running, not a zombie waiting for whoever adopted it to reap it. A process reaped
    between open() and read() makes the read fail with ESRCH (ProcessLookupError), not ENOENT:
    CI saw it once."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


SHARED_PENGUIN_RUNS = "penguin_runs"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Groups for pytest-xdist's `--dist loadgroup` (the Makefile's): a test module is one group,
    so its module-scoped pipeline runs are made once, in one worker; the modules that read the
    session's shared penguin runs (tests/mlflow_runs.py) are one group together, so those runs
    are made once per session, not once per worker. Before xdist's own hook reads the marks."""
    import mlflow_runs

    shared = (mlflow_runs.penguin_runs, mlflow_runs.runs)
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        module = item.module
        uses_shared = any(getattr(module, name, None) in shared for name in ("penguin_runs", "runs"))
        item.add_marker(pytest.mark.xdist_group(
            SHARED_PENGUIN_RUNS if uses_shared else item.nodeid.split("::")[0]))


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_longest_first(config, items):
    """Longest first (tests/xdist_order.py): no worker is left with a long group at the end
    while the other waits. Last, so that the costs are those of the tests that will run, after
    `-m` (make test-fast) has deselected the others."""
    import xdist_order

    items[:] = xdist_order.longest_groups_first(
        items, group=lambda item: item.get_closest_marker("xdist_group").args[0],
        cost=xdist_order.guessed_cost)


def pytest_configure(config):
    """xdist re-sorts the groups by their number of tests unless told not to
    (`--loadscope-reorder`, on by default in the xdist installed, 3.8): the order above is the
    one wanted."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
