"""SIGTERM ends a run the way Ctrl-C does.

`kill`, a scheduler's timeout or a container's stop sends SIGTERM. Python's default ends the
process on the spot: since MLflow logs each stage while the run goes on
(pipeline/tracking/live_tracking.py), that left the run RUNNING in MLflow for good, and the
output folder's lock to be found stale by the next run. Inside `terminating_as_interrupt()` the
signal raises Terminated, a KeyboardInterrupt, so it takes Ctrl-C's path: the MLflow run ends
KILLED, the lock is released, and the process exits 143 (128 + SIGTERM) instead of Ctrl-C's 130.
SIGKILL cannot be caught; a run killed so stays RUNNING.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread where Ctrl-C's KeyboardInterrupt would be."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated


@contextlib.contextmanager
def terminating_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises Terminated; the caller's handler is back afterwards.
    Off the main thread (a caller's own thread), where Python cannot install a handler, the
    block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
