"""Live per-stage summary: one line per TFX stage as it finishes, figures read from ML Metadata.

LocalDagRunner logs 'Component <id> is running.' and '... is finished.' around each node; a
logging handler turns those into summary lines on the user's terminal while the full log goes to
a file.
"""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import TextIO

from pipeline.console import summary_figures
from pipeline.mlmd import queries

_EVENT = re.compile(r"^Component (\S+) is (running|finished)\.$")


class StageReporter(logging.Handler):
    def __init__(self, metadata_path: Path, pipeline_name: str, out: TextIO):
        super().__init__(level=logging.INFO)
        self.metadata_path = metadata_path
        self.pipeline_name = pipeline_name
        self.out = out
        self.started: dict[str, float] = {}
        self.lines: list[dict] = []
        self.current: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        match = _EVENT.match(record.getMessage())
        if not match:
            return
        node_id, event = match.groups()
        if event == "running":
            self.started[node_id] = time.monotonic()
            self.current = node_id
        else:
            self.current = None
            self.report(node_id, time.monotonic() - self.started.get(node_id, time.monotonic()))

    def report_failure(self) -> None:
        """Called when the run raised: the stage that was running is the one that failed."""
        if self.current is not None:
            seconds = time.monotonic() - self.started[self.current]
            self.lines.append({"stage": self.current, "state": "failed", "seconds": seconds,
                               "figure": ""})
            self.write(f"  {self.current:<27} {'FAILED':<8} {seconds:6.1f}s")
            self.current = None

    def report(self, node_id: str, seconds: float) -> None:
        with queries.open_store_context(self.metadata_path) as store:
            node = queries.node_execution(store, self.pipeline_name, node_id)
        # Resolvers look artifacts up rather than execute, whatever ML Metadata calls it.
        state = "resolved" if node is None or "Resolver" in node_id else node.state
        text = summary_figures.figure(node) if node else ""
        self.lines.append({"stage": node_id, "state": state, "seconds": seconds, "figure": text})
        self.write(f"  {node_id:<27} {state:<8} {seconds:6.1f}s  {text}")

    def write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()
