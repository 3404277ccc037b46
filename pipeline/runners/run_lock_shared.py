"""The output folder's run lock, shared by the tasks of one orchestrated run.

run_lock.py gives a run the output folder alone: `make pipeline`, `make score` and `make init`
take `run.lock` exclusively. Under Airflow's LocalExecutor (PostgreSQL, docs/team.md) the
stages of one run that do not depend on each other run at the same time, each as its own
task process; an exclusive lock per task would make them queue again. So a task takes the same
`run.lock` in shared mode (flock LOCK_SH): any number of tasks at once, while a local run's
exclusive lock waits for them all (and they for it).

Shared mode alone would also admit a task of another run, so each holder leaves a member file
named after its pid, holding an exclusive flock on it while it lives, with its run id inside; a
task joins only when every live member is of its own run. A member whose flock can be taken is
dead (the kernel drops a killed process's locks): its file is removed. Joining happens under a
short exclusive "gate" lock, so two runs' tasks never decide at the same moment.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import Iterator, TextIO

from pipeline.config.settings import Settings
from pipeline.runners.run_lock import LOCK_FILE, POLL_SECONDS, OutputFolderBusy

GATE_FILE = "run.lock.gate"
MEMBERS = "run.lock.tasks"  # one <pid>.json per task holding the lock in shared mode


def _other_runs(members: Path, run_id: str) -> list[str]:
    """Run ids of live members of other runs; dead members' files are removed."""
    others = []
    for path in members.glob("*.json"):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # alive
                try:
                    member_run = json.loads(path.read_text()).get("run_id", "")
                except (OSError, ValueError):
                    member_run = ""  # still writing its details: not ours to assume
                if member_run != run_id:
                    others.append(member_run or "(unknown)")
                continue
            path.unlink(missing_ok=True)  # its process is gone
        finally:
            os.close(fd)
    return others


@contextlib.contextmanager
def sharing_output_folder(settings: Settings, command: str, run_id: str, *, wait: bool = True,
                          out: TextIO = sys.stdout) -> Iterator[None]:
    """Hold the output folder for one task of orchestrated run `run_id`, alongside the other
    tasks of that run; wait while a local run or a task of another run holds it (or raise
    run_lock.OutputFolderBusy at once when `wait` is false)."""
    folder = settings.output_dir
    members = folder / MEMBERS
    members.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    member = members / f"{os.getpid()}.json"
    member_fd = None
    waited = None
    try:
        while True:
            with open(folder / GATE_FILE, "a") as gate:
                fcntl.flock(gate, fcntl.LOCK_EX)
                try:
                    fcntl.flock(lock_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    others = _other_runs(members, run_id)
                    if not others:
                        member_fd = os.open(member, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
                        fcntl.flock(member_fd, fcntl.LOCK_EX)
                        os.write(member_fd, json.dumps({
                            "pid": os.getpid(), "run_id": run_id, "command": command}).encode())
                        break
                    fcntl.flock(lock_fd, fcntl.LOCK_UN)
                    who = f"tasks of run {', '.join(sorted(set(others)))}"
                except BlockingIOError:
                    who = "a run that holds it alone (run.lock.holder.json says which)"
            if not wait:
                raise OutputFolderBusy(f"{folder} is in use by {who}; one run per output "
                                       "folder at a time")
            if waited is None:
                waited = time.monotonic()
                out.write(f"Waiting for {who}: one run per output folder "
                          f"({folder / LOCK_FILE})\n")
                out.flush()
            time.sleep(POLL_SECONDS)
        if waited is not None:
            out.write(f"  got the output folder after {time.monotonic() - waited:.0f}s\n")
            out.flush()
        yield
    finally:
        if member_fd is not None:
            member.unlink(missing_ok=True)
            os.close(member_fd)
        os.close(lock_fd)  # drops the shared lock
