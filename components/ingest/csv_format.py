"""How the pipeline opens an input CSV: one reader that every place reading the CSV goes through
(the preflight, the ExampleGen executor, the expectation and schema drafts, `make predict`, the
registered model's input example, the bench), so that they all see the same header and rows.

Spreadsheet exports differ from a plain CSV in ways that are read as if they were not there:

- a UTF-8 byte order mark before the header;
- CRLF (or old Mac CR) line endings: the csv module, pandas and pyarrow all take them;
- gzip compression, when the file is named `.gz` (`data.csv.gz`);
- Excel's `sep=,` hint line before the header;
- spaces around a header name (`fare ,tips`): names are compared and used stripped.

and in ways that are refused with a message naming the file and what it seems to be instead:
another delimiter (semicolon, tab, pipe), gzip content under a `.csv` name (or a `.gz` name on
plain text), a ZIP/Excel/other compressed file, UTF-16 or UTF-32 text, binary data. Values are
UTF-8; the first byte that is not is named by offset and line where a reader meets it.

A row that is not CSV stops every reader with `<file>: line N: <problem>`, N as a text editor
numbers the file's lines (the header is line 1, or 2 after a `sep=,` line): a row with more or
fewer fields than the header (also what a carriage return inside an unquoted value makes of its
row), a quote never closed, a NUL byte, a byte that is not UTF-8. rows() reads the rows with
their lines and those checks; pyarrow and pandas do not say where they failed, so their readers
ask it (first_malformed_row) when they fail.

Missing values: an empty cell is always missing, and so is a cell of spaces only (BLANK: `, ,`,
or what a file written with ", " after each comma holds for an empty cell). In a column of
numbers a cell float() reads as NaN (`nan`, `NaN`: how numpy and pandas write a missing float)
is missing too; in a text column it is text. A cell float() reads as infinite (`inf`, `-inf`,
`1e999`), or beyond float32 (what the model reads numbers as), is refused in a column of
numbers: no reader may let it through as a value (not_finite_problem). Spaces around a number
are not part of it (` 39.1` is 39.1, as float(), int() and pandas read it).

A spec may list more cells read as missing (`missing_values: [NA]`: R exports, pandas'
na_rep); inspect() takes that list and every reader
honours it the same way, through this module: pyarrow's null_values (read_batches), pandas'
na_values (read_frame), is_missing() for the csv module. Matches are exact (case and spaces
count); quoted or not, a marker is missing. With no list a cell such as `NA` is text, as in
TFX's CsvExampleGen.

Only the standard library is imported here (pandas on use), so the preflight stays quick.
"""
from __future__ import annotations

import codecs
import csv
import dataclasses
import decimal
import gzip
import io
import re
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping, TextIO

DELIMITER = ","
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = codecs.BOM_UTF8
# Bytes enough for the header of any sane CSV (and the dialect checks on it).
SNIFF_BYTES = 64 * 1024

# What a file that is not a CSV usually is, by its first bytes.
_NOT_CSV = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one): export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an OLE document (an old .xls workbook?): export the sheet as CSV"),
    (b"BZh", "bzip2-compressed: decompress it, or gzip it and name it .csv.gz"),
    (b"\xfd7zXZ\x00", "xz-compressed: decompress it, or gzip it and name it .csv.gz"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed: decompress it, or gzip it and name it .csv.gz"),
)
# Longest first: the UTF-32 little-endian mark starts with the UTF-16 one.
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
# Delimiters spreadsheets export with, and how a message names them.
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}
_SEP_HINT = re.compile(rb"sep=(.)(\r\n|\n|\r)")
# Cells that exports commonly write for a missing number (compared lower case): what `make init`
# looks for, and what the preflight names when an undeclared one stops a numeric column.
KNOWN_MISSING_MARKERS = frozenset({"na", "n/a", "nan", "null", "none", "?", "-", "--", "missing",
                                   "#n/a"})


