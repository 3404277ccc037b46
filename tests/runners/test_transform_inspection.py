"""pipeline/runners/transform_inspection.py: within the block, TFX's three questions about the
preprocessing_fn's input columns are answered from one trace, with tf.Transform's own answers."""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import impl_helper

from pipeline.runners.transform_inspection import inspected_once

SPECS = {"fare": tf.io.FixedLenFeature([], tf.float32),
         "tips": tf.io.FixedLenFeature([], tf.float32),
         "company": tf.io.FixedLenFeature([], tf.string)}


def preprocessing_fn(inputs):
    # fare goes through an analyzer; tips is only transformed; company is not read at all
    return {"fare_z": tft.scale_to_z_score(inputs["fare"]), "tips_x2": inputs["tips"] * 2.0}


def _ask(specs=SPECS) -> tuple[list[str], list[str], list[str]]:
    """The three calls of TFX's Transform executor, in its order."""
    return (sorted(tft.get_analyze_input_columns(preprocessing_fn, specs, force_tf_compat_v1=True)),
            sorted(tft.get_analyze_input_columns(preprocessing_fn, specs, force_tf_compat_v1=True)),
            sorted(tft.get_transform_input_columns(preprocessing_fn, specs,
                                                   force_tf_compat_v1=True)))


def _counting_traces(monkeypatch) -> list:
    traces = []
    original = impl_helper.trace_preprocessing_function

    def counted(*args, **kwargs):
        traces.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(impl_helper, "trace_preprocessing_function", counted)
    return traces


def test_the_three_inspections_share_one_trace_and_give_tfts_answers(monkeypatch):
    traces = _counting_traces(monkeypatch)
    expected = _ask()
    assert expected == (["fare"], ["fare"], ["fare", "tips"])
    assert len(traces) == 3  # tf.Transform alone: one trace per question

    traces.clear()
    with inspected_once():
        assert _ask() == expected
        assert _ask() == expected  # asked again in the same run: no new trace
    assert len(traces) == 1


def test_other_input_specs_are_traced_on_their_own(monkeypatch):
    traces = _counting_traces(monkeypatch)
    fewer = {k: v for k, v in SPECS.items() if k != "company"}
    with inspected_once():
        _ask()
        assert _ask(fewer) == (["fare"], ["fare"], ["fare", "tips"])
    assert len(traces) == 2


def test_tfts_functions_are_back_after_the_block():
    before = (tft.get_analyze_input_columns, tft.get_transform_input_columns,
              impl_helper.trace_preprocessing_function)
    with inspected_once():
        assert tft.get_analyze_input_columns is not before[0]
    assert (tft.get_analyze_input_columns, tft.get_transform_input_columns,
            impl_helper.trace_preprocessing_function) == before


def _cache_keys():
    from tensorflow_transform.beam import analysis_graph_builder, analyzer_cache

    return analysis_graph_builder.get_analysis_cache_entry_keys(
        preprocessing_fn, SPECS, [analyzer_cache.DatasetKey("train")], True)


def test_the_cache_entry_question_then_takes_the_same_trace_once(monkeypatch):
    traces = _counting_traces(monkeypatch)
    expected = _cache_keys()
    assert expected  # the z-score's analyzer has a cache entry
    traces.clear()
    with inspected_once():
        columns = _ask()
        assert _cache_keys() == expected  # the trace the columns were read from
        assert _cache_keys() == expected  # that trace is spent (the question clears a
        assert _ask() == columns          # collection of it): a second one traces anew
    assert len(traces) == 2


def test_the_cache_entry_question_asked_first_traces_for_itself(monkeypatch):
    """It clears the graph's analyzer outputs, so it must not hand a trace to the columns."""
    expected = _ask()
    traces = _counting_traces(monkeypatch)
    with inspected_once():
        _cache_keys()
        assert _ask() == expected
    assert len(traces) == 2
