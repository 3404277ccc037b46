"""The live summary: finished lines always; on a terminal, a live line for the running stage
with its elapsed seconds, redrawn in place and cleared when the stage's line is written."""
from __future__ import annotations

import io
import logging
import threading
import time
from pathlib import Path

import pytest

from pipeline.console import stage_summary
from pipeline.console.stage_summary import StageReporter


def _event(node: str, what: str) -> logging.LogRecord:
    return logging.LogRecord("absl", logging.INFO, __file__, 1, f"Component {node} is {what}.",
                             None, None)


@pytest.fixture(autouse=True)
def fast_ticks(monkeypatch):
    monkeypatch.setattr(stage_summary, "TICK_SECONDS", 0.02)


@pytest.fixture
def store(tmp_path) -> Path:
    """An empty ML Metadata store: the stages here have no executions, so no figures."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    path = tmp_path / "metadata.sqlite"
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = \
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    metadata_store.MetadataStore(config)
    return path


def _run_stage(reporter: StageReporter, node: str, seconds: float) -> None:
    reporter.emit(_event(node, "running"))
    time.sleep(seconds)
    reporter.emit(_event(node, "finished"))


def test_a_terminal_gets_a_live_line_with_elapsed_seconds(store):
    out = io.StringIO()
    reporter = StageReporter(store, "p", out, live=True)
    _run_stage(reporter, "Transform", 0.2)
    text = out.getvalue()
    live = [part for part in text.split("\r\x1b[K") if "running" in part]
    assert len(live) >= 3, text  # redrawn while the stage ran
    assert live[0].split()[:2] == ["Transform", "running"] and live[0].endswith("s")
    elapsed = [float(part.split()[2].rstrip("s")) for part in live]
    assert elapsed == sorted(elapsed) and elapsed[-1] > 0.0
    # The finished line replaces the live one and ends the line.
    assert text.endswith("\n") and text.rstrip("\n").rsplit("\r\x1b[K", 1)[1].split()[0] == \
        "Transform"


def test_a_pipe_gets_only_plain_finished_lines(store):
    out = io.StringIO()  # not a terminal: live defaults to off
    reporter = StageReporter(store, "p", out)
    assert reporter.live is False
    _run_stage(reporter, "Trainer", 0.1)
    _run_stage(reporter, "Evaluator", 0.05)
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["Trainer", "Evaluator"]
    assert "\r" not in out.getvalue() and "running" not in out.getvalue()


def test_a_failed_stage_stops_the_live_line_and_says_failed(store):
    out = io.StringIO()
    reporter = StageReporter(store, "p", out, live=True)
    reporter.emit(_event("Transform", "running"))
    time.sleep(0.1)
    assert _tickers() and "Transform running" in " ".join(out.getvalue().split())
    reporter.report_failure()
    # The ticker thread has ended, not merely gone quiet: left running, it would tick (and hold
    # a thread) for the rest of the process, and could draw over the FAILED line.
    assert not _tickers()
    text = out.getvalue()
    assert text.rstrip("\n").rsplit("\r\x1b[K", 1)[1].split()[:2] == ["Transform", "FAILED"]
    time.sleep(0.1)
    assert out.getvalue() == text  # nothing is drawn after the failure


def _tickers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "stage-ticker" and t.is_alive()]
