"""CSV record batches to serialized tf.Examples, byte for byte what CsvExampleGen's examples
serialize to deterministically, without a Python object per row.

Why the bytes matter: ExampleGen puts a record in a split by the SHA-256 of its serialization
(TFX's _PartitionFn), and CsvExampleGen hashes `SerializeToString(deterministic=True)`, which
writes the features map sorted by name. tfx_bsl's C++ encoder writes the map in hash-table
order, so it was used a column at a time and its map entries re-joined, which took 3.6 times as
long as writing the wire format here directly, a column at a time with numpy over the batch:

    Example   = 0a varint(len) Features content: the map entries, in key-byte order
    map entry = 0a varint(len)  0a varint(len) name  12 varint(len) Feature
    Feature   = 0a varint(len) (0a varint(len) bytes)...  bytes_list, one field per value
              | 12 varint(len) 0a varint(4n) float32 LE...   float_list, packed
              | 1a varint(len) 0a varint(len) varint...      int64_list, packed; a negative
                                                             int is its 10-byte two's complement

Between two keys (or a key and a string value), a row's tags, varints and numbers go into a
table with a row of bytes per row, from which the bytes each row uses are taken in row order;
pyarrow's binary_join_element_wise then puts these arrays, the keys (the same in every row)
and the string values together row by row.

Values as CsvExampleGen gives them: INT cells through int(), FLOAT cells through float() and
then float32 (the FloatList type), STRING cells as their UTF-8 bytes; an empty cell is a
feature with an empty value list of the column's type (`1a 00`, `12 00`, `0a 00`); a column
empty in every row (UNKNOWN) is a feature with no list at all (an empty Feature). An int64
column (the row key the executor adds) holds one value per row. Departing from CsvExampleGen
(csv_format.py's rules): a NaN cell of an INT or FLOAT column is written as an empty one, a
whole decimal ('181.0') of an INT column as its integer, and a cell float32 cannot hold
('inf', '1e999') raises NotFinite: the examples never carry NaN or an infinity.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.ingest import arrow_bytes, csv_format
from components.ingest.column_types import ColumnType

_LEN = 0x0A  # field 1, length-delimited: Example.features, Features.feature, key, list values
_VALUE = 0x12  # field 2, length-delimited: a map entry's value, Feature.float_list
_LIST_TAGS = {ColumnType.STRING: 0x0A, ColumnType.FLOAT: 0x12, ColumnType.INT: 0x1A}
# A varint takes one byte more at each of these values (up to 10 bytes for 64 bits).
_VARINT_STEPS = [np.uint64(1 << (7 * k)) for k in range(1, 10)]
_NOTHING = pa.scalar(b"", pa.large_binary())

# A piece of each row's bytes: a (rows, width) uint8 table and how many of a row's bytes count.
Piece = tuple[np.ndarray, np.ndarray]


class NotFinite(ValueError):
    """A number column's cell that would be written as an infinite float (csv_format.py's rule:
    refused, never written); `cell` is its text."""

    def __init__(self, cell: str, column: str = ""):
        super().__init__(csv_format.not_finite_problem(column, cell))
        self.cell, self.column = cell, column


def _int(cell: str) -> int | None:
    """An INT cell as CsvExampleGen reads it (int()), a whole decimal ('181.0', what pandas
    writes for ints with gaps, in a column the model reads as integers) as that integer, NaN
    as None (missing)."""
    try:
        return int(cell)
    except ValueError:
        value = csv_format.whole_number(cell)
        if value is None and not csv_format.is_nan(cell):
            raise ValueError(f"{cell!r} is not a whole number") from None
        return value


def _values(cells: pa.Array, column_type: ColumnType) -> pa.Array:
    """The non-empty cells (a string array) converted as CsvExampleGen converts them, null for
    a NaN cell (written as an empty one). Arrow's parsers are tried first; a cell they refuse
    but Python takes (" 12", "1_000", "Infinity", "181.0" in an INT column) sends the column's
    batch through Python. NotFinite for a value float32 cannot hold."""
    try:
        if column_type == ColumnType.INT:
            return cells.cast(pa.int64())
        values = cells.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if column_type == ColumnType.INT:
            return pa.array([_int(cell) for cell in cells.to_pylist()], pa.int64())
        values = pa.array([float(cell) for cell in cells.to_pylist()], pa.float64())
    return _finite_float32(cells, values)


def _finite_float32(cells: pa.Array, values: pa.Array) -> pa.Array:
    """float64 values as float32, NaN as null; NotFinite naming the first cell that is not
    finite as a float32 (inf, or beyond its range)."""
    values = values.cast(pa.float32(), safe=False)
    nan = pc.is_nan(values)
    infinite = pc.is_inf(values)
    if pc.any(infinite).as_py():
        raise NotFinite(cells.filter(infinite)[0].as_py())
    return pc.if_else(nan, pa.scalar(None, pa.float32()), values) if pc.any(nan).as_py() \
        else values


def _unsigned(values: np.ndarray) -> np.ndarray:
    """Integers as uint64: a negative int64 as its two's complement, as protobuf writes it."""
    return np.ascontiguousarray(values, dtype=np.int64).view(np.uint64)


