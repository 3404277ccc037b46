"""pipeline/runners/check_branch.py: the checks in a forked process beside the model's path.

Stand-in nodes (tests/runners/check_branch_probe.py: each sleeps, logs its pid and times, or
raises) in a process of their own, so the fork is real and quick (~1 s a case). What the real
pipeline does with it is in the e2e tests: the checks' and the Transform's executions overlap
(tests/e2e/test_pipeline_e2e.py), a contract stop (tests/inputs/test_bad_input.py), Ctrl-C and
SIGTERM (tests/tracking/test_tracking.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, process_alive

# examples -> {contract -> contract gate}, beside {transform}; the trainer waits for the gate.
EXAMPLES = {"id": "examples", "up": []}
CONTRACT = {"id": "contract", "up": ["examples"], "check": True}
GATE = {"id": "gate", "up": ["contract"], "check": True}
TRANSFORM = {"id": "transform", "up": ["examples"]}
TRAINER = {"id": "trainer", "up": ["transform", "gate"]}


def _run(tmp_path, *nodes: dict, terminating: bool = False, **scenario) -> tuple[dict, dict]:
    log = tmp_path / "launches.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "tests.runners.check_branch_probe",
         json.dumps({"log": str(log), "nodes": list(nodes), "terminating": terminating,
                     **scenario})],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    launches = {}
    if log.exists():
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            launches[entry["id"]] = entry
    return json.loads(done.stdout.splitlines()[-1]), launches


def test_the_checks_run_in_another_process_beside_the_transform_and_the_trainer_waits(
        tmp_path):
    result, launched = _run(tmp_path, EXAMPLES, {**CONTRACT, "sleep": 0.5},
                            {**GATE, "sleep": 0.2}, {**TRANSFORM, "sleep": 0.6}, TRAINER)
    assert result["raised"] is None
    parent = result["pid"]
    assert {n: e["pid"] == parent for n, e in launched.items()} == {
        "examples": True, "contract": False, "gate": False, "transform": True, "trainer": True}
    assert launched["contract"]["start"] >= launched["examples"]["end"]  # it reads the examples
    # Beside each other: the contract check started before the Transform ended, and the other
    # way round.
    assert launched["contract"]["start"] < launched["transform"]["end"]
    assert launched["transform"]["start"] < launched["contract"]["end"]
    assert launched["trainer"]["start"] >= launched["gate"]["end"]
    # Each check's end reached the parent, in order, as it happened.
    assert result["ended"] == ["contract", "gate"] and result["failed"] == []
    assert result["seconds"] < 0.5 + 0.2 + 0.6  # not one after the other
    assert not process_alive(launched["gate"]["pid"])


def test_the_checks_process_imports_what_they_need_while_the_examples_are_made(tmp_path):
    """warm_imports: the child imports them before the checks may start (while the parent
    makes their inputs), the parent does not; a module that does not import is no error (the
    node that needs it reports it)."""
    result, launched = _run(tmp_path, {**EXAMPLES, "sleep": 0.3}, CONTRACT, GATE, TRANSFORM,
                            TRAINER, warm_imports=["wave", "no_such_module_here"],
                            watch=["wave"])
    assert result["raised"] is None and result["ended"] == ["contract", "gate"]
    assert launched["contract"]["loaded"] == ["wave"]
    assert launched["transform"]["loaded"] == launched["trainer"]["loaded"] == []
    (tmp_path / "cold").mkdir()
    _, launched = _run(tmp_path / "cold", EXAMPLES, CONTRACT, GATE, TRANSFORM, TRAINER,
                       watch=["wave"])
    assert launched["contract"]["loaded"] == []


def test_a_failed_check_is_the_error_and_nothing_that_waits_for_it_runs(tmp_path):
    result, launched = _run(tmp_path, EXAMPLES, {**CONTRACT, "sleep": 0.5, "raise": "ValueError"},
                            GATE, {**TRANSFORM, "sleep": 0.1}, TRAINER)
    # The check's own exception, raised again in the parent (the CLI's message and exit code
    # depend on its type).
    assert result["raised"] == ["ValueError", "contract: bad data"]
    assert result["failed"] == ["contract"] and result["ended"] == []
    assert "gate" not in launched and "trainer" not in launched
    assert "transform" in launched  # it ran beside the check; its outputs feed nothing


@pytest.mark.parametrize("wraps", [False, True], ids=["raised", "re-raised-by-beam"])
def test_a_failed_check_stops_the_stage_beside_it_at_once_in_a_run(tmp_path, wraps):
    """Inside the CLI's termination block: a large file's Transform does not run on for
    minutes after the contract refused the file. Whether the stop comes out of the stage as
    itself or as Beam's RuntimeError, the check's error is the run's, and the stage is told
    stopped once."""
    result, launched = _run(tmp_path, EXAMPLES, {**CONTRACT, "sleep": 0.3, "raise": "ValueError"},
                            GATE, {**TRANSFORM, "sleep": 60, "wraps": wraps}, TRAINER,
                            terminating=True)
    assert result["raised"] == ["ValueError", "contract: bad data"]
    assert result["seconds"] < 30  # not the Transform's 60 s
    assert "transform" not in launched  # stopped in its sleep, before its log line
    assert result["failed"] == ["contract"] and result["stopped"] == 1


def test_a_failed_check_after_the_stage_beside_it_stops_nothing_more(tmp_path):
    """The stop is asked only while the parent runs a stage: at the barrier, it waits, and the
    check's error is raised there, with no stage called stopped."""
    result, launched = _run(tmp_path, EXAMPLES, {**CONTRACT, "sleep": 0.5, "raise": "ValueError"},
                            GATE, {**TRANSFORM, "sleep": 0.1}, TRAINER, terminating=True)
    assert result["raised"] == ["ValueError", "contract: bad data"]
    assert "transform" in launched and "trainer" not in launched
    assert result["stopped"] == 0


