"""pipeline/runners/beam_dofn_specs.py: Beam's state-and-timer question gets Beam's answer, with
each method's parameters read once per function."""
from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.coders import VarIntCoder
from apache_beam.runners import common
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate
from apache_beam.transforms.timeutil import TimeDomain

from pipeline.runners import beam_dofn_specs

BEAMS = userstate.get_dofn_specs


class _Counting(beam.DoFn):
    """Stateful: a bag of values per key and a timer that flushes the sum."""
    TOTAL = userstate.BagStateSpec("total", VarIntCoder())
    FLUSH = userstate.TimerSpec("flush", TimeDomain.WATERMARK)

    def process(self, element, total=beam.DoFn.StateParam(TOTAL),
                flush=beam.DoFn.TimerParam(FLUSH),
                window=beam.DoFn.WindowParam):
        total.add(element[1])
        flush.set(window.end)

    @userstate.on_timer(FLUSH)
    def flushed(self, total=beam.DoFn.StateParam(TOTAL)):
        yield sum(total.read())


class _Plain(beam.DoFn):
    def process(self, element):
        yield element


class _Duplicated(beam.DoFn):
    def process(self, element, a=beam.DoFn.WindowParam, b=beam.DoFn.WindowParam):
        yield element


class _Holding(beam.DoFn):
    """An instance attribute that is another DoFn's bound method: Beam inspects it too."""
    def __init__(self):
        self.borrowed = _Counting().process


def _dofns():
    return [_Counting(), _Plain(), _Holding(), beam.Map(len).fn,
            beam.Map(_Counting().process).fn]


@pytest.mark.parametrize("dofn", _dofns(), ids=lambda d: type(d).__name__)
def test_each_dofn_gets_beams_answer_every_time(dofn):
    for _ in range(3):
        assert beam_dofn_specs.get_dofn_specs(dofn) == BEAMS(dofn)


def test_a_methods_parameters_are_read_once_per_function(monkeypatch):
    wrapped = []

    class Counted(common.MethodWrapper):
        def __init__(self, dofn, name):
            wrapped.append(name)
            super().__init__(dofn, name)

    monkeypatch.setattr(common, "MethodWrapper", Counted)

    class Fresh(_Counting):  # new functions: nothing read for them yet
        def process(self, element, total=beam.DoFn.StateParam(_Counting.TOTAL),
                    flush=beam.DoFn.TimerParam(_Counting.FLUSH)):
            total.add(element[1])

    first = beam_dofn_specs.get_dofn_specs(Fresh())
    assert "process" in wrapped
    wrapped.clear()
    assert beam_dofn_specs.get_dofn_specs(Fresh()) == first
    assert "process" not in wrapped
    assert first == ({_Counting.TOTAL}, {_Counting.FLUSH})


def test_a_malformed_dofn_is_refused_as_beam_refuses_it():
    dofn = _Duplicated()
    with pytest.raises(ValueError, match="duplicate process method parameters") as beams:
        BEAMS(dofn)
    for _ in range(2):
        with pytest.raises(ValueError) as ours:
            beam_dofn_specs.get_dofn_specs(dofn)
        assert str(ours.value) == str(beams.value)


@pytest.mark.e2e  # runs a Beam pipeline
def test_inside_the_block_beam_runs_a_stateful_dofn_with_its_state_and_timer():
    with beam_dofn_specs.dofn_specs_read_once():
        assert userstate.get_dofn_specs is beam_dofn_specs.get_dofn_specs
        with beam.Pipeline("DirectRunner") as pipeline:
            sums = (pipeline | beam.Create([("a", 1), ("a", 2), ("b", 5)])
                    | beam.ParDo(_Counting()))
            assert_that(sums, equal_to([3, 5]))
    assert userstate.get_dofn_specs is BEAMS
