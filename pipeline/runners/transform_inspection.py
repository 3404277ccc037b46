"""tf.Transform's inspection of the preprocessing_fn traced once per Transform, not three times.

TFX's Transform executor asks tf.Transform which input columns the preprocessing_fn reads three
times per execution (`get_analyze_input_columns` before choosing its path and again in
`_RunBeamImpl`, then `get_transform_input_columns`), and each call traces the preprocessing_fn
into a new graph: ~0.45 s a trace on taxi's 19 columns, profiled (pyinstrument). The answers
depend only on the function and the input specs, and both inspections only read the graph, so
within the block the three answers come from one trace per (preprocessing_fn, specs, TF1
mode). The traces Beam's analysis makes for itself are not touched: only the inspections share
theirs.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from pipeline.runners.module_attribute import replaced

_TFT = "tensorflow_transform"


@contextlib.contextmanager
def inspected_once() -> Iterator[None]:
    try:
        from tensorflow_transform import impl_helper, inspect_preprocessing_fn
    except ImportError:  # a task whose stage blocks the library (stage_imports.py)
        yield
        return
    answers: dict[tuple, tuple[Any, list[str], list[str]]] = {}
    analyze = inspect_preprocessing_fn.get_analyze_input_columns
    transform = inspect_preprocessing_fn.get_transform_input_columns
    trace = impl_helper.trace_preprocessing_function

    def columns(preprocessing_fn: Callable, specs, force_tf_compat_v1: bool) -> tuple:
        # A spec's repr names its type, shape, dtype and default (FixedLenFeature's shape is a
        # list, so the specs themselves do not all hash).
        key = (id(preprocessing_fn), repr(sorted(specs.items())), bool(force_tf_compat_v1))
        if key not in answers:
            traced: list = []

            def trace_once(*args, **kwargs):
                if not traced:
                    traced.append(trace(*args, **kwargs))
                return traced[0]

            with replaced("tensorflow_transform.impl_helper", "trace_preprocessing_function",
                          trace_once):
                answers[key] = (preprocessing_fn,  # kept alive: its id stays its own
                                analyze(preprocessing_fn, specs, force_tf_compat_v1),
                                transform(preprocessing_fn, specs, force_tf_compat_v1))
        return answers[key]

    def get_analyze_input_columns(preprocessing_fn, specs, force_tf_compat_v1=False):
        return list(columns(preprocessing_fn, specs, force_tf_compat_v1)[1])

    def get_transform_input_columns(preprocessing_fn, specs, force_tf_compat_v1=False):
        return list(columns(preprocessing_fn, specs, force_tf_compat_v1)[2])

    with replaced(_TFT, "get_analyze_input_columns", get_analyze_input_columns), \
            replaced(_TFT, "get_transform_input_columns", get_transform_input_columns):
        yield
