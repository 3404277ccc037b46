"""make bench's tracking and start-up fixed costs (pipeline/bench/tracking_cost.py): the first
line is timed from the command's start and the command is stopped right after it; the report
names both costs with their targets. <1 s."""
from __future__ import annotations

import time

from pipeline.bench import tracking_cost


def test_first_line_is_timed_from_the_start_and_the_command_is_stopped_after_it():
    started = time.perf_counter()
    seconds = tracking_cost.first_line_s(["sh", "-c", "sleep 0.3; echo first; sleep 60"])
    assert 0.3 <= seconds < 5
    assert time.perf_counter() - started < 10  # not the sleep 60 after the line


def test_the_report_rows_name_each_cost_and_its_target():
    rows = tracking_cost.lines({
        "first_line_s": {"python -m pipeline run": 0.4, "make pipeline": 0.5},
        "mlflow_after_pusher_s": {"live": 1.5, "after the fact": 6.0},
        "load_average": 1.0})
    text = "\n".join(rows)
    assert "| first line, `make pipeline` (median of 3) | 0.50 | <= 2 s |" in text
    assert "| MLflow logging after the Pusher, live (as `make pipeline`) | 1.50 | <= 3 s |" in text
    assert "(4.0x)" in text
