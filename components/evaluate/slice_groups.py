"""Rows grouped by slice, in place of TFMA's per-example split.

TFMA's default extractors end by splitting every batch into one extract per example
(UnbatchExtractor) and computing each example's slice keys from its features
(SliceKeyExtractor); its evaluator then fans each example out to its slices and runs every
metric combiner on it. Here a batch is split instead into one extract per distinct combination
of the slicing columns' values: rows with the same values fall in the same slices, so TFMA's
own slice-key function runs once per combination, on one of its rows, and the combiners
(components/evaluate/row_batch_combiners.py) get the labels, predictions and weights of all its rows as
arrays. With the overall slice alone, a batch is one group.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.extractors import slice_key_extractor
from tensorflow_model_analysis.slicer import slicer_lib

# The stage takes the place of TFMA's slice key extractor, under its name: TFMA's evaluator
# checks that it runs after a stage of that name.
GROUP_STAGE_NAME = slice_key_extractor.SLICE_KEY_EXTRACTOR_STAGE_NAME
# What the metric combiners read of each row; the rest of the batch is left behind.
_ROW_KEYS = (constants.LABELS_KEY, constants.PREDICTIONS_KEY, constants.EXAMPLE_WEIGHTS_KEY)
_FEATURE_KEYS = (constants.FEATURES_KEY, constants.TRANSFORMED_FEATURES_KEY)


def take(value: Any, index) -> Any:
    """The rows `index` of a batched value: an array, a list or a dict of them (TFMA keys
    predictions and labels by model and output name)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: take(v, index) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value[index]
    return [value[i] for i in index]


def _hashable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, np.ndarray):
        # Object arrays (strings) hold pointers: their values, not their bytes.
        values = tuple(value.ravel().tolist()) if value.dtype == object else value.tobytes()
        return (value.dtype.str, value.shape, values)
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value


def _only(columns: Any, names: set[str]) -> Any:
    """The named columns of a features dict (keyed by model name first when several models are
    evaluated)."""
    if not isinstance(columns, Mapping):
        return None
    kept = {}
    for name, value in columns.items():
        if isinstance(value, Mapping):
            nested = _only(value, names)
            if nested:
                kept[name] = nested
        elif name in names:
            kept[name] = value
    return kept


def row_count(batch: dict) -> int:
    return tfma.utils.util.batch_size({k: batch.get(k) for k in _ROW_KEYS if k in batch})


def group_rows(batch: dict, slice_specs: list, slicing_columns: set[str],
               slice_keys_fn: slice_key_extractor.ExtractSliceKeysFn) -> list[dict]:
    """One extract per group of rows sharing their slicing columns' values: the group's labels,
    predictions and example weights, and the slice keys TFMA computes for any of its rows."""
    n = row_count(batch)
    if not n:
        return []
    slicing = {key: _only(batch.get(key), slicing_columns) for key in _FEATURE_KEYS}
    slicing = {key: value for key, value in slicing.items() if value}
    groups: dict[Any, list[int]] = {}
    firsts: list[dict] = []
    if slicing:
        # TFMA's own split of the slicing columns (it densifies ragged and sparse values).
        for i, row in enumerate(tfma.utils.util.split_extracts(slicing)):
            rows = groups.setdefault(_hashable(row), [])
            if not rows:
                firsts.append(row)
            rows.append(i)
    else:
        groups[()] = list(range(n))
        firsts.append({})
    extracts = []
    for first, rows in zip(firsts, groups.values()):
        keys = slice_keys_fn.process(first, slice_specs)[0][constants.SLICE_KEY_TYPES_KEY]
        whole = len(rows) == n
        extract = {key: batch[key] if whole else take(batch[key], np.asarray(rows))
                   for key in _ROW_KEYS if key in batch}
        extract[constants.SLICE_KEY_TYPES_KEY] = keys
        extracts.append(extract)
    return extracts


def _slicing_protos(eval_config: tfma.EvalConfig) -> list[tfma.SlicingSpec]:
    """Every slicing spec of the config, those of its cross slices included."""
    protos = list(eval_config.slicing_specs)
    for cross in eval_config.cross_slicing_specs:
        protos += [cross.baseline_spec, *cross.slicing_specs]
    return protos


def slice_specs(eval_config: tfma.EvalConfig) -> list:
    """The slices TFMA's SliceKeyExtractor computes for this config (cross slices included)."""
    specs: list = []
    for spec in _slicing_protos(eval_config):
        single = slicer_lib.SingleSliceSpec(spec=spec)
        if single not in specs:
            specs.append(single)
    return specs or [slicer_lib.SingleSliceSpec()]


def slicing_columns(eval_config: tfma.EvalConfig) -> set[str]:
    """Every column a slicing spec of the config reads."""
    columns: set[str] = set()
    for spec in _slicing_protos(eval_config):
        columns.update(spec.feature_keys)
        columns.update(spec.feature_values)
    return columns


class _GroupRowsFn(beam.DoFn):
    def __init__(self, eval_config: tfma.EvalConfig):
        self._eval_config = eval_config
        self._slice_specs = slice_specs(eval_config)
        self._slicing_columns = slicing_columns(eval_config)
        self._slice_keys_fn = None

    def setup(self):
        # TFMA's slice-key function, built once per worker.
        self._slice_keys_fn = slice_key_extractor.ExtractSliceKeysFn(self._eval_config,
                                                                     materialize=False)

    def process(self, batch: dict) -> list[dict]:
        return group_rows(batch, self._slice_specs, self._slicing_columns, self._slice_keys_fn)


def GroupRowsBySlice(eval_config: tfma.EvalConfig) -> tfma.extractors.Extractor:  # noqa: N802
    """TFMA's extractor style: the stage that ends the Evaluator's extractors."""
    return tfma.extractors.Extractor(stage_name=GROUP_STAGE_NAME,
                                     ptransform=beam.ParDo(_GroupRowsFn(eval_config)))
