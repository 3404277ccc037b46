"""A run of pipeline/runners/check_branch.py's fork with stand-in nodes, for
tests/runners/test_check_branch.py (as `python -m tests.runners.check_branch_probe SCENARIO`):
a process of its own, so that the fork is of a process with no thread but its main one, as in
a pipeline run, not of pytest's.

SCENARIO (JSON): {"log": FILE, "terminating": bool, "warm_imports": [modules], "watch": [modules],
"nodes": [{"id", "up": [ids], "check": bool, "sleep": s, "raise": null | "ValueError" |
"KeyboardInterrupt" | "Unpicklable", "wraps": bool}]}.
Each launch appends {"id", "pid", "start", "end", "loaded": the watched modules imported} to FILE; the probe prints what the run raised
and what the parent was told, as one JSON line. "terminating": the run inside
termination.terminating_as_interrupt(), as the CLI runs it; "wraps": what interrupts the node's
sleep comes out as a RuntimeError, as Beam re-raises what lands in a DoFn.
"""
import json
import os
import sys
import time
from types import SimpleNamespace

import contextlib

from pipeline.runners import check_branch, termination


class _Options:
    def HasField(self, name: str) -> bool:  # noqa: N802 - the proto's method name
        return False


class _Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("not this one")


def _node(spec: dict):
    return SimpleNamespace(node_info=SimpleNamespace(id=spec["id"]), upstream_nodes=spec["up"],
                           execution_options=_Options())


def main(scenario: dict) -> dict:
    specs = {n["id"]: n for n in scenario["nodes"]}

    def launch(node) -> None:
        spec = specs[node.node_info.id]
        start = time.time()
        try:
            time.sleep(spec.get("sleep", 0))
        except BaseException as e:
            if spec.get("wraps"):
                raise RuntimeError(f"{type(e).__name__} [while running '{spec['id']}']") from e
            raise
        with open(scenario["log"], "a") as log:
            log.write(json.dumps({"id": spec["id"], "pid": os.getpid(), "start": start,
                                  "end": time.time(),
                                  "loaded": [m for m in scenario.get("watch", [])
                                             if m in sys.modules]}) + "\n")
        raised = spec.get("raise")
        if raised == "ValueError":
            raise ValueError(f"{spec['id']}: bad data")
        if raised == "KeyboardInterrupt":
            raise KeyboardInterrupt
        if raised == "Unpicklable":
            raise _Unpicklable(f"{spec['id']}: cannot travel")

    nodes = [_node(n) for n in scenario["nodes"]]
    side = [n for n in nodes if specs[n.node_info.id].get("check")]
    told = {"ended": [], "failed": [], "stopped": 0}

    def stopped() -> None:
        told["stopped"] += 1

    branch = check_branch.Branch(ended=lambda node_id, s: told["ended"].append(node_id),
                                 failed=lambda node_id, s: told["failed"].append(node_id),
                                 stopped=stopped)
    started = time.monotonic()
    raised = None
    block = termination.terminating_as_interrupt() if scenario.get("terminating") \
        else contextlib.nullcontext()
    try:
        with block:
            check_branch._Overlapped(launch, nodes, side, branch,  # noqa: SLF001
                                     scenario.get("warm_imports", ())).run()
    except BaseException as e:  # noqa: BLE001 - reported
        raised = [type(e).__name__, str(e)]
    return {"raised": raised, "pid": os.getpid(), "seconds": time.monotonic() - started,
            "in_turn": [n.node_info.id for n in check_branch.in_turn(
                nodes, {n.node_info.id for n in side})], **told}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