def is_marker(value: str) -> bool:
    return value.strip().lower() in KNOWN_MISSING_MARKERS


def marked_numbers(counts: Mapping[str, int]) -> dict[str, int]:
    """{marker: cells} when a column's values ({value: cells}; empty cells ignored) are numbers
    but for missing-value markers, with two different numbers at least; {} otherwise.

    However few the numbers: R's movies table writes a budget on 9% of rows and NA on the rest.
    One number and a marker is a flag, a category (as a number it would be one value)."""
    markers: dict[str, int] = {}
    numbers: set[float] = set()
    for value, cells in counts.items():
        if value == "":
            continue
        if is_marker(value):
            markers[value] = markers.get(value, 0) + cells
            continue
        try:
            numbers.add(float(value))
        except ValueError:
            return {}
    return markers if len(numbers) >= 2 else {}


class CsvFormatError(ValueError):
    """The file cannot be read as a comma-separated UTF-8 CSV; the message names the file, what
    it seems to be and what to do."""


@dataclasses.dataclass(frozen=True)
class CsvFormat:
    """What inspect() found: how to get at the header and rows of one CSV file."""
    path: Path
    gzip: bool
    # Bytes (of the decompressed content) before the header line: a BOM, a `sep=,` line.
    header_offset: int
    # The header's line number: 2 after a `sep=,` line.
    header_line: int
    # The header's column names, spaces around each stripped; () for an empty first line.
    header: tuple[str, ...]
    # Cells read as missing besides the empty one (the spec's missing_values), exact strings.
    missing_values: tuple[str, ...] = ()
    # What ends a line as a text editor counts lines: "\n" (LF and CRLF files; a stray "\r"
    # inside a line does not end it), "\r" in an old Mac file, which has no "\n".
    line_end: str = "\n"

    def is_missing(self, cell: str) -> bool:
        """An empty or blank cell, or one of missing_values: what every reader reads as
        missing."""
        return is_blank(cell) or cell in self.missing_values

    def is_missing_number(self, cell: str) -> bool:
        """What every reader reads as missing in a column of numbers: is_missing, or NaN."""
        return self.is_missing(cell) or is_nan(cell)

    def open_binary(self) -> BinaryIO:
        """The decompressed bytes from the header line on (BOM and hint line skipped)."""
        stream = gzip.open(self.path, "rb") if self.gzip else self.path.open("rb")
        if self.header_offset:
            stream.read(self.header_offset)
        return stream

    def open_text(self) -> TextIO:
        """UTF-8 text from the header line on, for csv.reader (newline="" as it wants)."""
        return io.TextIOWrapper(self.open_binary(), encoding="utf-8", newline="")


# ASCII whitespace, as pyarrow's ascii_is_space and str.strip(BLANK) both read it: a cell of
# these only is a missing cell in every reader.
BLANK = " \t\n\v\f\r"
# The largest float32: the model reads numbers as float32, so a larger one would be infinite.
FLOAT32_MAX = 3.4028234663852886e38
_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1


def is_blank(cell: str) -> bool:
    """Empty, or spaces only: a missing cell (a file written with ", " after each comma writes
    an empty cell as " ")."""
    return not cell.strip(BLANK)


def number_value(text: str) -> float | None:
    """What float() reads the cell as (spaces around it ignored), or None when not a number."""
    try:
        return float(text)
    except ValueError:
        return None


def is_nan(text: str) -> bool:
    """float() reads the cell as NaN ('nan', 'NaN', ' -nan'): a missing cell in a column of
    numbers (numpy and pandas write a missing float so)."""
    value = number_value(text)
    return value is not None and value != value


def is_not_finite(text: str) -> bool:
    """float() reads the cell as infinite ('inf', '-Infinity', '1e999'), or as a number beyond
    float32 (the model's number type), where it would be infinite."""
    value = number_value(text)
    return value is not None and value == value and abs(value) > FLOAT32_MAX


