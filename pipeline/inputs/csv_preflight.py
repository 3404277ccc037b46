"""Preflight of the input CSV: what CsvExampleGen cannot read is reported in one line before TFX
starts, not as a Beam stack trace minutes later.

CsvExampleGen takes the first line as the header, decodes every line as UTF-8, skips blank lines
and fails on a row whose field count differs from the header's. This check reads the header and
the first PREFLIGHT_ROWS data rows the same way, and also checks that the header has the spec's
columns (once each) and that numeric columns hold numbers. Reading a sample keeps it quick on a
large file; the data contract (GreatExpectationsValidator) checks every row.
"""
from __future__ import annotations

import collections
import csv
from pathlib import Path

from components.contract.data_errors import DataValidationError
from pipeline.config.dataset_spec import CATEGORICAL_INT, DatasetSpec

PREFLIGHT_ROWS = 10_000
_SNIFF_BYTES = 64 * 1024


class InputError(DataValidationError):
    """The input CSV cannot be read as the spec describes; the message names file and problem."""


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _check_bytes(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not head.strip():
        raise InputError(f"{path}: the file is empty; expected a header line and data rows")
    nul = head.find(b"\0")
    if nul >= 0:
        raise InputError(f"{path}: not a text CSV file (binary data: a NUL byte at byte {nul})")


def _first_invalid_utf8(path: Path) -> tuple[int, int]:
    """(line number, byte) of the first byte that is not UTF-8. The text reader decodes ahead
    in blocks, so its own position does not say which line holds it."""
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                return number, line[e.start]
    return 0, 0


def _check_header(path: Path, header: list[str], spec: DatasetSpec) -> None:
    if not any(name.strip() for name in header):
        raise InputError(f"{path}: the first line is empty; expected the header")
    if header[0].startswith("\ufeff"):
        raise InputError(f"{path}: the file starts with a byte order mark, which CsvExampleGen "
                         "reads as part of the first column name; save it as UTF-8 without BOM")
    positions = collections.defaultdict(list)
    for number, name in enumerate(header, start=1):
        positions[name].append(number)
    for name, numbers in positions.items():
        if len(numbers) > 1:
            listed = ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"
            raise InputError(f"{path}: the header names column '{name}' {len(numbers)} times "
                             f"(columns {listed})")
    missing = [name for name in spec.column_names if name not in positions]
    if missing:
        raise InputError(f"{path}: the header lacks column(s) the spec needs: "
                         f"{', '.join(missing)} (spec: {spec.spec_path})")
    extra = [name for name in header if name not in spec.column_names]
    if extra:
        raise InputError(f"{path}: the header has column(s) the spec does not list: "
                         f"{', '.join(extra)}; add them to {spec.spec_path} (role: ignore) or "
                         "drop them")


def _check_rows(path: Path, reader, header: list[str], spec: DatasetSpec, rows: int) -> None:
    numeric = [(header.index(f.name), f) for f in spec.features
               if f.is_numeric or f.type == CATEGORICAL_INT]
    not_numbers: dict[str, list] = {}
    data_rows = 0
    for row in reader:
        if not row:  # a blank line; CsvExampleGen skips those too
            continue
        data_rows += 1
        if len(row) != len(header):
            raise InputError(f"{path}: line {reader.line_num} has {len(row)} fields, the header "
                             f"has {len(header)}")
        for index, feature in numeric:
            cell = row[index]
            if cell and not _is_number(cell):
                not_numbers.setdefault(feature.name, []).append((reader.line_num, cell))
        if data_rows >= rows:
            break
    if data_rows == 0:
        raise InputError(f"{path}: the file has a header but no data rows")
    if not_numbers:
        name, found = next(iter(not_numbers.items()))
        line, cell = found[0]
        more = (f" and {len(found) - 1} more in the first {data_rows:,} rows"
                if len(found) > 1 else "")
        others = (f"; also in column(s) {', '.join(list(not_numbers)[1:])}"
                  if len(not_numbers) > 1 else "")
        raise InputError(
            f"{path}: column '{name}' ({spec.feature(name).type} in the spec) holds text that "
            f"is not a number: {cell!r} on line {line}{more}{others}")


def check_csv(spec: DatasetSpec, rows: int = PREFLIGHT_ROWS) -> None:
    """Raise InputError naming the file and the first problem found in spec.csv_path."""
    path = Path(spec.csv_path)
    _check_bytes(path)
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
            _check_header(path, header, spec)
            _check_rows(path, reader, header, spec, rows)
        except UnicodeDecodeError:
            line, byte = _first_invalid_utf8(path)
            raise InputError(f"{path}: not a text CSV file (invalid UTF-8 byte 0x{byte:02x} on "
                             f"line {line}); CsvExampleGen reads UTF-8") from None
        except csv.Error as e:
            raise InputError(f"{path}: line {reader.line_num}: not valid CSV: {e}") from None
