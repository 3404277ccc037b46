"""The input CSV as byte ranges read in pyarrow record batches: the streaming first pass that
types the columns (survey) and the ranges Beam's workers read on their own.

A range starts right after a line end. Cutting there is safe only when no value holds a line
break (a quoted value may), which the first pass checks; a gzip stream cannot be entered in the
middle either. Otherwise the file is one range. Imports neither TensorFlow nor TFX: Beam's
worker processes load this to read their ranges.
"""
from __future__ import annotations

import io
from typing import Iterator, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from components.ingest import csv_format
from components.ingest.column_types import ColumnSurvey, ColumnType

# Bytes of CSV per parallel range, and per pyarrow block (a record batch is one block's rows).
RANGE_BYTES = 32 * 2**20
BLOCK_BYTES = 2**20
_NUL = "not a text CSV file (binary data: a NUL byte)"


class ByteRange(NamedTuple):
    """Rows of the CSV from byte start to byte end of its decompressed content; skip_header:
    the range starts at the header line (the whole file in one range)."""
    start: int
    end: int | None
    skip_header: bool


class _Window(io.RawIOBase):
    """A binary stream's bytes up to `end` (None: to its end), for pyarrow to read as a file.
    Notes a NUL byte on the way: pyarrow reads one as data, every other reader refuses it."""

    def __init__(self, stream, end: int | None, position: int):
        self._stream, self._left = stream, None if end is None else end - position
        self.saw_nul = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = len(buffer) if self._left is None else min(len(buffer), self._left)
        data = self._stream.read(size)
        self.saw_nul = self.saw_nul or b"\0" in data
        buffer[:len(data)] = data
        if self._left is not None:
            self._left -= len(data)
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


def _open_range(fmt: csv_format.CsvFormat, byte_range: ByteRange):
    stream = fmt.open_binary()  # at header_offset
    if byte_range.start > fmt.header_offset:
        if fmt.gzip:
            stream.read(byte_range.start - fmt.header_offset)
        else:
            stream.seek(byte_range.start)
    return _Window(stream, byte_range.end, byte_range.start)


def read_batches(fmt: csv_format.CsvFormat, byte_range: ByteRange) -> Iterator[pa.RecordBatch]:
    """The range's rows in record batches of string columns ("" for an empty cell, and for a
    cell of fmt.missing_values), in header order. Blank lines are skipped, as in CsvExampleGen;
    what CsvExampleGen cannot read fails naming the file and line (csv_format.rows): a row with
    another number of fields, a quote never closed, a NUL byte, a byte that is not UTF-8."""
    if byte_range.end is not None and byte_range.end <= byte_range.start:
        return
    window = _open_range(fmt, byte_range)
    last = None
    for batch in _parsed_batches(fmt, byte_range, window):
        if window.saw_nul:
            raise _located(fmt, _NUL)
        last = batch
        yield batch
    if window.saw_nul:
        raise _located(fmt, _NUL)
    if last is not None and _ends_in_a_line_break(last):
        # A quote left open in the last value reads the rest of the file into it, and pyarrow
        # says nothing; a last row really holding a line break is rare, so only then is the
        # file read again to tell the two apart.
        error = csv_format.first_malformed_row(fmt)
        if error is not None:
            raise error


def _ends_in_a_line_break(batch: pa.RecordBatch) -> bool:
    """The batch's last row has a value holding a line break."""
    cells = batch.slice(batch.num_rows - 1).to_pylist()[0].values()
    return any("\n" in cell or "\r" in cell for cell in cells if cell)


def _located(fmt: csv_format.CsvFormat, problem: str) -> ValueError:
    """The error naming the first row the ExampleGen cannot read and its line, for a reader
    (pyarrow) that says what failed but not where; `problem` without a line if none is found."""
    return csv_format.first_malformed_row(fmt) or ValueError(f"{fmt.path}: {problem}")