def is_number(text: str) -> bool:
    """The cell reads as a finite number (what float() takes: '1', '-2.5e3', ' 7 '); 'nan' and
    'inf' are not numbers here: one is missing, the other refused (see the module docstring)."""
    value = number_value(text)
    return value is not None and value == value and abs(value) <= FLOAT32_MAX


def whole_number(text: str) -> int | None:
    """The int64 a cell of a whole number writes ('181', '181.0', '3750.00', '1e3', ' 7 '), or
    None (a fraction, text, beyond int64). Decimal, not float: '12345678901234567.0' stays
    exact."""
    try:
        value = int(text)
    except ValueError:
        try:
            exact = decimal.Decimal(text.strip(BLANK))
        except decimal.InvalidOperation:
            return None
        if not exact.is_finite() or exact != exact.to_integral_value():
            return None
        value = int(exact)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def not_finite_problem(column: str, cell: str) -> str:
    """What every reader says of an infinite cell in a column of numbers, after `line N: `."""
    return (f"column '{column}' holds {cell!r}: not a finite number (the model reads numbers "
            f"up to ±{FLOAT32_MAX:.1e}); write the value, or leave the cell empty when it is "
            "missing")


def first_cell(fmt: "CsvFormat", column: str, matches) -> tuple[int, str] | None:
    """(line, cell) of the column's first cell that matches(cell), or None: for a reader that
    found such a cell without knowing its line (pyarrow's batches). Reads the file up to it."""
    index = fmt.header.index(column)
    for line, row in rows(fmt):
        if matches(row[index]):
            return line, row[index]
    return None


def not_finite_error(fmt: "CsvFormat", column: str) -> "CsvFormatError":
    """The error naming the column's first infinite cell and its line."""
    found = first_cell(fmt, column, is_not_finite)
    if found is None:  # a caller found one: the file changed since
        return CsvFormatError(f"{fmt.path}: column '{column}' holds a number that is not "
                              "finite")
    line, cell = found
    return _malformed(fmt, line, not_finite_problem(column, cell))


def count_line_above_header(fmt: CsvFormat) -> str | None:
    """When what was read as the header looks like a line above the real one (scikit-learn's raw
    boston_house_prices.csv starts `506,13,,,`: its row and column counts), what to say about it:
    fewer named cells than the next line, all of them numbers, and the next line all names that
    are not numbers. None otherwise."""
    named = [n for n in fmt.header if n]
    if not named or not all(is_number(n) for n in named):
        return None
    try:
        with fmt.open_text() as f:
            rows = csv.reader(f)
            next(rows, None)
            below = [cell.strip() for cell in next(rows, [])]
    except (UnicodeDecodeError, csv.Error):  # the reader's own checks will say what is wrong
        return None
    if len(below) <= len(named) or not all(c and not is_number(c) for c in below):
        return None
    line = fmt.header_line
    return (f"line {line} ({','.join(named)}) looks like a count or title line, not a header, "
            f"and the header seems to be on line {line + 1} ({', '.join(below[:5])}"
            f"{', ...' if len(below) > 5 else ''}): remove line {line}")


def header_problem(fmt: CsvFormat) -> str | None:
    """What is wrong with the header's names, for the preflight and `init` alike (they refuse
    the same headers), or None: an empty first line, a count line read as the header, columns
    without a name, a name given twice."""
    header = list(fmt.header)
    if not any(name.strip() for name in header):
        return "the first line is empty; expected the header"
    unnamed = [number for number, name in enumerate(header, start=1) if not name]
    if unnamed:
        return count_line_above_header(fmt) or _unnamed(fmt, unnamed)
    positions: dict[str, list[int]] = {}
    for number, name in enumerate(header, start=1):
        positions.setdefault(name, []).append(number)
    for name, numbers in positions.items():
        if len(numbers) > 1:
            listed = ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"
            return (f"the header names column '{name}' {len(numbers)} times (columns {listed}); "
                    "rename them")
    return None


ROW_INDEX_ROWS = 20  # rows read to tell a row index (1, 2, 3, ...) in an unnamed first column


