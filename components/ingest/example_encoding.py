"""CSV record batches to serialized tf.Examples, byte for byte what CsvExampleGen's examples
serialize to deterministically, without a Python object per row.

Why the bytes matter: ExampleGen puts a record in a split by the SHA-256 of its serialization
(TFX's _PartitionFn), and CsvExampleGen hashes `SerializeToString(deterministic=True)`, which
writes the features map sorted by name. tfx_bsl's C++ encoder writes the map in hash-table
order, different from row to row. So each column is encoded on its own (one map entry per
row), the outer message's tag and length are cut off, and the entries are joined in name order
under a new Example header: every step a pyarrow compute kernel or a numpy operation.

Values as CsvExampleGen gives them: INT cells through int(), FLOAT cells through float() and
then float32 (the FloatList type), STRING cells as their UTF-8 bytes; an empty cell is a
feature with an empty value list of the column's type; a column empty in every row (UNKNOWN)
is a feature with no list at all.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tfx_bsl.coders import example_coder

from components.ingest.column_types import ColumnType

_VALUE_TYPES = {ColumnType.INT: pa.int64(), ColumnType.FLOAT: pa.float32(),
                ColumnType.STRING: pa.large_binary(), ColumnType.UNKNOWN: pa.large_binary()}
_FIELD_TAG = b"\x0a"  # field 1, length-delimited: Example.features and Features.feature alike


def _values(cells: pa.Array, column_type: ColumnType) -> pa.Array:
    """The non-empty cells (a string array) converted as CsvExampleGen converts them. Arrow's
    parsers are tried first; a cell they refuse but Python takes (" 12", "1_000", "Infinity")
    sends the column's batch through Python."""
    if column_type == ColumnType.STRING:
        return cells.cast(pa.large_binary())
    try:
        if column_type == ColumnType.INT:
            return cells.cast(pa.int64())
        return cells.cast(pa.float64()).cast(pa.float32(), safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parse = int if column_type == ColumnType.INT else float
        values = pa.array([parse(cell) for cell in cells.to_pylist()],
                          pa.int64() if column_type == ColumnType.INT else pa.float64())
        return values.cast(_VALUE_TYPES[column_type], safe=False)


def feature_column(cells: pa.Array, column_type: ColumnType) -> pa.Array:
    """One CSV column (strings, "" when empty) as a large_list column for tfx_bsl's encoder;
    an int64 column (a row key the executor adds) holds one value per row."""
    if pa.types.is_int64(cells.type):
        return pa.LargeListArray.from_arrays(
            pa.array(np.arange(len(cells) + 1, dtype=np.int64)), cells)
    value_type = _VALUE_TYPES[column_type]
    if column_type == ColumnType.UNKNOWN:
        return pa.array([None] * len(cells), pa.large_list(value_type))
    present = pc.not_equal(cells, "")
    counts = np.asarray(present.to_numpy(zero_copy_only=False), dtype=np.int64)
    offsets = np.zeros(len(cells) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    values = _values(cells.filter(present), column_type)
    return pa.LargeListArray.from_arrays(pa.array(offsets), values)


def _varint_size(values: np.ndarray) -> np.ndarray:
    size = np.ones(len(values), dtype=np.int64)
    for bits in (7, 14, 21, 28):
        size += values >= (1 << bits)
    return size


def _header_free(encoded: list[bytes]) -> pa.Array:
    """Single-feature Examples with their outer tag and length cut off: the map entry alone."""
    entries = pa.array(encoded, pa.binary())
    total = np.asarray(pc.binary_length(entries), dtype=np.int64)
    # A message of total bytes is 1 tag byte, then the varint of (total - 1 - its own size).
    header = 1 + np.where(total - 2 < 1 << 7, 1, np.where(total - 3 < 1 << 14, 2,
                          np.where(total - 4 < 1 << 21, 3, 4)))
    if len(header) and (header == header[0]).all():
        return pc.binary_replace_slice(entries, start=0, stop=int(header[0]), replacement=b"")
    return pa.array([e[h:] for e, h in zip(encoded, header.tolist())], pa.binary())


def _example_headers(payload: np.ndarray) -> pa.Array:
    """b"\\x0a" + varint(payload length) per row, as one binary array."""
    size = _varint_size(payload)
    width = 1 + int(size.max(initial=1))
    table = np.zeros((len(payload), width), dtype=np.uint8)
    table[:, 0] = _FIELD_TAG[0]
    rest = payload.copy()
    for i in range(1, width):
        more = size > i
        table[:, i] = (rest & 0x7F) | np.where(more, 0x80, 0)
        rest >>= 7
    used = np.arange(width)[None, :] <= size[:, None]
    offsets = np.zeros(len(payload) + 1, dtype=np.int32)
    np.cumsum(1 + size, out=offsets[1:])
    return pa.Array.from_buffers(pa.binary(), len(payload),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(table[used])])


class ExampleEncoder:
    """Encodes CSV record batches (string columns in header order) as serialized tf.Examples.

    names: the feature names, in the CSV's column order; types: each column's ColumnType.
    """

    def __init__(self, names: Sequence[str], types: Sequence[ColumnType]):
        self._names = list(names)
        self._types = list(types)
        # Deterministic serialization orders a string-keyed map by the keys' bytes.
        self._order = sorted(range(len(self._names)), key=lambda i: self._names[i].encode())
        self._encoder = example_coder.RecordBatchToExamplesEncoder()

    def encode(self, batch: pa.RecordBatch) -> list[bytes]:
        if batch.num_rows == 0:
            return []
        entries = []
        for i in self._order:
            column = feature_column(batch.column(i), self._types[i])
            one = pa.RecordBatch.from_arrays([column], [self._names[i]])
            entries.append(_header_free(self._encoder.encode(one)))
        payload = np.zeros(batch.num_rows, dtype=np.int64)
        for column in entries:
            payload += np.asarray(pc.binary_length(column), dtype=np.int64)
        joined = pc.binary_join_element_wise(_example_headers(payload), *entries, b"")
        return joined.to_pylist()
