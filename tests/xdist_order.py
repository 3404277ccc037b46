"""The order in which pytest-xdist hands the test groups to its workers (tests/conftest.py).

xdist gives a worker its next group when the current one is nearly done, so the wall time is
that of the slower worker: longest-processing-time-first scheduling hands out the long groups
first and leaves short ones to even out the end. A group's cost is guessed from its tests'
marks. Simulated on the per-test durations of a `make test --durations=0` (2026-12-06, 1,112
tests, 1,416 s of tests on 2 workers) with each duration jittered by +-30% over 200 draws: the
slower worker took 710 s on average in this order against 731 s in xdist's own (groups with the
most tests first), which the suite had actually run in: it put the one-test files that run a
whole pipeline (PostgreSQL-backed Airflow, the stage cache) last, and the run ended 84 s after
its other worker. Measured, one run each: 797 s (workers ending 84 s apart) before, 824 s
(10 s apart) after, with 11% more seconds of tests in all: a pipeline run uses both cores by
itself, so a suite with pipelines on both workers is bound by the machine's two cores, not by
the workers' balance, and this machine's speed moves by more than the difference. Kept because
it is what the order here was written to be (xdist's re-sort had silently undone it).
"""
from __future__ import annotations

from typing import Callable, Sequence, TypeVar

Item = TypeVar("Item")

# Seconds, roughly: a pipeline run takes 10-60 s, an import probe 3-17 s, a unit test well under
# one. Only the order they give matters.
E2E_COST = 10.0
PROBE_COST = 5.0
UNIT_COST = 0.3


def guessed_cost(item) -> float:
    if item.get_closest_marker("e2e"):
        return E2E_COST
    return PROBE_COST if item.get_closest_marker("probe") else UNIT_COST


def longest_groups_first(items: Sequence[Item], group: Callable[[Item], str],
                         cost: Callable[[Item], float]) -> list[Item]:
    """The items with the costliest groups first; a group's items together and in their order,
    groups of equal cost in the order they were collected."""
    total: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        name = group(item)
        total[name] = total.get(name, 0.0) + cost(item)
        first_seen.setdefault(name, index)
    order = sorted(range(len(items)), key=lambda index: (
        -total[group(items[index])], first_seen[group(items[index])], index))
    return [items[index] for index in order]
