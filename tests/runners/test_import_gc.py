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


def _alive_cycle() -> tuple[list, weakref.ref]:
    """A cycle kept alive by the returned holder; a weak reference to it."""
    node = _Node()
    node.other = _Node()
    node.other.other = node
    return [node], weakref.ref(node)


def test_what_lives_at_the_freeze_is_left_by_full_passes_until_the_run_ends():
    gc.collect()
    holder, cycle = _alive_cycle()
    with import_gc.frozen():
        assert gc.get_freeze_count() > 0
        holder.clear()  # garbage now, but frozen: a full pass inside the run leaves it
        gc.collect()
        assert cycle() is not None
        made_inside = _cycles(10)  # what the run makes is collected as usual
        gc.collect()
        assert made_inside() is None
    assert gc.get_freeze_count() == 0
    gc.collect()  # after the run, a process that runs pipelines in turn frees it
    assert cycle() is None


def test_a_freeze_inside_a_frozen_block_leaves_the_ending_to_the_outer_one():
    with import_gc.frozen():
        with import_gc.frozen():
            pass
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_a_run_is_frozen_from_its_build_on_and_thawed_when_it_ends_even_by_an_error(tmp_path):
    """local_dag._run: the tracking fork (on_built) and the stages see the freeze; a run that
    fails (here a pipeline without pipeline_info, at the reporter) ends it too."""
    from pipeline.config.settings import Settings
    from pipeline.runners import local_dag

    seen = []
    settings = Settings(dataset="penguins", output_root=tmp_path)
    with open(tmp_path / "out.txt", "w") as out, pytest.raises(AttributeError):
        local_dag._run(object, settings, out, "run-1",
                       on_built=lambda: seen.append(gc.get_freeze_count()))
    assert seen and seen[0] > 0
    assert gc.get_freeze_count() == 0
