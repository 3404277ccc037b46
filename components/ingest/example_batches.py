"""Serialized tf.Examples to Arrow RecordBatches with TensorFlow's example parser.

tfx_bsl's ExamplesToRecordBatchDecoder (what TFX's StatisticsGen and our contract check used)
takes ~15 us per taxi example; `tf.io.parse_example` parses the same batch in a tenth of that.
The batch built here is the one the tfx_bsl decoder gives for the examples our ingestion
writes (components/ingest/example_encoding.py), column for column:

- each feature is a large_list of int64, float32 or large_binary, in the decoder's column order;
- an empty cell (a feature with an empty value list) is an empty list;
- a column with no value list in any row (empty everywhere in the CSV) is a null array.

The names and value types come from decoding the first rows of each batch with tfx_bsl. The
parser cannot tell a feature left out of a row from an empty list, so it is used only where
that cannot happen: every example of a batch has the same features, as ingestion writes them.
Should the parser refuse a batch (a value of another type further down), tfx_bsl decodes it,
and raises what it raises.
"""
from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa

from components.tf_data_autotune import without_autotune

# Rows whose types are read with tfx_bsl's decoder (cheap: ~4 ms).
_HEAD_ROWS = 256


def _tf_dtype(value_type: pa.DataType):
    import tensorflow as tf

    if pa.types.is_int64(value_type):
        return tf.int64
    if pa.types.is_floating(value_type):
        return tf.float32
    return tf.string


def _list_column(ragged, value_type: pa.DataType) -> pa.Array:
    offsets = pa.array(ragged.row_splits.numpy().astype(np.int64, copy=False))
    values = ragged.flat_values.numpy()
    if pa.types.is_null(value_type):
        if len(values):
            raise ValueError("values in a feature typed null")
        return pa.nulls(len(offsets) - 1)
    return pa.LargeListArray.from_arrays(offsets, pa.array(values, value_type))


def decode_batch(serialized: Sequence[bytes]) -> pa.RecordBatch:
    """One batch of serialized tf.Examples (a list or a numpy array of bytes) as a RecordBatch,
    equal to tfx_bsl's `ExamplesToRecordBatchDecoder().DecodeBatch(serialized)` for examples
    that all have the same features (see the module docstring)."""
    import tensorflow as tf
    from tfx_bsl.coders import example_coder

    decoder = example_coder.ExamplesToRecordBatchDecoder()
    head = decoder.DecodeBatch(list(serialized[:_HEAD_ROWS]))
    if len(serialized) <= _HEAD_ROWS:
        return head
    value_types = {}
    for field in head.schema:
        value_types[field.name] = (field.type if pa.types.is_null(field.type)
                                   else field.type.value_type)
    features = {name: tf.io.RaggedFeature(_tf_dtype(value_type))
                for name, value_type in value_types.items()}
    try:
        parsed = tf.io.parse_example(tf.constant(serialized, dtype=tf.string), features)
        columns = [_list_column(parsed[name], value_type)
                   for name, value_type in value_types.items()]
    except (tf.errors.InvalidArgumentError, ValueError):
        return decoder.DecodeBatch(list(serialized))
    return pa.RecordBatch.from_arrays(columns, list(value_types))


def record_files(split_uri: str) -> list[str]:
    """An examples split's TFRecord files, in name order."""
    import tensorflow as tf

    return sorted(tf.io.gfile.glob(os.path.join(split_uri, "*")))


def read_batches(files: Sequence[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The examples in files (gzipped if their names end in .gz) as RecordBatches of at most
    batch_rows rows, one batch in memory at a time."""
    import tensorflow as tf

    if not files:
        return
    compression = "GZIP" if files[0].endswith(".gz") else ""
    records = without_autotune(
        tf.data.TFRecordDataset(list(files), compression_type=compression).batch(batch_rows))
    for serialized in records.as_numpy_iterator():
        batch = decode_batch(serialized)
        del serialized  # not alive while the next batch is read: one batch in memory, not two
        yield batch
