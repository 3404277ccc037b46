"""pipeline/runners/beam_state_cache.py: Beam's state cache weighs values as before, without
scanning every loaded module, and only within the block."""
from __future__ import annotations

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.runners.worker import statecache
from apache_beam.testing.util import assert_that, equal_to

from pipeline.runners import beam_state_cache

VALUES = [
    [np.zeros(1000), b"x" * 500],
    {"a": np.arange(10), "b": [1.0, 2.0]},
    (b"abc", "text" * 30, 7),
    np.ones((100, 20), np.float32),
    ["a", "b", "c"] * 50,
]


def test_values_weigh_what_beams_weighing_gives_them():
    assert [beam_state_cache._weigh(v) for v in VALUES] == [  # noqa: SLF001
        statecache.get_deep_size(v) for v in VALUES]


def test_beams_function_is_replaced_only_within_the_block():
    original = statecache.get_deep_size
    with beam_state_cache.weighing_without_module_scan():
        assert statecache.get_deep_size is not original
        assert statecache.get_deep_size(VALUES[0]) == original(VALUES[0])
    assert statecache.get_deep_size is original


@pytest.mark.e2e  # runs a Beam pipeline
def test_a_direct_runner_pipeline_with_side_inputs_caches_them_weighed_by_it():
    """The in-process worker caches the side input, weighed by the replacement (counted)."""
    weighed = []
    with beam_state_cache.weighing_without_module_scan():
        replacement = statecache.get_deep_size

        def counting(*objs):
            weighed.append(len(objs))
            return replacement(*objs)

        statecache.get_deep_size = counting
        options = beam.options.pipeline_options.PipelineOptions(
            runner="DirectRunner", direct_running_mode="in_memory")
        with beam.Pipeline(options=options) as p:
            side = p | "side" >> beam.Create([10, 20])
            out = (p | beam.Create([1, 2, 3])
                   | beam.Map(lambda x, s: x + sum(s), s=beam.pvalue.AsList(side)))
            assert_that(out, equal_to([31, 32, 33]))
    assert weighed