def test_a_check_that_fails_first_stops_the_run_before_the_next_stage(tmp_path):
    """A check that fails before the parent's stage starts: that stage does not start."""
    result, launched = _run(tmp_path, EXAMPLES, {"id": "schema", "up": [], "sleep": 0.5},
                            {**CONTRACT, "raise": "ValueError"}, GATE,
                            {**TRANSFORM, "up": ["examples", "schema"]}, TRAINER)
    assert result["raised"] == ["ValueError", "contract: bad data"]
    assert {"examples", "contract"} <= set(launched)  # the schema too, unless it came later
    assert not {"gate", "transform", "trainer"} & set(launched)


def test_a_failed_check_explains_a_failed_transform(tmp_path):
    """Bad data breaks the Transform too, sooner than the check finds it: the check's error is
    the one reported, not the Transform's."""
    result, launched = _run(tmp_path, EXAMPLES, {**CONTRACT, "sleep": 0.4, "raise": "ValueError"},
                            GATE, {**TRANSFORM, "raise": "Unpicklable"}, TRAINER)
    assert result["raised"] == ["ValueError", "contract: bad data"]
    assert "trainer" not in launched


def test_a_failed_transform_is_the_error_when_the_checks_pass(tmp_path):
    result, launched = _run(tmp_path, EXAMPLES, CONTRACT, GATE,
                            {**TRANSFORM, "raise": "ValueError"}, TRAINER)
    assert result["raised"] == ["ValueError", "transform: bad data"]
    assert result["ended"] == ["contract", "gate"]  # waited for, not killed
    assert "trainer" not in launched


def test_an_exception_that_does_not_pickle_is_named(tmp_path):
    result, _ = _run(tmp_path, EXAMPLES, {**CONTRACT, "raise": "Unpicklable"}, GATE, TRANSFORM,
                     TRAINER)
    assert result["raised"] == ["RuntimeError", "_Unpicklable: contract: cannot travel"]


def test_ctrl_c_in_the_parent_stops_the_checks_at_once(tmp_path):
    result, launched = _run(tmp_path, EXAMPLES, {**CONTRACT, "sleep": 60}, GATE,
                            {**TRANSFORM, "sleep": 0.3, "raise": "KeyboardInterrupt"}, TRAINER)
    assert result["raised"] == ["KeyboardInterrupt", ""]
    assert result["seconds"] < 30  # not the check's 60 s
    assert "contract" not in launched  # killed in its sleep, before its log line
    assert result["ended"] == [] and result["failed"] == []


def test_a_failure_before_the_checks_can_start_does_not_wait_for_their_warm_up(tmp_path):
    """The child is importing (20 s) when the parent's first stage fails: the run ends at
    once with that stage's error, the child with it."""
    result, launched = _run(tmp_path, {**EXAMPLES, "raise": "ValueError"}, CONTRACT, GATE,
                            TRANSFORM, TRAINER, warm_imports=["tests.runners.slow_import_probe"])
    assert result["raised"] == ["ValueError", "examples: bad data"]
    assert result["seconds"] < 10
    assert set(launched) == {"examples"}


def test_a_failure_before_the_checks_can_start_ends_their_process(tmp_path):
    result, launched = _run(tmp_path, {**EXAMPLES, "raise": "ValueError"}, CONTRACT, GATE,
                            TRANSFORM, TRAINER)
    assert result["raised"] == ["ValueError", "examples: bad data"]
    assert set(launched) == {"examples"}


def test_in_turn_the_checks_run_as_soon_as_what_they_read_exists(tmp_path):
    """Without the fork (not safe, or switched off), one node at a time: the checks right after
    the examples and the schema, before the Transform, so bad data stops the run there."""
    schema = {"id": "schema", "up": []}
    anomalies = {"id": "anomalies", "up": ["gate", "schema"], "check": True}
    result, _ = _run(tmp_path, EXAMPLES, schema, CONTRACT, {**TRANSFORM, "up": ["examples",
                     "schema"]}, GATE, anomalies, {**TRAINER, "up": ["transform", "anomalies"]})
    assert result["in_turn"] == ["examples", "schema", "contract", "gate", "anomalies",
                                 "transform", "trainer"]


def test_forking_is_refused_while_a_python_thread_runs():
    code = ("import threading, time; from pipeline.runners import check_branch as c; "
            "print(c._why_not_fork([1], object())); "
            "threading.Thread(target=time.sleep, args=(2,), daemon=True).start(); "
            "print(c._why_not_fork([1], object())); print(c._why_not_fork([], object()))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "CSV2MODEL_OVERLAP_CHECKS": "1"})
    assert done.returncode == 0, done.stderr
    alone, threaded, nothing = done.stdout.splitlines()
    assert alone == "None"
    assert threaded == "not safe to fork: Python threads are running"
    assert nothing.startswith("no check to run")
