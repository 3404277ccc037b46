"""pipeline/runners/beam_pickling.py: cloudpickle's submodule search answered from a listing made
once per package (until modules are imported), with cloudpickle's own answers."""
from __future__ import annotations

import importlib
import sys

import cloudpickle
import pytest
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
    from apache_beam.internal import cloudpickle_pickler as pickler  # the runs' pickler

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
    from apache_beam.internal import cloudpickle_pickler as pickler  # the runs' pickler

    from pipeline.runners.beam_pickling import compressed_once

    work = _uses_submodules()
    outside = pickler.dumps(work)
    with compressed_once():
        inside = [pickler.dumps(work), pickler.dumps(work)]
        again = pickler.loads(inside[0])
    assert inside == [outside, outside]
    assert again() == work()


def _raw_codec(counting, raw_max=None):
    from pipeline.runners.beam_pickling import RAW_MAX_BYTES, _Bz2Once, _RawInProcess

    return _RawInProcess(_Bz2Once(counting), RAW_MAX_BYTES if raw_max is None else raw_max)


def test_pickles_that_stay_in_the_process_are_not_compressed_and_read_back():
    import base64

    from apache_beam.internal import cloudpickle_pickler as pickler  # the runs' pickler

    from pipeline.runners.beam_pickling import RAW_MARK, compressed_once

    work = _uses_submodules()
    made_outside = pickler.dumps(work)  # bz2, as Beam makes it
    with compressed_once(in_process=True):
        inside = pickler.dumps(work)
        again = pickler.loads(inside)
        from_outside = pickler.loads(made_outside)
    assert base64.b64decode(inside).startswith(RAW_MARK)
    assert again() == work() == from_outside()


def test_an_uncompressed_pickle_that_leaves_the_block_is_refused_not_misread():
    from apache_beam.internal import cloudpickle_pickler as pickler  # the runs' pickler

    from pipeline.runners.beam_pickling import compressed_once

    with compressed_once(in_process=True):
        inside = pickler.dumps(_uses_submodules())
    with pytest.raises(OSError, match="Invalid data stream"):
        pickler.loads(inside)


def test_no_bz2_for_pickles_in_the_process_but_for_one_over_the_size_bound():
    import bz2

    counting = _CountingBz2()
    codec = _raw_codec(counting, raw_max=1000)
    small, large = b"a DoFn" * 10, b"a large DoFn" * 100
    assert codec.decompress(codec.compress(small)) == small
    assert counting.calls == []
    packed = codec.compress(large)
    assert packed == bz2.compress(large, 9)
    assert codec.decompress(packed) == large
    assert codec.decompress(bz2.compress(small, 9)) == small  # a bz2 pickle made elsewhere
    assert counting.calls == ["compress", "decompress", "decompress"]


def test_only_the_direct_runners_in_process_modes_leave_pickles_uncompressed(tmp_path):
    from pipeline.config.settings import Settings
    from pipeline.runners.beam_in_process import _pickles_stay_here

    base = Settings(dataset="penguins", output_root=tmp_path)
    assert _pickles_stay_here(base.replace(beam_mode="in_memory"))
    assert _pickles_stay_here(base.replace(beam_mode="multi_threading"))
    assert not _pickles_stay_here(base.replace(beam_mode="multi_processing"))
    assert not _pickles_stay_here(base.replace(
        beam_runner="FlinkRunner", beam_master="localhost:8081", beam_environment="external"))
    # Beam reads the last of an argument given twice: a --beam-arg choosing the mode wins.
    assert not _pickles_stay_here(base.replace(
        beam_mode="in_memory", beam_args=("--direct_running_mode=multi_processing",)))


@pytest.mark.e2e
def test_a_multi_processing_pipeline_in_the_block_ships_pickles_its_workers_read(tmp_path):
    """The workers are other processes, with Beam's own loads: uncompressed pickles would fail
    them (~5 s: a worker process starts)."""
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.config.settings import Settings
    from pipeline.runners.beam_in_process import levers_for_beam

    settings = Settings(dataset="penguins", output_root=tmp_path, beam_mode="multi_processing",
                        beam_workers=1)
    offset = 10
    with levers_for_beam(settings):
        with beam.Pipeline(argv=settings.beam_pipeline_args()) as p:
            out = p | beam.Create([1, 2, 3]) | beam.Map(lambda x: x + offset)
            assert_that(out, equal_to([11, 12, 13]))
