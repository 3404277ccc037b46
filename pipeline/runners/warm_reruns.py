"""The next command in a warm worker: `run` and `score` leave the warm worker that Airflow's
tasks run in (pipeline/runners/warm_worker.py) for the next command on the same output root,
which then runs in a child of it instead of importing TensorFlow, TFX, Beam, tf.Transform,
TFMA, Great Expectations and MLflow itself (docs/running.md#re-runs-in-a-warm-worker).

Why: a re-run after a changed setting (`--epochs`, a model option, a fixed CSV) spent ~4 s of
its ~20-25 s on those imports before its first stage, measured on taxi. Build tools keep a
daemon for the same reason (Gradle, Bazel).

- Left: after a `run` or `score` that went through TFX in its own process, once its summary is
  printed; one line says so. Not after an "Up to date" answer, a refusal before TFX, or an
  interrupted run. The worker imports in the background (~9 s of one core) and exits after
  CSV2MODEL_WARM_WORKER_IDLE_S (default 300) without a task, or when the installed packages
  change (warm_worker.py).
- Used: by the next `run` or `score` on that output root, after its up-to-date check (which
  needs no TensorFlow and answers at once). The child runs `python -m pipeline` with the
  command's arguments, environment, working folder and descriptors, and imports this repo's
  modules afresh: an edited model module or spec is read as in a new process.
- Off: CSV2MODEL_WARM_RERUNS=0 (no worker left or used by these commands; Airflow's tasks still
  use theirs), CSV2MODEL_WARM_WORKER=0 (no warm worker at all). `python -m
  pipeline.runners.warm_worker stop --output-root DIR` stops one now.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_SWITCH = "CSV2MODEL_WARM_RERUNS"
COMMANDS = ("run", "score")
# What the worker calls before its imports: what pipeline/cli/main.py does first thing, so that
# the libraries it preloads are imported as a command's own process imports them. Part of the
# worker's key: the Airflow tasks and these commands share one worker per output root.
SETUP = ("pipeline.cli.unused_imports:keep_out",)


def disabled(environ=None) -> bool:
    from pipeline.runners import warm_worker

    environ = os.environ if environ is None else environ
    value = environ.get(ENV_SWITCH, "").strip().lower()
    return value in ("0", "off", "false", "no") or warm_worker.disabled(environ)


def in_worker() -> bool:
    """Whether this process is a warm worker's child running the command."""
    from pipeline.runners import warm_worker

    return warm_worker.CHILD_MARK in sys.modules


def worker_key() -> str:
    """This process's worker key (warm_worker.worker_key), taken as the command starts: the
    run's imports change sys.path (IPython adds its extensions folder)."""
    from pipeline.runners import warm_worker

    return warm_worker.worker_key(warm_worker.PRELOAD, SETUP)


def run_in_worker(output_root: Path, key: str) -> int | None:
    """Run this process's command in a child of the output root's worker, when one is there;
    its exit code, or None: run it here (no worker, or it refused; a refusal says why)."""
    from pipeline.runners import warm_worker

    if disabled() or in_worker() or not warm_worker.listening(output_root, key):
        return None
    return warm_worker.run_task(output_root, sys.argv, setup=SETUP, key=key, start=False)


def leave_worker(output_root: Path, key: str, out=None) -> None:
    """After a command that imported the libraries here: a worker for the next one."""
    from pipeline.runners import warm_worker

    out = out or sys.stdout

    if disabled() or in_worker():
        return
    if warm_worker.ensure_started(output_root, setup=SETUP, key=key):
        idle = float(os.environ.get(warm_worker.IDLE_ENV) or warm_worker.DEFAULT_IDLE_S)
        out.write(f"  warm worker: left for the next run or score here, {idle / 60:g} min idle "
                  f"(it skips the ~4 s of imports; {ENV_SWITCH}=0: none)\n")
        out.flush()