def _varint_size(values: np.ndarray) -> np.ndarray:
    values = _unsigned(values)
    size = np.ones(len(values), dtype=np.int64)
    top = values.max(initial=0)
    for step in _VARINT_STEPS:  # most values here are lengths: one or two steps
        if top < step:
            break
        size += values >= step
    return size


def _varints(values: np.ndarray) -> Piece:
    """Each value as a varint: low 7 bits first, the high bit set on all bytes but the last."""
    rest = _unsigned(values).copy()
    size = _varint_size(rest)
    if len(rest) and size.max() == 1:  # most are lengths below 128: the value is the byte
        return rest.astype(np.uint8)[:, None], size
    table = np.empty((len(rest), int(size.max(initial=1))), dtype=np.uint8)
    for i in range(table.shape[1]):
        more = np.where(size > i + 1, np.uint8(0x80), np.uint8(0))
        table[:, i] = (rest & np.uint64(0x7F)).astype(np.uint8) | more
        rest >>= np.uint64(7)
    return table, size


def _constant(data: bytes, rows: int) -> Piece:
    table = np.broadcast_to(np.frombuffer(data, dtype=np.uint8), (rows, len(data)))
    return table, np.full(rows, len(data))


def _field(tag: int, lengths: np.ndarray) -> list[Piece]:
    """A length-delimited field's tag and length, per row (its content follows)."""
    return [_constant(bytes([tag]), len(lengths)), _varints(lengths)]


def _only(pieces: list[Piece], present: np.ndarray) -> list[Piece]:
    """The pieces in the rows with a value; nothing in the others."""
    return [(table, np.where(present, size, 0)) for table, size in pieces]


