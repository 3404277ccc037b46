"""The Beam work of the CSV ExampleGen: a byte range of the CSV to serialized tf.Examples, put in
splits by TFX's hash partition (copies of a row spread: hash_partition.py) and written as
gzipped TFRecord files, one per split and range.

No Beam element per row: a range's rows go from pyarrow batches through tfx_bsl's encoder to the
files in this DoFn, which is what makes ingestion fast on the DirectRunner (Beam's per-element
overhead and CsvExampleGen's Reshuffle, which holds every example in memory there, were most of
its cost). Each file is written under a temporary name and renamed when complete, and its name
is the range's index, so a retried range rewrites the same files. Imports neither TensorFlow nor
TFX, so Beam's worker processes start in a second or two.
"""
from __future__ import annotations

import gzip
import os
from typing import Iterator

import apache_beam as beam
import google_crc32c
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from components.ingest import arrow_bytes, csv_format, hash_partition
from components.ingest.column_types import ColumnType
from components.ingest.csv_ranges import ByteRange, read_batches
from components.ingest.example_encoding import ExampleEncoder, NotFinite

# TFX's file name for ExampleGen output (tfx.components.example_gen.write_split).
FILE_PREFIX = "data_tfrecord"
# zlib level 1: 2.7x faster than the default 6 on taxi examples, files 20% larger.
GZIP_LEVEL = 1
_CRC_MASK_DELTA = np.uint32(0xA282EAD8)
UNCOMPRESSED = CompressionTypes.UNCOMPRESSED
# A row's key is its range's index times this plus its position in the range: sorting by the
# key gives the file's row order (a range holds far fewer rows than this).
ROW_KEY_RANGE = 2**40  # the gzip stream is written here, at GZIP_LEVEL


def _masked_crc(crcs: np.ndarray) -> np.ndarray:
    """TFRecord's masked CRC32C: rotated right by 15 bits, plus a constant (mod 2**32)."""
    crcs = crcs.astype(np.uint32)
    return ((crcs >> np.uint32(15)) | (crcs << np.uint32(17))) + _CRC_MASK_DELTA


def tfrecord_frames(records: list[bytes]) -> memoryview:
    """The records in TFRecord framing: length (uint64 LE), its masked CRC32C, the data, the
    data's masked CRC32C; built for the whole list at once."""
    if not records:
        return memoryview(b"")
    count = len(records)
    lengths = np.fromiter(map(len, records), dtype="<u8", count=count)
    distinct, which = np.unique(lengths, return_inverse=True)
    length_crcs = np.array([google_crc32c.value(v.tobytes()) for v in distinct], np.uint32)
    data_crcs = np.fromiter(map(google_crc32c.value, records), dtype=np.uint32, count=count)
    head = np.empty((count, 12), dtype=np.uint8)
    head[:, :8] = lengths.view(np.uint8).reshape(count, 8)
    head[:, 8:] = _masked_crc(length_crcs)[which].astype("<u4").view(np.uint8).reshape(count, 4)
    tail = _masked_crc(data_crcs).astype("<u4").view(np.uint8).reshape(count, 4)
    heads = pa.FixedSizeBinaryArray.from_buffers(pa.binary(12), count, [None, pa.py_buffer(head)])
    tails = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), count, [None, pa.py_buffer(tail)])
    framed = pc.binary_join_element_wise(heads.cast(pa.binary()), pa.array(records, pa.binary()),
                                         tails.cast(pa.binary()), b"")
    return arrow_bytes.joined(framed)


class WriteRangeSplits(beam.DoFn):
    """(range index, start, end, skip_header) -> one gzipped TFRecord file per split; yields
    (split index, rows written)."""

    def __init__(self, fmt: csv_format.CsvFormat, types: list[ColumnType],
                 split_uris: list[str], hash_buckets: list[int], ranges: int,
                 row_key: str | None = None):
        self._fmt, self._types, self._split_uris, self._ranges = fmt, types, split_uris, ranges
        self._bounds = list(np.cumsum(hash_buckets).tolist())
        self._row_key = row_key  # a feature of each row's position (executor.py), or None

    def setup(self):
        names, types = list(self._fmt.header), list(self._types)
        if self._row_key:
            names.append(self._row_key)
            types.append(ColumnType.INT)
        self._encoder = ExampleEncoder(names, types)

    def process(self, element: tuple) -> Iterator[tuple[int, int]]:
        index, *byte_range = element
        name = f"{FILE_PREFIX}-{index:05d}-of-{self._ranges:05d}.gz"
        paths = [os.path.join(uri, name) for uri in self._split_uris]
        counts = [0] * len(paths)
        raw = [FileSystems.create(path + ".incomplete", compression_type=UNCOMPRESSED)
               for path in paths]
        files = [gzip.GzipFile(fileobj=f, mode="wb", compresslevel=GZIP_LEVEL, mtime=0)
                 for f in raw]
        row = index * ROW_KEY_RANGE
        partition = hash_partition.Partition(self._bounds)  # copies counted within the range
        for batch in read_batches(self._fmt, ByteRange(*byte_range)):
            if self._row_key:
                keys = pa.array(np.arange(row, row + batch.num_rows, dtype=np.int64))
                row += batch.num_rows
                batch = pa.RecordBatch.from_arrays([*batch.columns, keys],
                                                   [*batch.schema.names, self._row_key])
            try:
                records = self._encoder.encode(batch)
            except NotFinite as e:  # the survey refuses these first; named by line here too
                raise csv_format.not_finite_error(self._fmt, e.column) from None
            if len(files) == 1:  # one split (a file to score): no hashing
                files[0].write(tfrecord_frames(records))
                counts[0] += len(records)
                continue
            splits = partition.splits(records)
            for split, file in enumerate(files):
                chosen = [r for r, s in zip(records, splits) if s == split]
                file.write(tfrecord_frames(chosen))
                counts[split] += len(chosen)
        for file in files + raw:
            file.close()
        FileSystems.rename([p + ".incomplete" for p in paths], paths)
        yield from enumerate(counts)
