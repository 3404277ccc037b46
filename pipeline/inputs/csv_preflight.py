"""Preflight of the input CSV: what the ExampleGen cannot read is reported in one line before TFX
starts, not as a Beam stack trace minutes later.

The file is opened as every reader of it opens it (components/ingest/csv_format.py: BOM,
line endings, gzip, another delimiter, binary or UTF-16 content). The ExampleGen takes the first
line as the header, skips blank lines and fails on a row whose field count differs from the
header's. This check reads the header and the first PREFLIGHT_ROWS data rows the same way
(csv_format.rows: a row that is not CSV is named by its line), and also checks that the header
has the spec's columns (once each) and that numeric columns hold numbers (an empty or blank
cell, one of the spec's missing_values, or NaN in a numeric column is missing, and an infinite
number is refused with its line, as for every reader: csv_format.py).
Reading a sample keeps it quick on a large file; the data contract
(GreatExpectationsValidator) checks every row.
"""
from __future__ import annotations

import json
from pathlib import Path

from components.contract.data_errors import DataValidationError
from components.ingest import csv_format
from pipeline.config.dataset_spec import DatasetSpec

PREFLIGHT_ROWS = 10_000


class InputError(DataValidationError):
    """The input CSV cannot be read as the spec describes; the message names file and problem."""


def _check_header(path: Path, fmt: csv_format.CsvFormat, spec: DatasetSpec) -> None:
    header = list(fmt.header)
    _check_header_names(path, fmt)
    missing = [name for name in spec.column_names if name not in header]
    if missing:
        raise InputError(f"{path}: the header lacks column(s) the spec needs: "
                         f"{', '.join(missing)} (spec: {spec.spec_path})"
                         + _renamed_hint(missing, header))
    extra = [name for name in header if name not in spec.column_names]
    if extra:
        raise InputError(f"{path}: the header has column(s) the spec does not list: "
                         f"{', '.join(extra)}; add them to {spec.spec_path} (role: ignore) or "
                         "drop them")


def _renamed_hint(missing: list[str], header: list[str]) -> str:
    """'; the file has 'Sex': rename it 'sex'' when a missing column is in the header in other
    case or with spaces around it: the likely mistake. '' otherwise."""
    for name in missing:
        close = [h for h in header if h != name and h.strip().lower() == name.strip().lower()]
        if close:
            return f"; the file has '{close[0]}': rename it '{name}'"
    return ""


def _check_header_names(path: Path, fmt: csv_format.CsvFormat) -> None:
    """Named columns, each once."""
    problem = csv_format.header_problem(fmt)
    if problem:
        raise InputError(f"{path}: {problem}")


def _sample_rows(fmt: csv_format.CsvFormat, rows: int):
    """The first `rows` data rows as (line, cells), blank lines skipped as the ExampleGen skips
    them; a row that is not CSV raises InputError naming its line."""
    try:
        for count, numbered in enumerate(csv_format.rows(fmt), start=1):
            yield numbered
            if count >= rows:
                return
    except csv_format.CsvFormatError as e:
        raise InputError(str(e)) from None


def _check_rows(path: Path, fmt: csv_format.CsvFormat, spec: DatasetSpec, rows: int,
                skip: tuple[str, ...] = ()) -> None:
    header = list(fmt.header)
    numeric = [(header.index(f.name), f) for f in spec.features
               if f.holds_numbers and f.name in header and f.name not in skip]
    not_numbers: dict[str, list] = {}
    data_rows = 0
    for line, row in _sample_rows(fmt, rows):
        data_rows += 1
        for index, feature in numeric:
            cell = row[index]
            if fmt.is_missing_number(cell) or csv_format.is_number(cell):
                continue
            if csv_format.is_not_finite(cell):  # as the ingestion refuses it, by its line
                raise InputError(f"{path}: line {line}: "
                                 + csv_format.not_finite_problem(feature.name, cell))
            not_numbers.setdefault(feature.name, []).append((line, cell))
    if data_rows == 0:
        raise InputError(f"{path}: the file has a header but no data rows")
    if not_numbers:
        name, found = next(iter(not_numbers.items()))
        line, cell = found[0]
        more = (f" and {len(found) - 1} more in the first {data_rows:,} rows"
                if len(found) > 1 else "")
        others = (f"; also in column(s) {', '.join(list(not_numbers)[1:])}"
                  if len(not_numbers) > 1 else "")
        hint = ""
        if csv_format.is_marker(cell):
            hint = (f"; if {cell!r} marks a missing value, list it under missing_values: in "
                    f"{spec.spec_path or 'spec.yaml'} (docs/datasets.md)")
        raise InputError(
            f"{path}: column '{name}' ({spec.feature(name).type} in the spec) holds text that "
            f"is not a number: {cell!r} on line {line}{more}{others}{hint}")


def _check_scoring_header(path: Path, header: list[str], spec: DatasetSpec,
                          reserved: tuple[str, ...]) -> None:
    """A file to score: every column the model reads, the label and unused columns optional,
    nothing the spec does not list."""
    missing = [f.name for f in spec.model_features if f.name not in header]
    if missing:
        raise InputError(f"{path}: column '{missing[0]}' is missing: the model reads it"
                         + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else "")
                         + _renamed_hint(missing, header))
    taken = [name for name in header if name in reserved]
    if taken:
        raise InputError(f"{path}: column '{taken[0]}' has a name scoring keeps for its own "
                         "columns (the row key, the prediction); rename it or drop it")
    unknown = [name for name in header if name not in spec.column_names]
    if unknown:
        raise InputError(f"{path}: column '{unknown[0]}' is not in the spec ({spec.spec_path}): "
                         "the model was not trained on it; drop it from the file"
                         + (f" (also unknown: {', '.join(unknown[1:])})" if unknown[1:] else "")
                         + _ignore_hint(unknown))