def _rows(pieces: list[Piece], rows: int) -> pa.Array | pa.Scalar:
    """Row i: the first size[i] bytes of row i of each piece, in order, as one binary array."""
    if not pieces:
        return _NOTHING
    table = np.hstack([table for table, _ in pieces])
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(sum(size for _, size in pieces), out=offsets[1:])
    if offsets[-1] == table.size:  # every row uses every byte (often so): nothing to drop
        data = table.ravel()
    else:
        data = table[np.hstack([np.arange(table.shape[1]) < size[:, None]
                                for table, size in pieces])]
    return pa.Array.from_buffers(pa.large_binary(), rows,
                                 [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _strings(cells: pa.Array) -> tuple[list[Piece], np.ndarray, pa.Array]:
    """A STRING column's Features up to the value bytes, their sizes (the value bytes
    included) and the value bytes ("" for an empty cell: its list is `0a 00`)."""
    values = cells.cast(pa.large_binary())
    length = np.asarray(pc.binary_length(values), dtype=np.int64)
    present = length > 0
    list_size = np.where(present, 1 + _varint_size(length) + length, 0)
    pieces = [*_field(_LIST_TAGS[ColumnType.STRING], list_size),
              *_only(_field(_LEN, length), present)]
    return pieces, 1 + _varint_size(list_size) + list_size, values


def _numbers(cells: pa.Array, column_type: ColumnType) -> tuple[list[Piece], np.ndarray]:
    """An INT or FLOAT column's Features and their sizes: the list's tag and length, then for
    a cell its packed value field (0a, the value's size, the value); `1a 00` / `12 00` for an
    empty cell."""
    if pa.types.is_int64(cells.type):
        present, column_type = np.ones(len(cells), dtype=bool), ColumnType.INT
        values = cells.to_numpy()
    else:
        present = np.asarray(pc.binary_length(cells), dtype=np.int64) > 0
        found = _values(cells.filter(pa.array(present)), column_type)
        if found.null_count:  # NaN cells: written as empty ones
            present[present] = np.asarray(found.is_valid())
            found = found.drop_null()
        found = found.to_numpy()
        values = np.zeros(len(cells), dtype=found.dtype)
        values[present] = found
    if column_type == ColumnType.INT:
        value = _varints(values)
    else:
        value = values.astype("<f4").view(np.uint8).reshape(-1, 4), np.full(len(values), 4)
    list_size = np.where(present, 2 + value[1], 0)  # 0a, the value's size (< 128), the value
    pieces = [*_field(_LIST_TAGS[column_type], list_size),
              *_only([*_field(_LEN, value[1]), value], present)]
    return pieces, 2 + list_size


def _feature(cells: pa.Array, column_type: ColumnType):
    """One column's Feature per row: (pieces, sizes, value bytes that follow the pieces or
    None)."""
    if pa.types.is_int64(cells.type):
        return (*_numbers(cells, ColumnType.INT), None)
    if cells.null_count:
        raise ValueError('an empty cell is "", not null')
    if column_type == ColumnType.UNKNOWN:
        return [], np.zeros(len(cells), dtype=np.int64), None
    if column_type == ColumnType.STRING:
        return _strings(cells)
    return (*_numbers(cells, column_type), None)


def _key_field(name: str) -> bytes:
    """`0a varint(len) name 12`: a map entry's key field and its value's tag."""
    key = name.encode()
    table, size = _varints(np.array([len(key)]))
    return bytes([_LEN]) + table[0, :size[0]].tobytes() + key + bytes([_VALUE])


def _bytes_list(array: pa.Array) -> list[bytes]:
    """A large_binary array's values: slices of one bytes object, twice as fast as
    to_pylist (which makes a scalar per value first)."""
    ends = arrow_bytes.offsets(array).tolist()
    data = array.buffers()[2].to_pybytes()  # the join's output starts at offset 0
    return [data[start:end] for start, end in zip(ends, ends[1:])]


class ExampleEncoder:
    """Encodes CSV record batches (string columns in header order) as serialized tf.Examples.

    names: the feature names, in the CSV's column order; types: each column's ColumnType.
    """

    def __init__(self, names: Sequence[str], types: Sequence[ColumnType]):
        self._names = list(names)
        self._types = list(types)
        # Deterministic serialization orders a string-keyed map by the keys' bytes.
        self._order = sorted(range(len(self._names)), key=lambda i: self._names[i].encode())
        # An entry's key field and its value's tag, the same in every row: joined as a scalar
        # (a scalar costs the join less than its bytes cost in every row of a table).
        self._keys = [pa.scalar(_key_field(name), pa.large_binary()) for name in self._names]

    def _entry(self, cells: pa.Array, i: int):
        """Column i's map entry per row: (pieces before the key, the key, pieces after it,
        the string bytes that end it or None, the entry's size)."""
        try:
            feature, feature_size, strings = _feature(cells, self._types[i])
        except NotFinite as e:
            raise NotFinite(e.cell, self._names[i]) from None
        key = self._keys[i]
        size = len(key.as_py()) + _varint_size(feature_size) + feature_size
        after = [_varints(feature_size), *feature]
        return _field(_LEN, size), key, after, strings, 1 + _varint_size(size) + size

    def encode(self, batch: pa.RecordBatch) -> list[bytes]:
        if batch.num_rows == 0:
            return []
        rows = batch.num_rows
        entries = [self._entry(batch.column(i), i) for i in self._order]
        payload = sum((entry[-1] for entry in entries), np.zeros(rows, dtype=np.int64))
        # The pieces between two keys or strings make one binary array; the join puts the
        # arrays, keys and strings together row by row.
        parts, pieces = [], _field(_LEN, payload)
        for before, key, after, strings, _ in entries:
            parts += [_rows(pieces + before, rows), key]
            pieces = after
            if strings is not None:
                parts += [_rows(pieces, rows), strings]
                pieces = []
        parts.append(_rows(pieces, rows))
        return _bytes_list(pc.binary_join_element_wise(*parts, _NOTHING))
