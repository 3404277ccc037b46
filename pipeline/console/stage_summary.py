"""Live per-stage summary: one line per TFX stage as it finishes, figures read from ML Metadata.

LocalDagRunner logs 'Component <id> is running.' and '... is finished.' around each node; a
logging handler turns those into summary lines on the user's terminal while the full log goes to
a file. On a terminal, the running stage also has a live line with its elapsed seconds, redrawn
in place; elsewhere (CI, Airflow task logs, a pipe) only the finished lines are written.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import Callable, TextIO

from pipeline.console import summary_figures
from pipeline.mlmd import queries

_EVENT = re.compile(r"^Component (\S+) is (running|finished)\.$")
_CLEAR_LINE = "\r\x1b[K"
TICK_SECONDS = 0.5


def stage_line(node_id: str, state: str, seconds: float, figure: str = "") -> str:
    return f"  {node_id:<27} {state:<8} {seconds:6.1f}s  {figure}".rstrip()


class StageReporter(logging.Handler):
    def __init__(self, metadata_path: Path, pipeline_name: str, out: TextIO,
                 live: bool | None = None, run_id: str | None = None,
                 on_finished: Callable[[queries.NodeExecution | None], None] | None = None):
        super().__init__(level=logging.INFO)
        # Told each finished stage's execution as read here (MLflow logs it while the run goes).
        self.on_finished = on_finished
        self.metadata_path = metadata_path
        self.pipeline_name = pipeline_name
        self.run_id = run_id  # figures come from this TFX run's executions only
        self.out = out
        self.live = _is_terminal(out) if live is None else live
        self.started: dict[str, float] = {}
        self.current: str | None = None
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        match = _EVENT.match(record.getMessage())
        if not match:
            return
        node_id, event = match.groups()
        if event == "running":
            self.started[node_id] = time.monotonic()
            self.current = node_id
            self._start_ticker()
        else:
            self._stop_ticker()
            self.current = None
            node = self.report(node_id,
                               time.monotonic() - self.started.get(node_id, time.monotonic()))
            if self.on_finished is not None:
                self.on_finished(node)

    def report_failure(self, state: str = "FAILED", figure: str = "") -> None:
        """Called when the run raised: the stage that was running failed, or was `stopped`
        because a check beside it failed (check_branch.py)."""
        self._stop_ticker()
        if self.current is not None:
            seconds = time.monotonic() - self.started[self.current]
            self.write(stage_line(self.current, state, seconds, figure))
            self.current = None

    def report(self, node_id: str, seconds: float) -> queries.NodeExecution | None:
        """The stage's line; returns its execution as read from ML Metadata."""
        node = self._execution(node_id)
        state = "resolved" if node is None or node.is_resolver else node.state
        text = summary_figures.figure(node) if node else ""
        self.write(stage_line(node_id, state, seconds, text))
        return node

    def report_failed(self, node_id: str, seconds: float) -> None:
        """A check that failed: FAILED, with the gate's figure when it is a gate that stops the
        run on purpose (the DriftGate's drifted columns; its report is kept for this, see
        pipeline/mlmd/unpublished_outputs.py). Another stage's figure would read its missing
        outputs as zeros."""
        node = self._execution(node_id) if node_id in summary_figures.STOPPING_GATES else None
        text = summary_figures.figure(node) if node else ""
        self.write(stage_line(node_id, "FAILED", seconds, text))

    def _execution(self, node_id: str) -> queries.NodeExecution | None:
        with queries.open_store_context(self.metadata_path) as store:
            return queries.node_execution(store, self.pipeline_name, node_id, self.run_id)

    def close(self) -> None:
        self._stop_ticker()
        super().close()

    def write(self, line: str) -> None:
        with self._lock:
            self.out.write((_CLEAR_LINE if self.live else "") + line + "\n")
            self.out.flush()

    # ---- the live line ------------------------------------------------------------------------
    def _start_ticker(self) -> None:
        if not self.live or self._ticker is not None:
            return
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, name="stage-ticker", daemon=True)
        self._ticker.start()

    def _stop_ticker(self) -> None:
        if self._ticker is None:
            return
        self._stop.set()
        self._ticker.join()
        self._ticker = None

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            node_id = self.current
            if node_id is None:
                continue
            elapsed = time.monotonic() - self.started[node_id]
            with self._lock:
                self.out.write(_CLEAR_LINE + stage_line(node_id, "running", elapsed))
                self.out.flush()


def _is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False
