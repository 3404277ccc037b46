"""ExampleEncoder (components/ingest/example_encoding.py) writes the tf.Example wire format itself;
its bytes must be those of the tfx_bsl-based encoding it replaced (each column through tfx_bsl's
C++ encoder, the features joined in name order), since a row's split is the SHA-256 of them,
and what CsvExampleGen hashes: `SerializeToString(deterministic=True)` of the parsed Example."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
from tfx_bsl.coders import example_coder

from components.ingest import csv_format
from components.ingest.column_types import ColumnType
from components.ingest.example_encoding import ExampleEncoder

INT, FLOAT, STRING, UNKNOWN = (ColumnType.INT, ColumnType.FLOAT, ColumnType.STRING,
                               ColumnType.UNKNOWN)
ROW_KEY = "row key"  # an int64 column, as the executor adds (its type is read as INT)
_LIST_TYPES = {INT: pa.int64(), FLOAT: pa.float32(), STRING: pa.large_binary(),
               UNKNOWN: pa.large_binary()}


def _python_value(cell: str, column_type: ColumnType):
    """A cell's value as CsvExampleGen converts it, in plain Python."""
    if column_type == INT:
        return int(cell)
    if column_type == FLOAT:
        return float(cell)
    return cell.encode()


def _reference_column(cells: pa.Array, column_type: ColumnType) -> pa.Array:
    if pa.types.is_int64(cells.type):
        return pa.array([[v] for v in cells.to_pylist()], pa.large_list(pa.int64()))
    list_type = pa.large_list(_LIST_TYPES[column_type])
    if column_type == UNKNOWN:
        return pa.array([None] * len(cells), list_type)
    return pa.array([[_python_value(c, column_type)] if _is_value(c, column_type) else []
                     for c in cells.to_pylist()], list_type)


def _is_value(cell: str, column_type: ColumnType) -> bool:
    """The cell is written as a value: not empty, and not NaN in a number column (written as an
    empty cell, where CsvExampleGen writes NaN: csv_format.py's rule)."""
    return bool(cell) and not (column_type in (INT, FLOAT) and csv_format.is_nan(cell))


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def _map_entry(example: bytes) -> bytes:
    """A one-feature Example without its outer tag and length: its features map entry."""
    at = 1
    while example[at] & 0x80:
        at += 1
    return example[at + 1:]


def reference_encode(names, types, batch: pa.RecordBatch) -> list[bytes]:
    """The encoding ExampleEncoder replaced: each column a one-feature Example per row from
    tfx_bsl's C++ encoder, whose map entries are joined in name-byte order under a new
    Example header."""
    encoder = example_coder.RecordBatchToExamplesEncoder()
    rows = [b""] * batch.num_rows
    for i in sorted(range(len(names)), key=lambda i: names[i].encode()):
        one = pa.RecordBatch.from_arrays([_reference_column(batch.column(i), types[i])],
                                         [names[i]])
        rows = [row + _map_entry(e) for row, e in zip(rows, encoder.encode(one))]
    return [b"\x0a" + _varint(len(row)) + row for row in rows]


def _batch(columns: list[list[str] | pa.Array]) -> pa.RecordBatch:
    arrays = [c if isinstance(c, pa.Array) else pa.array(c, pa.string()) for c in columns]
    return pa.RecordBatch.from_arrays(arrays, [f"c{i}" for i in range(len(arrays))])


def _check(names, types, batch: pa.RecordBatch) -> list[bytes]:
    """encode() is the reference's bytes, and CsvExampleGen's: the values parse back and
    re-serialize deterministically to the same bytes."""
    records = ExampleEncoder(names, types).encode(batch)
    assert records == reference_encode(names, types, batch)
    for row, record in enumerate(records):
        example = tf.train.Example.FromString(record)
        assert example.SerializeToString(deterministic=True) == record
        assert sorted(example.features.feature) == sorted(names)
        for i, name in enumerate(names):
            feature = example.features.feature[name]
            cell = batch.column(i)[row].as_py()
            if pa.types.is_int64(batch.column(i).type):
                assert list(feature.int64_list.value) == [cell]
            elif types[i] == UNKNOWN:
                assert feature.WhichOneof("kind") is None
            else:
                kind = {INT: "int64_list", FLOAT: "float_list", STRING: "bytes_list"}[types[i]]
                assert feature.WhichOneof("kind") == kind
                values = list(getattr(feature, kind).value)
                expected = [_python_value(cell, types[i])] if _is_value(cell, types[i]) else []
                if types[i] == FLOAT:  # as float32, by its bits
                    with np.errstate(over="ignore"):
                        expected = np.array(expected, np.float32).tobytes()
                    values = np.array(values, np.float32).tobytes()
                assert values == expected
    return records


