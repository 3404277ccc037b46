"""Tasks of one orchestrated run share the output folder; a task of another run, or a local run,
waits (pipeline/runners/run_lock_shared.py)."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from pipeline.config.settings import Settings
from pipeline.runners import run_lock_shared
from pipeline.runners.run_lock import OutputFolderBusy, holding_output_folder

# A task holding the folder for run argv[2] until its stdin closes.
_TASK = """
import sys
from pipeline.config.settings import Settings
from pipeline.runners import run_lock_shared
settings = Settings(dataset="penguins", output_root=sys.argv[1])
with run_lock_shared.sharing_output_folder(settings, "task", sys.argv[2]):
    print("holding", flush=True)
    sys.stdin.read()
"""


def hold(root, run_id: str) -> subprocess.Popen:
    task = subprocess.Popen([sys.executable, "-c", _TASK, str(root), run_id],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert task.stdout.readline().strip() == "holding"
    return task


def test_tasks_of_one_run_share_the_folder_and_others_wait(tmp_path):
    settings = Settings(dataset="penguins", output_root=tmp_path)
    first = hold(tmp_path, "run-1")
    try:
        # Another task of the same run gets in at once.
        with run_lock_shared.sharing_output_folder(settings, "task", "run-1", wait=False):
            pass
        # A task of another run and a local run do not.
        with pytest.raises(OutputFolderBusy, match="tasks of run run-1"):
            with run_lock_shared.sharing_output_folder(settings, "task", "run-2", wait=False):
                pass
        with pytest.raises(OutputFolderBusy):
            with holding_output_folder(settings, "make pipeline", wait=False):
                pass
    finally:
        first.stdin.close()
        first.wait(timeout=30)
    # Its holder gone, the next run's task gets in; while it holds, a local run waits.
    with run_lock_shared.sharing_output_folder(settings, "task", "run-2", wait=False):
        with pytest.raises(OutputFolderBusy):
            with holding_output_folder(settings, "make pipeline", wait=False):
                pass
    with holding_output_folder(settings, "make pipeline", wait=False):
        with pytest.raises(OutputFolderBusy, match="holds it alone"):
            with run_lock_shared.sharing_output_folder(settings, "task", "run-3", wait=False):
                pass


def test_a_killed_task_blocks_no_other_run(tmp_path):
    settings = Settings(dataset="penguins", output_root=tmp_path)
    task = hold(tmp_path, "run-1")
    task.kill()
    task.wait(timeout=30)
    started = time.monotonic()
    with run_lock_shared.sharing_output_folder(settings, "task", "run-2", wait=False):
        pass
    assert time.monotonic() - started < 5
    assert list((settings.output_dir / run_lock_shared.MEMBERS).glob("*.json")) == []
