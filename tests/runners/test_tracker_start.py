"""When a run's MLflow tracking process starts, and how (pipeline/runners/local_dag.py)."""
from __future__ import annotations

import subprocess
import sys

from conftest import REPO
from pipeline.config.settings import Settings
from pipeline.runners import local_dag

# A new interpreter: the test worker's own threads (xdist's) would make any fork unsafe.
PROBE = """
import threading
from pipeline.runners import local_dag

class Tracker:
    def start(self, fork=None):
        print(fork)

local_dag._start_tracker(Tracker())           # nothing but the main thread: a fork
stop = threading.Event()
thread = threading.Thread(target=stop.wait)
thread.start()
local_dag._start_tracker(Tracker())           # a Python thread running: a new process
stop.set()
thread.join()
"""


def test_the_tracker_forks_from_a_process_without_threads_and_starts_anew_beside_one():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "False"]


def test_outside_a_warm_worker_the_tracker_waits_for_the_build(tmp_path):
    """Started at the run's start, it would be a new process importing TensorFlow and TFMA
    again beside the set-up; it is started by _start_tracker once the pipeline is built."""
    settings = Settings(dataset="penguins", output_root=tmp_path)
    tracker = local_dag._live_tracker(settings, settings.load_spec(), "run-1", 0)
    assert tracker._process is None  # noqa: SLF001 - not started
