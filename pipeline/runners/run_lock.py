"""One run per output folder at a time.

Runs on one output folder share its ML Metadata store, pipeline root, serving folder and MLflow
store by design (a scheduled run and a manual one see each other's cache). Two at once would both
do all the work, both push, and read each other's executions. So a run holds an OS file lock on
`<output folder>/run.lock` (filelock: fcntl.flock on Unix) while it works: the kernel drops it
when the holder exits in any way, kill -9 included, so a dead holder never blocks the next run.
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
    try:
        holder_path.write_text(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "command": command,
            "run_id": run_id, "started": datetime.datetime.now().isoformat(timespec="seconds"),
        }))
        yield
    finally:
        with contextlib.suppress(OSError):
            holder_path.unlink()
        lock.release()
