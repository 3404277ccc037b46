"""A row the ExampleGen cannot read is named `<file>: line N: <problem>` by every reader of the
CSV, N as a text editor numbers the file's lines (the header is line 1): the preflight of `run`
and of `score`, the ingestion's pyarrow reader (which `init` reads through too) and pandas.

Before, the ingestion and `init` said `CSV parse error: Expected 8 columns, got 2: Adelie,Tor`
without a line; the preflight named the line a row spanning several lines ended on (an unclosed
quote: the file's last line); a NUL byte past the first 64 KB went through `score` and `init`
(pyarrow reads it as data), and a quote left open in a row's last value read the rest of the
file into that value without an error.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DATA

from components.ingest import csv_format, csv_ranges
from pipeline.config.dataset_spec import load_spec
from pipeline.dataset_init import table_sample
from pipeline.inputs.csv_preflight import InputError, check_csv, check_scoring_csv

PENGUINS = load_spec(DATA / "penguins" / "spec.yaml")
HEADER, *ROWS = PENGUINS.csv_path.read_bytes().splitlines()
COPIES = 8  # 2,752 rows, 124 KB


def _field(row: bytes, index: int, change) -> bytes:
    cells = row.split(b",")
    cells[index] = change(cells[index])
    return b",".join(cells)


# case -> (what it does to a row whose island is Torgersen, what the error says after the line)
CASES = {
    "carriage return in an unquoted value": (
        lambda row: _field(row, 1, lambda v: v[:3] + b"\r" + v[3:]),
        "the row has 2 fields, the header has 8: a carriage return (\\r) inside a value ends "
        "the row there; remove it, or quote the value"),
    "quote never closed": (
        lambda row: _field(row, 1, lambda v: b'"' + v),
        "a quote in this row is never closed: every line after it, to the end of the file "
        "(line {last}), would be read as one value"),
    "quote never closed in the last value": (
        lambda row: _field(row, 7, lambda v: b'"' + v),
        "a quote in this row is never closed: every line after it, to the end of the file "
        "(line {last}), would be read as one value"),
    "too many fields": (lambda row: row + b",extra", "the row has 9 fields, the header has 8"),
    "too few fields": (lambda row: b",".join(row.split(b",")[:6]),
                       "the row has 6 fields, the header has 8"),
    "NUL byte": (lambda row: _field(row, 1, lambda v: v[:3] + b"\0" + v[3:]),
                 "not a text CSV file (binary data: a NUL byte"),
    "not UTF-8": (lambda row: _field(row, 1, lambda v: v[:3] + b"\xe9" + v[3:]),
                  "not UTF-8 text (invalid UTF-8 byte 0xe9 at byte offset {offset}: 'é' in "
                  "Windows-1252"),
}
# Where the broken row is (a Torgersen row): in the first lines, and past the 64 KB inspect()
# sniffs.
LINES = (5, 2526)


def _broken_csv(folder: Path, case: str, line: int) -> tuple[Path, str]:
    """The penguins rows, COPIES times, with the row on `line` broken; the message expected
    after `<file>: line <line>: `."""
    change, message = CASES[case]
    rows = ROWS * COPIES
    index = next(i for i in range(line - 2, len(rows)) if b",Torgersen," in rows[i])
    assert index == line - 2, "the row on that line has another island"
    rows[index] = change(rows[index])
    data = b"\n".join([HEADER, *rows]) + b"\n"
    path = folder / "data.csv"
    path.write_bytes(data)
    return path, message.format(last=len(rows) + 1, offset=data.find(b"\xe9"))


def _preflight(path: Path) -> None:
    check_csv(PENGUINS.with_csv(path))


def _scoring_preflight(path: Path) -> None:
    check_scoring_csv(PENGUINS.with_csv(path))


def _ingestion(path: Path) -> None:
    csv_ranges.survey(csv_format.inspect(path))


def _init_sample(path: Path) -> None:
    table_sample.read(path, count="species")


READERS = {"preflight (run)": (_preflight, InputError),
           "preflight (score)": (_scoring_preflight, InputError),
           "ingestion": (_ingestion, ValueError),
           "init's whole-file pass": (_init_sample, ValueError)}


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("reader", READERS)
def test_every_reader_names_the_file_and_the_line_of_a_row_that_is_not_csv(tmp_path, reader,
                                                                             case, line):
    path, message = _broken_csv(tmp_path, case, line)
    read, error = READERS[reader]
    with pytest.raises(error) as raised:
        read(path)
    assert str(raised.value).startswith(f"{path}: line {line}: {message}")
    assert "\n" not in str(raised.value)  # one line, never the rows a quote swallowed


# Cases pandas refuses (it reads a short row, or a carriage return, as a row with empty cells,
# and a NUL byte as data).
PANDAS_REFUSES = ("quote never closed", "quote never closed in the last value",
                  "too many fields", "not UTF-8")


@pytest.mark.parametrize("case", PANDAS_REFUSES)
def test_pandas_refusing_a_row_names_its_line_too(tmp_path, case):
    path, message = _broken_csv(tmp_path, case, LINES[1])
    with pytest.raises(ValueError, match=f"^{path}: line {LINES[1]}: "):
        csv_format.read_frame(path, dtype=str)
    with pytest.raises(ValueError, match=f"^{path}: line {LINES[1]}: "):
        for _ in csv_format.read_frame(path, dtype=str, chunksize=500):
            pass


# How a text editor numbers lines, whatever the file's line ends and what comes above the row.
LAYOUTS = {
    "CRLF": lambda text: text.replace(b"\n", b"\r\n"),
    "old Mac CR": lambda text: text.replace(b"\n", b"\r"),
    "Excel sep= line": lambda text: b"sep=,\n" + text,
    "byte order mark": lambda text: b"\xef\xbb\xbf" + text,
    "a quoted value holding a line break above": lambda text: text.replace(
        b"Adelie,Torgersen,39.1", b'Adelie,"Torger\nsen",39.1', 1),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", ["too many fields", "quote never closed"])
def test_the_line_is_the_editors_whatever_the_line_ends(tmp_path, layout, case):
    path, _ = _broken_csv(tmp_path, case, 75)
    data = LAYOUTS[layout](path.read_bytes())
    path.write_bytes(data)
    end = b"\r" if layout == "old Mac CR" else b"\n"
    broken = data.index(b",extra" if case == "too many fields" else b'"Torgersen')
    line = data[:broken].count(end) + 1
    assert line == 75 + (layout in ("Excel sep= line", "a quoted value holding a line break "
                                                       "above"))
    for reader, (read, error) in READERS.items():
        with pytest.raises(error, match=f"^{path}: line {line}: "):
            read(path)


@pytest.mark.parametrize("end", [b"\n", b""], ids=["line end", "no line end"])
def test_a_value_holding_line_breaks_is_still_read(tmp_path, end):
    """A quoted value may hold line breaks, also in the last row (no quote left open), with or
    without a line end after it."""
    path = tmp_path / "data.csv"
    path.write_bytes(b"\n".join([HEADER, *ROWS[:21]]) + b"\n"
                     + b'Adelie,"Torger\nsen",39.1,18.7,181,3750,male,"2007"' + end)
    check_csv(PENGUINS.with_csv(path))
    assert [line for line, _ in csv_format.rows(csv_format.inspect(path))][-2:] == [22, 23]
    found = csv_ranges.survey(csv_format.inspect(path))
    assert len(found.ranges) == 1
    assert table_sample.read(path).rows == 22
