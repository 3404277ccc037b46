"""Column types as TFX's CsvExampleGen infers them, on pyarrow string columns a batch at a time.

CsvExampleGen (tfx_bsl.coders.csv_decoder) types each column from every non-empty cell of the
file: INT if Python's int() takes every one and it fits in int64, else FLOAT if float() takes
every one, else STRING; a column empty in every row is UNKNOWN (its features carry no value
list). The common cells are decided with one regular expression per batch (digits are ints,
plain decimals floats); whatever else a cell holds (spaces, underscores, "inf", a 20-digit
number) goes through the same Python test CsvExampleGen applies, once per distinct value.

Two departures from CsvExampleGen, for cells float() takes but that are no number
(csv_format.py's rules): a NaN cell ('nan', 'NaN') is typed as an empty cell is, so a column of
numbers with NaN for missing is INT or FLOAT with missing cells (and a text column keeps it as
text); an infinite cell ('inf', '1e999', or beyond float32) is noted (not_finite), for the
reader to refuse once the column turns out to hold numbers (csv_ranges.refuse_not_finite).
"""
from __future__ import annotations

import enum

import pyarrow as pa
import pyarrow.compute as pc

from components.ingest import csv_format

_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1
# Up to 18 digits always fit in int64 (longer ones are checked in Python).
_SHORT_INT = r"^[+-]?[0-9]{1,18}$"
# Decimals with a point or an exponent, which Python's float() parses and int() does not.
_DECIMAL = r"^[+-]?(([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)$"
_LINE_BREAK = r"[\r\n]"
# A decimal that is a whole int64 as written (181.0, 3750.00), and one that might be beyond
# float32 (an exponent, or 39 digits): both decided in Python when the pattern cannot say.
_WHOLE_DECIMAL = r"^[+-]?[0-9]{1,18}\.0*$"
_MAYBE_HUGE = r"[eE]|[0-9]{39}"


class ColumnType(enum.IntEnum):
    """tfx_bsl's csv_decoder.ColumnType values and order: a column only moves up."""
    UNKNOWN = -1
    INT = 0
    FLOAT = 1
    STRING = 2


def value_type(cell: bytes) -> ColumnType:
    """One cell's type exactly as tfx_bsl's _InferValueType decides it."""
    if not cell:
        return ColumnType.UNKNOWN
    try:
        value = int(cell)
    except ValueError:
        try:
            float(cell)
        except ValueError:
            return ColumnType.STRING
        return ColumnType.FLOAT
    return ColumnType.INT if _INT64_MIN <= value <= _INT64_MAX else ColumnType.STRING


def _matches(cells: pa.Array, pattern: str) -> pa.Array:
    return pc.match_substring_regex(cells, pattern)


class ColumnSurvey:
    """One column's type so far, whether a value held a line break, whether its numbers are all
    whole (`whole`: a FLOAT column of 181.0s may be read as integers) and whether one is not
    finite (`not_finite`), batch by batch."""

    def __init__(self) -> None:
        self.type = ColumnType.UNKNOWN
        self.line_breaks = False
        self.whole = True
        self.not_finite = False

    def add(self, cells: pa.Array) -> None:
        """Take in a batch of the column's cells (a string array, "" for an empty cell)."""
        if self.type == ColumnType.STRING:
            self._check_line_breaks(cells)
            return
        present = cells.filter(pc.not_equal(cells, ""))
        if len(present) == 0:
            return
        # The pattern this column's cells mostly match first; what is left goes on.
        first, second = ((_DECIMAL, ColumnType.FLOAT), (_SHORT_INT, ColumnType.INT))
        if self.type < ColumnType.FLOAT:
            first, second = second, first
        found = self.type
        for pattern, kind in (first, second):
            matched = _matches(present, pattern)
            if pc.any(matched).as_py():
                found = max(found, kind)
                if kind == ColumnType.FLOAT:
                    self._check_decimals(present.filter(matched))
            present = present.filter(pc.invert(matched))
            if len(present) == 0:
                break
        for cell in pc.unique(present).to_pylist() if len(present) else ():
            # int() and float() take spaces around a number, a line break included.
            self.line_breaks = self.line_breaks or "\n" in cell or "\r" in cell
            found = max(found, self._cell_type(cell))
            if found == ColumnType.STRING:
                break
        if found == ColumnType.STRING:
            self._check_line_breaks(cells)
        self.type = found

    def _cell_type(self, cell: str) -> ColumnType:
        """A cell the patterns did not decide: typed as CsvExampleGen types it, but NaN as an
        empty cell; an infinite or fractional number noted."""
        kind = value_type(cell.encode("utf-8"))
        if kind != ColumnType.FLOAT:
            return kind
        if csv_format.is_nan(cell):
            return ColumnType.UNKNOWN
        self.not_finite = self.not_finite or csv_format.is_not_finite(cell)
        self.whole = self.whole and csv_format.whole_number(cell) is not None
        return kind

    def _check_decimals(self, decimals: pa.Array) -> None:
        """Decimals the pattern matched: any beyond float32, any not a whole int64."""
        if not self.not_finite:
            huge = decimals.filter(_matches(decimals, _MAYBE_HUGE))
            self.not_finite = any(csv_format.is_not_finite(c)
                                  for c in pc.unique(huge).to_pylist())
        if self.whole:
            written = decimals.filter(pc.invert(_matches(decimals, _WHOLE_DECIMAL)))
            self.whole = all(csv_format.whole_number(c) is not None
                             for c in pc.unique(written).to_pylist())

    def _check_line_breaks(self, cells: pa.Array) -> None:
        if not self.line_breaks:
            self.line_breaks = bool(pc.any(_matches(cells, _LINE_BREAK)).as_py())
