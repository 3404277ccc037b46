"""pipeline/runners/beam_state_sampler.py: the bundles Beam's in-process worker runs within the
block are sampled at PERIOD_MS, so ending one waits at most that; outside, Beam's default."""
from __future__ import annotations

import time

import apache_beam as beam
import pytest
from apache_beam.runners.worker import statesampler
from apache_beam.testing.util import assert_that, equal_to

from pipeline.runners import beam_state_sampler


class _Period(beam.DoFn):
    """Each element's bundle's sampler period (the bundle's StateSampler is the thread's
    current tracker while it runs)."""

    def process(self, element):
        yield statesampler.get_current_tracker().sampling_period_ms


def _bundles_sample_at(period_ms: int) -> None:
    options = beam.options.pipeline_options.PipelineOptions(
        flags=[], runner="DirectRunner", direct_running_mode="in_memory")
    with beam.Pipeline(options=options) as p:
        periods = p | beam.Create([1, 2]) | beam.ParDo(_Period())
        assert_that(periods, equal_to([period_ms, period_ms]))


@pytest.mark.e2e  # runs a Beam pipeline
def test_bundles_in_the_block_sample_at_the_short_period_and_beams_default_outside():
    _bundles_sample_at(statesampler.DEFAULT_SAMPLING_PERIOD_MS)
    original = statesampler.StateSampler
    with beam_state_sampler.prompt_state_sampler():
        _bundles_sample_at(beam_state_sampler.PERIOD_MS)
    assert statesampler.StateSampler is original
    _bundles_sample_at(statesampler.DEFAULT_SAMPLING_PERIOD_MS)


def test_a_sampler_of_the_block_stops_within_its_period_and_still_counts_time():
    """The wait the lever removes: stopping a sampler that has run for a second waits out its
    current sleep (up to 200 ms at Beam's period, at most PERIOD_MS here). Its time is still
    attributed to the state it was in."""
    from apache_beam.utils.counters import CounterFactory, CounterName

    def stop_wait(sampler_class) -> tuple[float, int]:
        sampler = sampler_class("stage", CounterFactory())
        state = sampler.scoped_state(CounterName("work", step_name="step"), "process")
        sampler.start()
        with state:
            time.sleep(1.0)
        started = time.perf_counter()
        sampler.stop()
        return time.perf_counter() - started, state.sampled_msecs_int()

    with beam_state_sampler.prompt_state_sampler():
        waited, counted = stop_wait(statesampler.StateSampler)
    assert waited < 0.1 and counted >= 900, (waited, counted)


@pytest.mark.e2e  # runs a Beam pipeline
def test_the_pipeline_still_computes_what_it_did():
    options = beam.options.pipeline_options.PipelineOptions(
        flags=[], runner="DirectRunner", direct_running_mode="in_memory")
    with beam_state_sampler.prompt_state_sampler(), beam.Pipeline(options=options) as p:
        out = (p | beam.Create(range(10)) | beam.Map(lambda x: (x % 2, x))
               | beam.CombinePerKey(sum))
        assert_that(out, equal_to([(0, 20), (1, 25)]))