def _ignore_hint(unknown: list[str]) -> str:
    """How to keep a column the model should not read (an id to join the predictions on):
    declared `role: ignore` in the spec, the file scores and the predictions keep the column.
    The spec lists the training CSV's columns too, so the hint says that file needs it then."""
    which = "it" if len(unknown) == 1 else "each"
    return (f", or keep {which} (an id to join the predictions on) by listing it in the spec as "
            f"`{_yaml_key(unknown[0])}: {{type: categorical, role: ignore}}` (the model does not "
            "read it; the training CSV then needs the column too)")


def _yaml_key(name: str) -> str:
    """The name as a spec.yaml key, quoted when YAML would read it as something else (`yes`,
    `null`, `a: b`, `#id`); a JSON string is a YAML string."""
    import yaml

    try:
        if yaml.safe_load(f"{name}: x") == {name: "x"}:
            return name
    except yaml.YAMLError:
        pass
    return json.dumps(name)


def _is_class(cell: str, classes: tuple[str, ...]) -> bool:
    """The label's cell names one of the classes, as text or as the same number ('1.0', '1')."""
    if cell in classes:
        return True
    number = csv_format.is_number
    return number(cell) and any(number(c) and float(c) == float(cell) for c in classes)


def _check_cells(path: Path, fmt: csv_format.CsvFormat, spec: DatasetSpec,
                 integer_columns: list[str], required: list[str], rows: int) -> None:
    """Cell by cell, what the scoring run would refuse later without a line number (the
    ingestion and TFDV check every row; this names the first offending cell quickly):
    whole numbers where the model reads integers; a value in every column the schema requires;
    and, when the file has the label (it is then also evaluated), a known class in every row."""
    header = list(fmt.header)
    unread = set(spec.unread_columns)  # no stage reads them: anything may be there
    integers = [(header.index(name), name) for name in integer_columns
                if name in header and name not in unread]
    needed = [(header.index(name), name) for name in required
              if name in header and name != spec.label and name not in unread]
    label = header.index(spec.label) if spec.label in header else None
    numbers = {f.name for f in spec.features if f.holds_numbers}
    for line, row in _sample_rows(fmt, rows):
        for index, name in integers:
            cell = row[index] if index < len(row) else ""
            # A whole decimal (181.0, as pandas writes ints with gaps) is read as its integer.
            if csv_format.is_number(cell) and csv_format.whole_number(cell) is None:
                raise InputError(f"{path}: column '{name}' holds {cell!r} on line {line}: the "
                                 "model reads it as whole numbers")
        for index, name in needed:
            cell = row[index] if index < len(row) else ""
            if fmt.is_missing_number(cell) if name in numbers else fmt.is_missing(cell):
                raise InputError(
                    f"{path}: column '{name}' is empty on line {line}: the model's schema "
                    f"({spec.schema_path}) requires a value in every row (value_count min 1: its "
                    "training data had none missing)")
        if label is None:
            continue
        cell = row[label] if label < len(row) else ""
        if fmt.is_missing_number(cell) if spec.label in numbers else fmt.is_missing(cell):
            raise InputError(
                f"{path}: the label '{spec.label}' is empty on line {line}: a file to score has "
                "the label in every row (its rows are then also evaluated) or not at all (drop "
                "the column)")
        if not spec.is_regression and not _is_class(cell, spec.classes):
            raise InputError(
                f"{path}: the label '{spec.label}' holds {cell!r} on line {line}, not one of the "
                f"classes the model predicts ({', '.join(spec.classes)})")


def check_scoring_csv(spec: DatasetSpec, integer_columns: list[str] = (),
                      reserved: tuple[str, ...] = (), rows: int = PREFLIGHT_ROWS,
                      required: list[str] = ()) -> None:
    """check_csv for a file to score with the spec's model (spec.csv_path): the label and the
    columns the model does not read may be absent, and those no stage reads
    (spec.unread_columns) may hold anything; `integer_columns` must hold whole numbers,
    `required` a value in every row, the label (when present) a class in every row; `reserved`
    names no column may have."""
    path = Path(spec.csv_path)
    try:
        fmt = csv_format.inspect(path, spec.missing_values)
    except csv_format.CsvFormatError as e:
        raise InputError(str(e)) from None
    _check_header_names(path, fmt)
    _check_scoring_header(path, list(fmt.header), spec, reserved)
    _check_rows(path, fmt, spec, rows, skip=spec.unread_columns)
    _check_cells(path, fmt, spec, list(integer_columns), list(required), rows)


def check_csv(spec: DatasetSpec, rows: int = PREFLIGHT_ROWS) -> None:
    """Raise InputError naming the file and the first problem found in spec.csv_path."""
    path = Path(spec.csv_path)
    try:
        fmt = csv_format.inspect(path, spec.missing_values)
    except csv_format.CsvFormatError as e:
        raise InputError(str(e)) from None
    _check_header(path, fmt, spec)
    _check_rows(path, fmt, spec, rows)
