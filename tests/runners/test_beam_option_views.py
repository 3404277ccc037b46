"""pipeline/runners/beam_option_views.py: a PipelineOptions view is made once per options object
and class, behaves as Beam's own views (values shared across views, set through any of them),
and only within the block. No pipeline beyond a three-element DirectRunner one: ~2 s."""
from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    StandardOptions,
    TypeOptions,
)
from apache_beam.testing.util import assert_that, equal_to

from pipeline.runners import beam_option_views


def test_the_same_view_serves_again_and_shares_values_as_beams_views_do():
    options = PipelineOptions(["--runner=DirectRunner", "--direct_num_workers=3"])
    with beam_option_views.views_made_once():
        standard = options.view_as(StandardOptions)
        assert options.view_as(StandardOptions) is standard
        assert options.view_as(DirectOptions) is not standard
        assert standard.runner == "DirectRunner"
        assert options.view_as(DirectOptions).direct_num_workers == 3
        standard.streaming = True  # set through one view: seen through the others
        assert options.view_as(StandardOptions).streaming is True
        assert options.view_as(DirectOptions).view_as(StandardOptions).streaming is True
        other = PipelineOptions(["--runner=FlinkRunner"])  # views are per options object
        assert other.view_as(StandardOptions).runner == "FlinkRunner"
        assert other.view_as(StandardOptions).streaming is False


def test_a_view_is_made_again_when_the_options_values_were_replaced():
    options = PipelineOptions(["--runner=DirectRunner"])
    with beam_option_views.views_made_once():
        first = options.view_as(StandardOptions)
        options._all_options = {}  # noqa: SLF001 - Beam never does; the view must follow
        again = options.view_as(StandardOptions)
        assert again is not first and again.runner == "DirectRunner"


def test_beams_method_is_replaced_only_within_the_block():
    original = PipelineOptions.__dict__["view_as"]
    with beam_option_views.views_made_once():
        assert PipelineOptions.__dict__["view_as"] is not original
    assert PipelineOptions.__dict__["view_as"] is original
    options = PipelineOptions([])
    assert options.view_as(TypeOptions) is not options.view_as(TypeOptions)


@pytest.mark.e2e  # runs a Beam pipeline
def test_a_pipeline_runs_with_the_views_made_once():
    with beam_option_views.views_made_once():
        options = PipelineOptions(runner="DirectRunner", direct_running_mode="in_memory")
        with beam.Pipeline(options=options) as p:
            assert_that(p | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * 2),
                        equal_to([2, 4, 6]))