INTS = ["0", "1", "-1", "127", "128", "16383", "16384", "9223372036854775807",
        "-9223372036854775808", "", "300", "-128"]
# No 'inf', '1e400' or '3.5e38' (inf as a float32): refused (NotFinite, test_number_cells.py).
FLOATS = ["0.5", "", "nan", "-nan", "3.4e38", "-3.4e38", "-0.0", "1e-50", "1e-400", "-1e-400",
          "7", "0.1"]
STRINGS = ["a", "", "é日本", "x" * 127, "y" * 128, "z" * 20000, "0", " ", "\n", "a,b", "",
           "\x00"]


def test_edge_cells_names_and_empty_rows():
    long_name = "ä" * 70  # 140 bytes: the key's length is a 2-byte varint, the entry's too
    names = ["ints", "floats", "strings", "unknown", long_name, "B", "a", "é", ROW_KEY]
    types = [INT, FLOAT, STRING, UNKNOWN, INT, STRING, FLOAT, INT, INT]
    keys = pa.array([0, 1, -1, 2**63 - 1, -2**63, 127, 128, 5, 6, 7, 8, 9], pa.int64())
    columns = [INTS, FLOATS, STRINGS, [""] * 12, INTS[::-1], STRINGS[::-1], FLOATS[::-1],
               [""] * 11 + ["5"], keys]
    _check(names, types, _batch(columns))
    # Every column empty in every row (the row keys differ); a single row and column.
    empty = _batch([[""] * 3] * 8 + [pa.array([1, 2, 3], pa.int64())])
    assert len(set(_check(names, types, empty))) == 3
    _check(names[:1], types[:1], _batch([["-5"]]))


def test_cells_arrows_parsers_refuse_go_through_python():
    """int() and float() take " 12", "+3", "1_000" and " NaN "; Arrow's cast does not."""
    _check(["i", "f"], [INT, FLOAT],
           _batch([[" 12", "+3", "1_000", "", "4"], [" NaN ", " 2.5", "1_0.5", "", "-1"]]))


def test_no_rows_and_a_sliced_batch():
    names, types = ["a", "b", "c"], [INT, FLOAT, STRING]
    batch = _batch([INTS, FLOATS, STRINGS])
    assert ExampleEncoder(names, types).encode(batch.slice(0, 0)) == []
    _check(names, types, batch.slice(3, 5))


def test_a_null_cell_is_refused():
    with pytest.raises(ValueError, match="not null"):
        ExampleEncoder(["a"], [STRING]).encode(_batch([pa.array(["x", None])]))


def _random_cells(rng: np.random.Generator, column_type: ColumnType, rows: int) -> list[str]:
    if column_type == INT:
        bits = rng.integers(1, 64, rows)
        cells = [str(int(rng.integers(-(2**int(b)), 2**int(b) - 1, dtype=np.int64)))
                 for b in bits]
    elif column_type == FLOAT:
        cells = [repr(float(v)) for v in rng.normal(0, 10.0 ** rng.integers(-40, 40), rows)]
        cells = [str(v) if rng.random() < 0.1 else c
                 for c, v in zip(cells, rng.integers(-1000, 1000, rows))]
    else:
        alphabet = list("ab,. \"'\t0123456789éß日本語🙂")
        lengths = np.where(rng.random(rows) < 0.1, rng.integers(100, 400, rows),
                           rng.integers(1, 12, rows))
        cells = ["".join(rng.choice(alphabet, n)) for n in lengths]
    empty = rng.random(rows) < rng.choice([0.0, 0.3, 0.9])
    return ["" if e else c for c, e in zip(cells, empty)]


@pytest.mark.parametrize("seed", range(6))
def test_random_batches(seed):
    rng = np.random.default_rng(seed)
    rows, width = int(rng.integers(1, 150)), int(rng.integers(1, 30))
    types = list(rng.choice([INT, FLOAT, STRING, UNKNOWN], width))
    names = list(dict.fromkeys(
        "".join(rng.choice(list("abcXYZ_é0"), int(rng.choice([1, 3, 8, 130]))))
        for _ in range(width)))
    types = types[:len(names)]
    columns = [_random_cells(rng, t, rows) if t != UNKNOWN else [""] * rows for t in types]
    if seed % 2:
        names.append(ROW_KEY)
        types.append(INT)
        columns.append(pa.array(rng.integers(0, 2**62, rows), pa.int64()))
    _check(names, types, _batch(columns))
