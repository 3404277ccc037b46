"""TFX's StatisticsGen with an executor that reads the examples a file at a time in batches.

TFX's executor reads through tfx_bsl's TFExampleRecord: every example is one Beam element until
it is batched, and each batch is decoded by tfx_bsl's decoder. Both cost more than the
statistics: at 150k taxi rows ~2.2 s of decoding and ~1.5 s of per-element Beam work against
~0.5 s of TFDV's generators. Here each file is one Beam element, read with tf.data in batches
of BATCH_ROWS and decoded by TensorFlow's parser (components/ingest/example_batches.py); the
statistics are TFDV's GenerateStatistics as before, on the same RecordBatches.

TFX gives no hook to choose the TFXIO its executor reads with, so Do runs TFX's own Do (split
selection, options, output properties and the written file stay TFX's) with
`tfxio_utils.get_split_tfxio` answering our TFXIO for the duration of the call. The
statistics equal TFX's but for the last digit of some means and standard deviations (the sums
run in another order); tests/components/ingest/test_statistics_gen.py compares them.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, List, Optional

import apache_beam as beam
import pyarrow as pa
from tfx.components.statistics_gen import component as statistics_gen_component
from tfx.components.statistics_gen import executor as statistics_gen_executor
from tfx.components.util import tfxio_utils
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import channel, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils
from tfx_bsl.tfxio import tf_example_record

from components.ingest import example_batches

# Rows per RecordBatch handed to TFDV: large enough that Beam's per-element cost vanishes,
# small enough to keep one batch's columns a few tens of MB.
BATCH_ROWS = 16_384


class _ReadFile(beam.DoFn):
    def __init__(self, batch_rows: int):
        self._batch_rows = batch_rows

    def process(self, path: str) -> Iterator[pa.RecordBatch]:
        yield from example_batches.read_batches([path], self._batch_rows)


class BatchedExampleRecord(tf_example_record.TFExampleRecord):
    """TFExampleRecord whose Beam source reads files, not records (schema-less reads only)."""

    def BeamSource(self, batch_size: Optional[int] = None) -> beam.PTransform:  # noqa: N802
        patterns = list(self._file_pattern)
        batch_rows = batch_size or BATCH_ROWS

        @beam.ptransform_fn
        def _read(pipeline):
            import tensorflow as tf

            files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
            return (pipeline
                    | "Files" >> beam.Create(files)
                    | "Reshuffle" >> beam.Reshuffle()
                    | "ReadBatches" >> beam.ParDo(_ReadFile(batch_rows)))

        return _read()


# TFX's own, kept before _batched_reads swaps in _batched_split_tfxio.
_stock_get_split_tfxio = tfxio_utils.get_split_tfxio


def _batched_split_tfxio(examples, split: str, telemetry_descriptors: List[str],
                         schema=None, **kwargs: Any):
    tfxio = _stock_get_split_tfxio(examples, split, telemetry_descriptors, schema=schema,
                                   **kwargs)
    # A schema (or raw records) asks the decoder for more than our parser gives: TFX's reader.
    if (schema is not None or kwargs.get("raw_record_column_name")
            or type(tfxio) is not tf_example_record.TFExampleRecord):
        return tfxio
    return BatchedExampleRecord(file_pattern=tfxio._file_pattern,  # noqa: SLF001
                                telemetry_descriptors=telemetry_descriptors)


@contextlib.contextmanager
def _batched_reads():
    tfxio_utils.get_split_tfxio = _batched_split_tfxio
    try:
        yield
    finally:
        tfxio_utils.get_split_tfxio = _stock_get_split_tfxio


class Executor(statistics_gen_executor.Executor):
    """TFX's StatisticsGen executor with the batched reader above."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802
        with _batched_reads():
            super().Do(input_dict, output_dict, exec_properties)


class StatisticsGenSpec(standard_component_specs.StatisticsGenSpec):
    """StatisticsGen's spec and the fingerprint of this module's code: TFX caches a component on
    its inputs and properties, not on its executor's code."""

    PARAMETERS = {**standard_component_specs.StatisticsGenSpec.PARAMETERS,
                  "code_fingerprint": ExecutionParameter(type=str, optional=True)}


class StatisticsGen(statistics_gen_component.StatisticsGen):
    """TFX's StatisticsGen (inputs, outputs and node id alike) run by Executor above."""

    SPEC_CLASS = StatisticsGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, examples: channel.BaseChannel, code_fingerprint: str = "",
                 columns: Optional[List[str]] = None):
        """columns: the only features to describe (TFDV's feature_allowlist); all by default."""
        # TFX's __init__ builds the stock spec, which has no place for the fingerprint.
        options = None
        if columns is not None:
            from tensorflow_data_validation.statistics import stats_options

            options = stats_options.StatsOptions(feature_allowlist=list(columns)).to_json()
        spec = StatisticsGenSpec(
            examples=examples, schema=None, stats_options_json=options,
            exclude_splits=json_utils.dumps([]),
            statistics=channel.Channel(type=standard_artifacts.ExampleStatistics),
            code_fingerprint=code_fingerprint)
        base_component.BaseComponent.__init__(self, spec=spec)
