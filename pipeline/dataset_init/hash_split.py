"""Which split the pipeline's ExampleGen puts a row in, for the rows of init's sample.

The ExampleGen hashes each row's serialized tf.Example (SHA-256, TFX's _PartitionFn; later
copies of a row hashed apart: components/ingest/hash_partition.py) into 100 buckets,
train_ratio of them train, the rest eval (pipeline/definition/builder.py). The sample's rows are
encoded here by the ExampleGen's own encoder (components/ingest/example_encoding.py) with the
column types of the whole file, and partitioned by the same code, so each sampled row lands in
the split the pipeline will put it in: the baseline init measures is measured on the pipeline's
eval rows. (Copies are counted over the sample, the ExampleGen counts them per 32 MB range of
the file: for a file of one range read whole, the same; otherwise only repeated rows can differ.)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

from components.ingest.column_types import ColumnType
from components.ingest.example_encoding import ExampleEncoder
from components.ingest.hash_partition import Partition

TRAIN, EVAL = 0, 1
_ENCODE_ROWS = 8192


def bucket_bounds(train_ratio: float) -> list[int]:
    """Cumulative hash-bucket bounds of (train, eval), as builder.py sets the split config."""
    train = round(train_ratio * 100)
    return [train, 100]


def splits(sample: pa.Table, header: Sequence[str], types: Sequence[ColumnType],
           train_ratio: float) -> np.ndarray:
    """TRAIN or EVAL for each row of sample (string columns in header order)."""
    encoder = ExampleEncoder(header, types)
    partition = Partition(bucket_bounds(train_ratio))
    out = np.empty(sample.num_rows, dtype=np.int8)
    for start in range(0, sample.num_rows, _ENCODE_ROWS):
        batch = pa.RecordBatch.from_arrays(
            [sample.column(i).slice(start, _ENCODE_ROWS).combine_chunks()
             for i in range(len(header))], [f"c{i}" for i in range(len(header))])
        chosen = partition.splits(encoder.encode(batch))
        out[start:start + len(chosen)] = chosen
    return out
