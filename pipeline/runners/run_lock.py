"""One run per output folder at a time.

Runs on one output folder share its ML Metadata store, pipeline root, serving folder and MLflow
store by design (a scheduled run and a manual one see each other's cache). Two at once would both
do all the work, both push, and read each other's executions. So a run holds an OS file lock on
`<output folder>/run.lock` (filelock: fcntl.flock on Unix) while it works: the kernel drops it
when the holder exits in any way, kill -9 included, so a dead holder never blocks the next run.
flock belongs to the open file, which a forked child shares: a child that outlived a killed
holder by a few milliseconds (the checks' process, check_branch.py, still exiting) kept the
folder locked (CI, 2026-12-05). So a child forked while the lock is held closes its copy of the
descriptor at once (os.register_at_fork; closing is not unlocking: the parent keeps the lock).
Who holds it (pid, start, TFX run id, command) is in `run.lock.holder.json` beside it, for the
line a waiting run prints; a holder file left by a killed run is overwritten by the next holder.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator, TextIO

from pipeline.config.settings import Settings

LOCK_FILE = "run.lock"
HOLDER_FILE = "run.lock.holder.json"
POLL_SECONDS = 0.5


# The descriptor of the lock this process holds, for _close_in_forked_child.
_held_fd: int | None = None
_fork_hook_registered = False


class OutputFolderBusy(RuntimeError):
    """Another run holds the output folder and this one was told not to wait."""


def new_run_id() -> str:
    """A TFX pipeline run id in the form TFX's local runner gives one (its start time)."""
    return datetime.datetime.now().isoformat()


def _holder_text(path: Path) -> str:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return "another run (who: unknown, it has not written its details yet)"
    return (f"{holder.get('command', 'a run')} (pid {holder.get('pid')} on "
            f"{holder.get('host')}, started {holder.get('started')}, "
            f"run id {holder.get('run_id') or 'none yet'})")


def _close_in_forked_child() -> None:
    global _held_fd
    if _held_fd is not None:
        with contextlib.suppress(OSError):
            os.close(_held_fd)
        _held_fd = None


def _held(fd: int | None) -> None:
    global _held_fd, _fork_hook_registered
    _held_fd = fd
    if fd is not None and not _fork_hook_registered:
        os.register_at_fork(after_in_child=_close_in_forked_child)
        _fork_hook_registered = True


@contextlib.contextmanager
def holding_output_folder(settings: Settings, command: str, run_id: str = "", *,
                          wait: bool = True, out: TextIO = sys.stdout) -> Iterator[None]:
    """Hold the output folder's run lock for the block; wait for it, or raise
    OutputFolderBusy at once when `wait` is false and another run holds it."""
    import filelock

    folder = settings.output_dir
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(folder / LOCK_FILE)
    holder_path = folder / HOLDER_FILE
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        holder = _holder_text(holder_path)
        if not wait:
            raise OutputFolderBusy(
                f"{folder} is in use by {holder}; one run per output folder at a time. Wait "
                "for it, drop --no-wait to queue behind it, or use another --output-root"
            ) from None
        out.write(f"Waiting for {holder} to finish: one run per output folder "
                  f"({folder / LOCK_FILE})\n")
        out.flush()
        waited = time.monotonic()
        lock.acquire(poll_interval=POLL_SECONDS)
        out.write(f"  got the output folder after {time.monotonic() - waited:.0f}s\n")
        out.flush()
    _held(lock._context.lock_file_fd)  # filelock keeps it there (3.x)
    try:
        holder_path.write_text(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "run_id": run_id, "started": datetime.datetime.now().isoformat(timespec="seconds"),
        }))
        yield
    finally:
        with contextlib.suppress(OSError):
            holder_path.unlink()
        _held(None)
        lock.release()
