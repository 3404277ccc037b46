"""Which split the pipeline's ExampleGen puts a row in, for the rows of init's sample.

The ExampleGen hashes each row's serialized tf.Example (SHA-256, TFX's _PartitionFn) into 100
buckets, train_ratio of them train, the rest eval (pipeline/definition/builder.py). The sample's
rows are encoded here by the ExampleGen's own encoder (components/ingest/example_encoding.py)
with the column types of the whole file, so each sampled row lands in the split the pipeline
will put it in: the baseline init measures is measured on the pipeline's eval rows.

range_writer.split_of is the same function, but importing it imports Apache Beam (2 s); the test
checks that both agree.
"""
from __future__ import annotations

import bisect
import hashlib
from typing import Sequence

import numpy as np
import pyarrow as pa

from components.ingest.column_types import ColumnType
from components.ingest.example_encoding import ExampleEncoder

TRAIN, EVAL = 0, 1
_ENCODE_ROWS = 8192


def bucket_bounds(train_ratio: float) -> list[int]:
    """Cumulative hash-bucket bounds of (train, eval), as builder.py sets the split config."""
    train = round(train_ratio * 100)
    return [train, 100]


def split_of(record: bytes, bounds: Sequence[int]) -> int:
    bucket = int.from_bytes(hashlib.sha256(record).digest(), "big") % bounds[-1]
    return bisect.bisect(bounds, bucket)


def splits(sample: pa.Table, header: Sequence[str], types: Sequence[ColumnType],
           train_ratio: float) -> np.ndarray:
    """TRAIN or EVAL for each row of sample (string columns in header order)."""
    encoder = ExampleEncoder(header, types)
    bounds = bucket_bounds(train_ratio)
    out = np.empty(sample.num_rows, dtype=np.int8)
    for start in range(0, sample.num_rows, _ENCODE_ROWS):
        batch = pa.RecordBatch.from_arrays(
            [sample.column(i).slice(start, _ENCODE_ROWS).combine_chunks()
             for i in range(len(header))], [f"c{i}" for i in range(len(header))])
        for i, record in enumerate(encoder.encode(batch)):
            out[start + i] = split_of(record, bounds)
    return out
