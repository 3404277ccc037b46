"""tf.Transform's inspection of the preprocessing_fn traced once per Transform, not four times.

TFX's Transform executor asks tf.Transform which input columns the preprocessing_fn reads three
times per execution (`get_analyze_input_columns` before choosing its path and again in
`_RunBeamImpl`, then `get_transform_input_columns`), then which analysis cache entries it
would use (`get_analysis_cache_entry_keys`, in `_OptimizeRun`, also with the cache disabled),
and each call traces the preprocessing_fn into a new graph: ~0.45 s a trace on taxi's 19
columns, profiled (pyinstrument). The answers depend only on the function and the input specs.
Within the block the two column questions are answered together from one trace per
(preprocessing_fn, specs, TF1 mode), as often as they are asked: both only read the graph. The
cache-entry question then gets that same trace, once: it clears the graph's collection of
analyzer outputs, so it comes after every column answer is known, and asked first it traces
for itself as before. The trace Beam's analysis makes for the transform graph it saves is not
touched.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from pipeline.runners.module_attribute import replaced

_TFT = "tensorflow_transform"
_IMPL_HELPER = "tensorflow_transform.impl_helper"
_BUILDER = "tensorflow_transform.beam.analysis_graph_builder"


@contextlib.contextmanager
def inspected_once() -> Iterator[None]:
    try:
        from tensorflow_transform import impl_helper, inspect_preprocessing_fn
        from tensorflow_transform.beam import analysis_graph_builder
    except ImportError:  # a task whose stage blocks the library (stage_imports.py)
        yield
        return
    # key -> (preprocessing_fn, analyze columns, transform columns, [the trace, until used])
    answers: dict[tuple, tuple[Any, list[str], list[str], list]] = {}
    analyze = inspect_preprocessing_fn.get_analyze_input_columns
    transform = inspect_preprocessing_fn.get_transform_input_columns
    cache_entry_keys = analysis_graph_builder.get_analysis_cache_entry_keys
    trace = impl_helper.trace_preprocessing_function

    def key_of(preprocessing_fn: Callable, specs, force_tf_compat_v1: bool) -> tuple:
        # A spec's repr names its type, shape, dtype and default (FixedLenFeature's shape is a
        # list, so the specs themselves do not all hash).
        return id(preprocessing_fn), repr(sorted(specs.items())), bool(force_tf_compat_v1)

    def columns(preprocessing_fn: Callable, specs, force_tf_compat_v1: bool) -> tuple:
        key = key_of(preprocessing_fn, specs, force_tf_compat_v1)
        if key not in answers:
            traced: list = []

            def trace_once(*args, **kwargs):
                if not traced:
                    traced.append(trace(*args, **kwargs))
                return traced[0]

            with replaced(_IMPL_HELPER, "trace_preprocessing_function", trace_once):
                answers[key] = (preprocessing_fn,  # kept alive: its id stays its own
                                analyze(preprocessing_fn, specs, force_tf_compat_v1),
                                transform(preprocessing_fn, specs, force_tf_compat_v1),
                                traced)
        return answers[key]

    def get_analysis_cache_entry_keys(preprocessing_fn, specs, dataset_keys,
                                      force_tf_compat_v1):
        found = answers.get(key_of(preprocessing_fn, specs, force_tf_compat_v1))
        if not found or not found[3]:
            return cache_entry_keys(preprocessing_fn, specs, dataset_keys, force_tf_compat_v1)
        graph_and_structures = found[3].pop()  # its one use: it changes the graph
        with replaced(_IMPL_HELPER, "trace_preprocessing_function",
                      lambda *args, **kwargs: graph_and_structures):
            return cache_entry_keys(preprocessing_fn, specs, dataset_keys, force_tf_compat_v1)

    def get_analyze_input_columns(preprocessing_fn, specs, force_tf_compat_v1=False):
        return list(columns(preprocessing_fn, specs, force_tf_compat_v1)[1])

    def get_transform_input_columns(preprocessing_fn, specs, force_tf_compat_v1=False):
        return list(columns(preprocessing_fn, specs, force_tf_compat_v1)[2])

    with replaced(_TFT, "get_analyze_input_columns", get_analyze_input_columns), \
            replaced(_TFT, "get_transform_input_columns", get_transform_input_columns), \
            replaced(_BUILDER, "get_analysis_cache_entry_keys", get_analysis_cache_entry_keys):
        yield