def _unnamed(fmt: CsvFormat, unnamed: list[int]) -> str:
    """Columns without a name: a row index as R's write.csv and pandas' to_csv write it first,
    a trailing ',' at the end, or just that."""
    width = len(fmt.header)
    said = (f"column {unnamed[0]} of the header has no name" if len(unnamed) == 1 else
            f"columns {', '.join(map(str, unnamed))} of the header have no name")
    start = _row_numbers_from(fmt) if unnamed == [1] else None
    if start is not None:
        return (f"{said} and holds {start}, {start + 1}, {start + 2}, ...: a row index, as R's "
                "write.csv and pandas' to_csv write one; write the file without it (R: "
                "row.names = FALSE, pandas: index=False) or give the column a name")
    if unnamed == list(range(width - len(unnamed) + 1, width + 1)):
        return f"{said} (a trailing ',' on the header line?); name or drop {_them(unnamed)}"
    return f"{said}; name or drop {_them(unnamed)}"


def _them(unnamed: list[int]) -> str:
    return "it" if len(unnamed) == 1 else "them"


def _row_numbers_from(fmt: CsvFormat) -> int | None:
    """0 or 1 when the first column of the first rows counts up by one from it, else None."""
    try:
        with fmt.open_text() as f:
            rows = csv.reader(f)
            next(rows, None)
            cells = [row[0].strip() for row, _ in zip(rows, range(ROW_INDEX_ROWS)) if row]
    except (UnicodeDecodeError, csv.Error):  # the reader's own checks will say what is wrong
        return None
    if not cells or not all(c.isdigit() for c in cells):
        return None
    start = int(cells[0])
    counts_up = [int(c) for c in cells] == list(range(start, start + len(cells)))
    return start if start in (0, 1) and counts_up else None


