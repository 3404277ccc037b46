"""The collector kept out of the set-up's imports (pipeline/runners/import_gc.py)."""
from __future__ import annotations

import gc
import weakref

import pytest

from pipeline.runners import import_gc


class _Node:
    pass


def _cycles(count: int) -> weakref.ref:
    """`count` objects in cycles, unreachable once made; a weak reference to one of them."""
    first = None
    for _ in range(count // 2):
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        first = first or a
    return weakref.ref(first)


@pytest.fixture
def full_collections():
    seen = []

    def record(phase, info):
        if phase == "start" and info["generation"] == 2:
            seen.append(info)

    gc.collect()
    gc.callbacks.append(record)
    yield seen
    gc.callbacks.remove(record)


def test_a_block_that_makes_many_objects_runs_without_the_collector_then_frees_its_cycles(
        full_collections):
    with import_gc.collected_once():
        assert not gc.isenabled()
        garbage = _cycles(import_gc.COLLECT_ABOVE + 10_000)
        assert garbage() is not None  # nothing collected them inside the block
    assert gc.isenabled()
    assert garbage() is None  # the one full collection at its end did
    assert len(full_collections) == 1


def test_a_block_that_makes_few_objects_is_left_to_the_collector(full_collections):
    with import_gc.collected_once():
        _cycles(1_000)
    assert gc.isenabled() and full_collections == []


def test_an_exception_turns_the_collector_back_on_without_a_collection(full_collections):
    with pytest.raises(ValueError), import_gc.collected_once():
        _cycles(import_gc.COLLECT_ABOVE + 10_000)
        raise ValueError("the build failed")
    assert gc.isenabled() and full_collections == []


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    try:
        with import_gc.collected_once():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
