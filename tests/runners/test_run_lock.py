"""One run per output folder: a second run waits (or exits under --no-wait) naming the holder,
a holder killed with SIGKILL blocks nobody, and two real runs started together push one model."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import mlflow_runs
from conftest import REPO, pipeline_command, process_alive
from pipeline.config.settings import Settings
from pipeline.runners import run_lock

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pipeline.config.settings import Settings
    from pipeline.runners import run_lock
    settings = Settings(dataset="penguins", output_root=Path(sys.argv[1]))
    with run_lock.holding_output_folder(settings, "the test's holder", "run-42"):
        print("holding", flush=True)
        time.sleep(600)
""")


def _holder(root: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], cwd=REPO,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "holding"
    return process


def test_no_wait_names_the_holder_and_a_killed_holder_blocks_nobody(tmp_path):
    settings = Settings(dataset="penguins", output_root=tmp_path)
    holder = _holder(tmp_path)
    try:
        with pytest.raises(run_lock.OutputFolderBusy) as busy:
            with run_lock.holding_output_folder(settings, "me", wait=False):
                pass
        message = str(busy.value)
        assert f"pid {holder.pid}" in message and "run id run-42" in message
        assert "the test's holder" in message and str(settings.output_dir) in message
        # The CLI says the same and exits 75 at once, before any TFX import.
        started = time.monotonic()
        done = subprocess.run(pipeline_command("run", "--dataset", "penguins", "--output-root",
                                               str(tmp_path), "--no-wait"),
                              capture_output=True, text=True, timeout=120, cwd=REPO)
        assert done.returncode == 75, done.stderr
        assert f"pid {holder.pid}" in done.stderr and "--no-wait" in done.stderr
        assert time.monotonic() - started < 30
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The kernel released the dead holder's lock: the next one gets it without waiting.
    with run_lock.holding_output_folder(settings, "me", "run-43", wait=False):
        assert '"run_id": "run-43"' in (settings.output_dir / run_lock.HOLDER_FILE).read_text()
    assert not (settings.output_dir / run_lock.HOLDER_FILE).exists()


FORK_THEN_DIE = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from pipeline.config.settings import Settings
    from pipeline.runners import run_lock
    settings = Settings(dataset="penguins", output_root=Path(sys.argv[1]))
    with run_lock.holding_output_folder(settings, "the test's holder", "run-42"):
        ready_r, ready_w = os.pipe()
        child = os.fork()
        if child == 0:  # as the checks' process: alive after its parent
            os.write(ready_w, b"1")  # past the fork (and its hooks), as the checks' process is
            time.sleep(60)
            os._exit(0)
        os.read(ready_r, 1)
        print(child, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_forked_child_still_alive_after_its_killed_parent_holds_no_lock(tmp_path):
    """flock is the open file's: a forked child (check_branch.py) shares it, and one still
    exiting after its killed parent kept the folder locked (CI, 2026-12-05)."""
    settings = Settings(dataset="penguins", output_root=tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", FORK_THEN_DIE, str(tmp_path)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    child = int(holder.stdout.readline())
    holder.wait()
    try:
        assert process_alive(child)
        with run_lock.holding_output_folder(settings, "me", wait=False):
            pass
    finally:
        os.kill(child, signal.SIGKILL)


def test_a_waiting_run_says_who_it_waits_for_and_goes_on_when_the_holder_is_gone(tmp_path):
    import io

    settings = Settings(dataset="penguins", output_root=tmp_path)
    holder = _holder(tmp_path)
    out = io.StringIO()
    killer = subprocess.Popen([sys.executable, "-c",
                               f"import os, time; time.sleep(2); os.kill({holder.pid}, 9)"])
    try:
        with run_lock.holding_output_folder(settings, "me", wait=True, out=out):
            waited = out.getvalue()
    finally:
        killer.wait()
        holder.wait()
    assert waited.startswith(f"Waiting for the test's holder (pid {holder.pid} ")
    assert "run id run-42" in waited and "got the output folder after" in waited


def _states(output: str) -> dict[str, str]:
    """Stage -> state ("ran", "cached", ...) from a run's summary lines."""
    return {line.split()[0]: line.split()[1] for line in output.splitlines()
            if line.startswith("  ") and len(line.split()) > 2}


def _start(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        pipeline_command("run", "--dataset", "penguins", "--output-root", str(root),
                         "--epochs", "6", *args),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        env=mlflow_runs.clean_env(), start_new_session=True)


@pytest.mark.e2e
def test_killed_in_transform_then_two_runs_started_together_resume_and_push_one_model(tmp_path):
    """Two scenarios on one output folder, so that one whole pipeline run serves both (they were
    two tests, each paying for a whole run, ~30 s): a run killed with SIGKILL in Transform blocks
    nobody and the next run redoes only what did not finish; of two runs started together one
    waits, finds the other's result and pushes nothing, and both exit cleanly."""
    run = _start(tmp_path)
    log = tmp_path / "penguins" / "logs" / "pipeline.log"
    deadline = time.monotonic() + 600
    while not (log.exists() and "Component Transform is running" in log.read_text()):
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()[0]
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    # The checks run beside the Transform (check_branch.py): StatisticsGen may have ended.
    statistics_done = "Component StatisticsGen is finished" in log.read_text()
    # The dead run's lock blocks nobody: what `run --no-wait` takes (run_lock) is free at once
    # (OutputFolderBusy otherwise, as the CLI's exit 75).
    with run_lock.holding_output_folder(Settings(dataset="penguins", output_root=tmp_path),
                                        "the test's check", wait=False):
        pass

    first, second = _start(tmp_path), _start(tmp_path)
    outputs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], "\n".join(outputs)[-4000:]
    # Who it waits for: the holder's command, or "another run (who: unknown, ...)" when it
    # looked between the other's lock and its holder file (CI, 2026-12-05).
    waited = [o for o in outputs if "to finish: one run per output folder" in o]
    assert len(waited) == 1, outputs
    # The one that waited finds the other's result: nothing left to run, nothing pushed.
    assert "Up to date" in waited[0] and "Pusher" not in waited[0]
    ran = next(o for o in outputs if o is not waited[0])
    # The one that ran resumed from the killed run's cache: what did not finish ran.
    states = _states(ran)
    assert states["CsvExampleGen"] == "cached", ran
    assert states["StatisticsGen"] in (("cached",) if statistics_done else ("cached", "ran")), ran
    assert states["Transform"] == "ran" and states["Pusher"] == "ran", ran
    assert "now champion" in ran, ran
    assert len(list((tmp_path / "penguins" / "serving").iterdir())) == 1
