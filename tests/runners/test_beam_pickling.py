"""pipeline/runners/beam_pickling.py: cloudpickle's submodule search answered from a listing made
once per package (until modules are imported), with cloudpickle's own answers."""
from __future__ import annotations

import importlib
import sys

import cloudpickle
from cloudpickle import cloudpickle_fast

from pipeline.runners.beam_pickling import submodules_listed_once


def _uses_submodules():
    import concurrent.futures  # noqa: F401 - the function reaches it as concurrent.futures
    import os.path  # noqa: F401

    def work():
        return concurrent.futures.ThreadPoolExecutor, os.path.join, sys.version

    return work


def _answer(function) -> list:
    from cloudpickle.cloudpickle import _extract_code_globals

    code = function.__code__
    dependencies = [function.__globals__.get(name) for name in _extract_code_globals(code)]
    dependencies += [c.cell_contents for c in function.__closure__ or ()]
    return cloudpickle_fast._find_imported_submodules(code, dependencies)


def test_the_same_submodules_as_cloudpickle_finds():
    functions = [_uses_submodules(), cloudpickle.dumps, importlib.import_module]
    expected = [_answer(f) for f in functions]
    assert {m.__name__ for m in expected[0]} >= {"concurrent.futures"}
    with submodules_listed_once():
        assert cloudpickle_fast._find_imported_submodules is not \
            importlib.import_module("cloudpickle.cloudpickle")._find_imported_submodules
        assert [_answer(f) for f in functions] == expected
        assert [_answer(f) for f in functions] == expected  # from the listing


def test_a_submodule_imported_after_a_first_search_is_found(monkeypatch):
    """The listing is made again once sys.modules has grown."""
    import json

    monkeypatch.delitem(sys.modules, "json.tool", raising=False)

    def uses_json_tool():
        return json.tool.main

    with submodules_listed_once():
        before = cloudpickle_fast._find_imported_submodules(uses_json_tool.__code__, [json])
        importlib.import_module("json.tool")
        after = cloudpickle_fast._find_imported_submodules(uses_json_tool.__code__, [json])
    assert [m.__name__ for m in before] == []
    assert [m.__name__ for m in after] == ["json.tool"]


def test_beams_pickler_round_trips_a_function_in_the_block():
    from apache_beam.internal import pickler

    work = _uses_submodules()
    with submodules_listed_once():
        again = pickler.loads(pickler.dumps(work))
    assert again() == work()


class _CountingBz2:
    def __init__(self):
        import bz2

        self.bz2, self.calls = bz2, []

    def compress(self, data, compresslevel=9):
        self.calls.append("compress")
        return self.bz2.compress(data, compresslevel)

    def decompress(self, data):
        self.calls.append("decompress")
        return self.bz2.decompress(data)


def test_bz2s_answers_once_per_payload_and_the_same_as_bz2s():
    import bz2

    from pipeline.runners.beam_pickling import _Bz2Once

    counting = _CountingBz2()
    once = _Bz2Once(counting)
    payloads = [b"a DoFn's pickle" * 100, b"another" * 50]
    for _ in range(3):
        for payload in payloads:
            packed = once.compress(payload, compresslevel=9)
            assert packed == bz2.compress(payload, 9)
            assert once.decompress(packed) == payload
    assert counting.calls == ["compress", "decompress"] * 2


def test_past_its_limit_bz2_is_asked_each_time():
    from pipeline.runners.beam_pickling import _Bz2Once

    counting = _CountingBz2()
    once = _Bz2Once(counting, limit=10)
    for _ in range(2):
        assert once.decompress(once.compress(b"x" * 100)) == b"x" * 100
    assert counting.calls == ["compress", "decompress"] * 2


def test_beams_pickles_are_the_same_bytes_in_the_block():
    from apache_beam.internal import pickler

    from pipeline.runners.beam_pickling import compressed_once

    work = _uses_submodules()
    outside = pickler.dumps(work)
    with compressed_once():
        inside = [pickler.dumps(work), pickler.dumps(work)]
        again = pickler.loads(inside[0])
    assert inside == [outside, outside]
    assert again() == work()