def is_gzip_name(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def inspect(path: str | Path, missing_values: tuple[str, ...] | list[str] = ()) -> CsvFormat:
    """The file's format, or CsvFormatError naming the file and why it is not a CSV we read.
    missing_values: cells its readers read as missing, as an empty cell (the spec's list)."""
    path = Path(path)
    if not path.exists():
        raise CsvFormatError(f"{path}: file not found")
    if not path.is_file():
        raise CsvFormatError(f"{path}: not a file")
    with path.open("rb") as f:
        magic = f.read(8)
    compressed = magic.startswith(GZIP_MAGIC)
    if compressed and not is_gzip_name(path):
        raise CsvFormatError(
            f"{path}: the file is gzip-compressed but named {path.suffix or 'without .gz'}; "
            f"name it {path.name}.gz (and the spec's csv: or --csv with it) to read it as is, "
            "or decompress it")
    if not compressed and is_gzip_name(path) and magic:
        raise CsvFormatError(f"{path}: the name ends in .gz but the file is not gzip-compressed;"
                             f" rename it to {path.name[:-3]}")
    for start, what in _NOT_CSV:
        if magic.startswith(start):
            raise CsvFormatError(f"{path}: not a text CSV file ({what})")
    try:
        with (gzip.open(path, "rb") if compressed else path.open("rb")) as f:
            head = f.read(SNIFF_BYTES)
    except (OSError, EOFError) as e:  # a truncated or corrupt gzip stream
        raise CsvFormatError(f"{path}: not a readable gzip file ({e})") from None
    for bom, encoding in _WIDE_BOMS:
        if head.startswith(bom):
            raise CsvFormatError(
                f"{path}: the file is {encoding} text (byte order mark {bom.hex(' ').upper()}); "
                "the pipeline reads UTF-8: save it as CSV UTF-8")
    offset = len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0
    if not head[offset:].strip():
        raise CsvFormatError(f"{path}: the file is empty; expected a header line and data rows")
    line_end = _line_end(head[offset:])
    nul = head.find(b"\0")
    if nul >= 0:
        line = 1 + head[:nul].count(line_end.encode())
        raise CsvFormatError(f"{path}: line {line}: not a text CSV file (binary data: a NUL "
                             f"byte at byte {nul})")
    hint = _SEP_HINT.match(head, offset)
    header_line = 1
    if hint:
        delimiter = hint.group(1).decode("latin-1")
        if delimiter != DELIMITER:
            raise _other_delimiter(path, delimiter,
                                   f"its first line is {hint.group(0).decode('latin-1').strip()!r}")
        offset, header_line = hint.end(), 2
    header = _parse_header(path, head, offset, header_line)
    _check_delimiter(path, head, offset, header)
    return CsvFormat(path=path, gzip=compressed, header_offset=offset, header_line=header_line,
                     header=tuple(name.strip() for name in header),
                     missing_values=tuple(dict.fromkeys(v for v in missing_values if v)),
                     line_end=line_end)


def _line_end(head: bytes) -> str:
    """What ends a line in the file: CR in an old Mac file (CRs and no LF in its first bytes),
    else LF (a CRLF line ends at its LF)."""
    return "\r" if b"\r" in head and b"\n" not in head else "\n"


def _parse_header(path: Path, head: bytes, offset: int, line: int) -> list[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        text = decoder.decode(head[offset:], final=len(head) < SNIFF_BYTES)
    except UnicodeDecodeError as e:
        text = head[offset:offset + e.start].decode("utf-8")
        if "\n" not in text and "\r" not in text:  # the bad byte is in the header line
            raise invalid_utf8(path, head[offset + e.start], offset + e.start, line) from None
    return next(csv.reader(io.StringIO(text, newline="")), [])


def _check_delimiter(path: Path, head: bytes, offset: int, header: list[str]) -> None:
    """A header that splits into more names on another delimiter than on commas is from a file
    exported with that delimiter: every row would be read as one field."""
    lines = head[offset:].decode("utf-8", errors="replace").splitlines()
    line = lines[0]
    for delimiter in _OTHER_DELIMITERS:
        fields = next(csv.reader([line], delimiter=delimiter), [])
        if len(fields) > max(len(header), 1):
            raise _other_delimiter(
                path, delimiter, f"its header splits into {len(fields)} names on "
                f"{delimiter!r} and {len(header)} on ','")
    spaced = _space_fields(line)
    if len(header) == 1 and len(spaced) > 1 and _rows_split_alike(lines[1:], len(spaced)):
        raise _other_delimiter(path, " ", f"its header splits into {len(spaced)} names on "
                               "spaces and 1 on ','")


def _space_fields(line: str) -> list[str]:
    """A line's fields between runs of spaces (as R's write.table and statsmodels' data files
    write them: `"OBS" "GPA" "TUCE"`, or aligned columns), quotes honoured."""
    fields = next(csv.reader([line.strip(" ")], delimiter=" ", skipinitialspace=True), [])
    return [f for f in fields if f != ""]


def _rows_split_alike(lines: list[str], width: int) -> bool:
    """The first data line has no comma and as many space-separated fields as the header: a
    one-column CSV whose name holds a space has values that split otherwise (or one line)."""
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        return False
    return len(next(csv.reader([first]), [])) == 1 and len(_space_fields(first)) == width


def _other_delimiter(path: Path, delimiter: str, evidence: str) -> CsvFormatError:
    name = _OTHER_DELIMITERS.get(delimiter, "space" if delimiter == " " else repr(delimiter))
    # Spreadsheets in locales with a decimal comma export ';'-separated values, 3,5 for 3.5.
    decimals = (" and '.' as the decimal point (a ';' file usually writes 3,5 for 3.5)"
                if delimiter == ";" else "")
    return CsvFormatError(
        f"{path}: the file seems to be {name}-delimited ({evidence}); the pipeline reads "
        f"comma-separated values: export it with ',' as the delimiter{decimals}")


def invalid_utf8(path: Path, byte: int, offset: int, line: int) -> CsvFormatError:
    """A text file in another encoding is still text: say which byte, and what it would be in
    Windows-1252 (Excel's plain "CSV" on Windows, the usual source), with the way out."""
    guess = ""
    try:
        char = bytes([byte]).decode("cp1252")
        if char.isprintable() and not char.isspace():
            guess = (f": {char!r} in Windows-1252, the encoding of Excel's plain CSV on "
                     "Windows")
    except UnicodeDecodeError:
        pass
    return CsvFormatError(
        f"{path}: line {line}: not UTF-8 text (invalid UTF-8 byte 0x{byte:02x} at byte offset "
        f"{offset}{guess}); the pipeline reads UTF-8: save it as CSV UTF-8, or convert it "
        f"(iconv -f WINDOWS-1252 -t UTF-8 {path.name} > {path.stem}-utf8{path.suffix})")


def first_invalid_utf8(fmt: CsvFormat) -> CsvFormatError | None:
    """The error naming the first byte that is not UTF-8 (line and offset), or None. Streams
    the file: for a reader that met the bad byte somewhere ahead of its own position."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = fmt.header_offset, fmt.header_line
    line_end = fmt.line_end.encode()
    with fmt.open_binary() as f:
        while True:
            block = f.read(1 << 20)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as e:
                # The decoder may hold up to 3 bytes of an unfinished character from the block
                # before; e.start counts from those.
                pending = len(e.object) - len(block)
                at = e.start - pending
                return invalid_utf8(fmt.path, e.object[e.start], offset + at,
                                    line + e.object[:e.start].count(line_end))
            if not block:
                return None
            offset += len(block)
            line += block.count(line_end)


class _NumberedLines:
    """The lines csv.reader reads, numbered as a text editor numbers them: csv.reader (and the
    text file under it, newline="") also ends a line at a lone carriage return, which an editor
    shows inside its line. A NUL byte stops the reading here: Python 3.10's csv module refuses
    it without a line, pyarrow reads it as data."""

    def __init__(self, text: TextIO, fmt: CsvFormat):
        self._text, self._fmt = text, fmt
        self.line = fmt.header_line  # the line the next text read starts on
        self.last_line = fmt.header_line  # the line the last text read started on
        self.cut_by_cr = False  # the last text read ended at a carriage return ending no line
        self.at_end = False  # the reader asked for more after the last line

    def __iter__(self) -> "_NumberedLines":
        return self

    def __next__(self) -> str:
        try:
            text = next(self._text)
        except StopIteration:
            self.at_end = True
            raise
        self.last_line = self.line
        if "\0" in text:
            raise _malformed(self._fmt, self.line,
                            "not a text CSV file (binary data: a NUL byte)")
        if text.endswith(self._fmt.line_end):
            self.line += 1
        self.cut_by_cr = text.endswith("\r") and self._fmt.line_end == "\n"
        return text


def _malformed(fmt: CsvFormat, line: int, problem: str) -> CsvFormatError:
    return CsvFormatError(f"{fmt.path}: line {line}: {problem}")


def rows(fmt: CsvFormat) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) for each data row, blank lines skipped; `line` is where the row starts.
    Raises CsvFormatError `<file>: line N: <problem>` at the first row the ExampleGen cannot
    read: another number of fields than the header's, a quote never closed, a NUL byte, a byte
    that is not UTF-8."""
    width = len(fmt.header)
    with fmt.open_text() as text:
        lines = _NumberedLines(text, fmt)
        reader = csv.reader(lines)
        try:
            next(reader, None)  # the header, as inspect() read it
            while True:
                start, after_cr = lines.line, lines.cut_by_cr
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as e:
                    raise _not_csv(fmt, lines, start, e) from None
                if lines.at_end:  # csv.reader reads past the last line only inside quotes
                    raise _malformed(fmt, start, _unclosed_quote(lines.last_line))
                if row and len(row) != width:
                    raise _malformed(fmt, start, _field_count(row, width, start, lines,
                                                             after_cr))
                if row:
                    yield start, row
        except UnicodeDecodeError:
            raise first_invalid_utf8(fmt) from None


def _not_csv(fmt: CsvFormat, lines: _NumberedLines, start: int,
             error: csv.Error) -> CsvFormatError:
    if "field larger than field limit" in str(error):  # most likely a quote left open
        return _malformed(fmt, start, f"a value longer than {csv.field_size_limit():,} "
                                     "characters starts in this row: is a quote left open? "
                                     '(a quote inside a value is written twice: "")')
    return _malformed(fmt, lines.last_line, f"not valid CSV: {error}")


def _unclosed_quote(last_line: int) -> str:
    return (f"a quote in this row is never closed: every line after it, to the end of the file "
            f"(line {last_line}), would be read as one value; close it (a quote inside a value "
            'is written twice: "")')


def _field_count(row: list[str], width: int, start: int, lines: _NumberedLines,
                 after_cr: bool) -> str:
    """What is wrong with a row of another width than the header, with its likely cause."""
    said = f"the row has {len(row)} field{'s' if len(row) != 1 else ''}, the header has {width}"
    if lines.cut_by_cr or after_cr:
        return (f"{said}: a carriage return (\\r) inside a value ends the row there; remove "
                "it, or quote the value")
    if lines.last_line > start:
        return (f"{said}: the row runs on to line {lines.last_line} inside a quoted value; is a "
                'quote left open? (a quote inside a value is written twice: "")')
    return said


def first_malformed_row(fmt: CsvFormat) -> CsvFormatError | None:
    """The error naming the first row the ExampleGen cannot read (see rows()), or None: for a
    reader that failed without saying where (pyarrow, pandas). Reads the whole file."""
    try:
        for _ in rows(fmt):
            pass
    except CsvFormatError as e:
        return e
    return None


def read_frame(path: str | Path, missing_values: tuple[str, ...] | list[str] = (),
               **read_csv_args):
    """pandas.read_csv on the CSV as inspect() sees it: header names stripped, BOM, hint line
    and compression handled. Pass dtype, usecols, nrows, chunksize, ... as to read_csv.
    missing_values (the spec's) are added to na_values: read as NaN, as pandas reads an empty
    cell by default (a caller that keeps empty cells as "" with keep_default_na=False and no
    na_values gets NaN for a marker: fillna("") makes them alike)."""
    import pandas as pd

    fmt = inspect(path, missing_values)
    if fmt.missing_values:
        given = read_csv_args.get("na_values")
        given = [] if given is None else [given] if isinstance(given, str) else list(given)
        read_csv_args["na_values"] = given + list(fmt.missing_values)
    try:
        frames = pd.read_csv(fmt.open_text(), header=0, names=list(fmt.header), **read_csv_args)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise first_malformed_row(fmt) or e from None
    if read_csv_args.get("chunksize") or read_csv_args.get("iterator"):
        return _located_chunks(fmt, frames)
    return _blank_as_missing(frames)


def _blank_as_missing(frame):
    """Text cells of spaces only as NaN, as pandas reads an empty cell (is_blank: every reader
    reads them as missing; pandas keeps them as text)."""
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object:
            blank = _blank_cells(column)
            if blank.any():
                frame[name] = column.mask(blank)
    return frame


def _blank_cells(column):
    """Which cells of an object column are blank text: in Arrow when the cells are text (a
    Python call per cell costs seconds on a large file), else cell by cell."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        cells = pa.array(column, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return column.map(lambda v: isinstance(v, str) and is_blank(v)).to_numpy(dtype=bool)
    return np.asarray(pc.fill_null(pc.ascii_is_space(cells), False), dtype=bool)


def _located_chunks(fmt: CsvFormat, frames):
    """read_csv's chunks, a parse error replaced by the one naming the row's line (pandas
    counts the lines of the text it read, not the file's)."""
    import pandas as pd

    with frames:
        try:
            for frame in frames:
                yield _blank_as_missing(frame)
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise first_malformed_row(fmt) or e from None