def _parsed_batches(fmt: csv_format.CsvFormat, byte_range: ByteRange,
                    window: _Window) -> Iterator[pa.RecordBatch]:
    """pyarrow's record batches of the range's bytes (`window`), as read_batches gives them."""
    placeholders = [f"column_{i}" for i in range(len(fmt.header))]
    markers = list(fmt.missing_values)
    try:
        batches = pa_csv.open_csv(
            window,
            read_options=pa_csv.ReadOptions(column_names=placeholders, block_size=BLOCK_BYTES,
                                            skip_rows=1 if byte_range.skip_header else 0),
            # Ranges cut at line ends exist only when no value holds a line break.
            parse_options=pa_csv.ParseOptions(delimiter=csv_format.DELIMITER,
                                              newlines_in_values=byte_range.skip_header,
                                              ignore_empty_lines=True),
            # A marker (quoted or not) is read as null, then as the empty cell it stands for:
            # downstream, as in CsvExampleGen, an empty cell is an empty value list.
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in placeholders},
                null_values=markers, strings_can_be_null=bool(markers),
                quoted_strings_can_be_null=bool(markers)))
        for batch in batches:
            yield pa.RecordBatch.from_arrays(
                [_blank_as_empty(pc.fill_null(column, "") if markers else column)
                 for column in batch.columns], placeholders)
    except pa.ArrowInvalid as e:
        if str(e).startswith("Empty CSV file"):  # blank lines only, or a header alone
            return
        if "UTF8" in str(e):
            error = csv_format.first_invalid_utf8(fmt)
            if error is not None:
                raise error from None
        raise _located(fmt, str(e)) from None


def _blank_as_empty(cells: pa.Array) -> pa.Array:
    """A cell of spaces only read as the empty cell it stands for (csv_format.is_blank: every
    reader reads it as missing); other cells as they are. One pass when there is none."""
    blank = pc.ascii_is_space(cells)
    if not pc.any(blank).as_py():
        return cells
    return pc.if_else(blank, "", cells)


class FileSurvey(NamedTuple):
    types: list[ColumnType]
    ranges: list[ByteRange]
    # Per column: every number in it is a whole int64 ('181', '181.0'), so a model reading the
    # column as integers can read a FLOAT column (what pandas writes for ints with gaps).
    whole: list[bool] | None = None


def survey(fmt: csv_format.CsvFormat, range_bytes: int | None = None) -> FileSurvey:
    """One streaming pass: every column's type as CsvExampleGen infers it (a NaN cell in a
    column of numbers is missing: column_types.py), and the byte ranges Beam's workers can read
    on their own (of about range_bytes, default RANGE_BYTES). A column of numbers holding an
    infinite one is refused, naming its line (refuse_not_finite)."""
    columns = [ColumnSurvey() for _ in fmt.header]
    whole = ByteRange(fmt.header_offset, None, skip_header=True)
    for batch in read_batches(fmt, whole):
        for column, cells in zip(columns, batch.columns):
            column.add(cells)
    refuse_not_finite(fmt, columns)
    types = [column.type for column in columns]
    integers = [column.whole for column in columns]
    if fmt.gzip or any(column.line_breaks for column in columns):
        return FileSurvey(types, [whole], integers)
    return FileSurvey(types, _line_ranges(fmt, range_bytes or RANGE_BYTES) or [whole], integers)


def refuse_not_finite(fmt: csv_format.CsvFormat, columns: list[ColumnSurvey]) -> None:
    """CsvFormatError `<file>: line N: column 'x' holds 'inf': not a finite number ...` for the
    first column of numbers (INT or FLOAT once the whole file is read) that holds an infinite
    number: written as a float it would be inf, and a model's mean, scale and output with it;
    in a text column 'inf' is text. Every reader of the whole file calls this after surveying
    it (the ExampleGen's survey, init's table_sample)."""
    for name, column in zip(fmt.header, columns):
        if column.not_finite and column.type in (ColumnType.INT, ColumnType.FLOAT):
            raise csv_format.not_finite_error(fmt, name)


def _line_ranges(fmt: csv_format.CsvFormat, range_bytes: int) -> list[ByteRange]:
    """Ranges of about range_bytes that start right after a "\n" (no value holds one); [] when
    lines end in a lone "\r" (old Mac files: read whole)."""
    size = fmt.path.stat().st_size
    with fmt.path.open("rb") as f:
        f.seek(fmt.header_offset)
        header = f.readline()
        if b"\r" in header.rstrip(b"\r\n") or not header.endswith(b"\n"):
            return []
        bounds = [f.tell()]
        while bounds[-1] + range_bytes < size:
            f.seek(bounds[-1] + range_bytes)
            f.readline()
            if f.tell() >= size:
                break
            bounds.append(f.tell())
    bounds.append(size)
    return [ByteRange(start, end, skip_header=False) for start, end in zip(bounds, bounds[1:])]
