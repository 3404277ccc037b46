"""Rows as pandas frames with the types the spec gives each column, from a CSV or from
CsvExampleGen's TFRecords, a bounded batch at a time.

The expectation suite is drafted from the CSV and checked against what CsvExampleGen wrote, so
both readers must agree on what a value is:

- numeric columns (float, int, categorical_int) are float64 with NaN for missing (an empty or
  blank cell, NaN written as text); a value that is not a finite number (text, 'inf') stays as
  the text it was (the column becomes object), so a type expectation can count and show it
  instead of the reader failing on it;
- categorical columns are text (str) with None for missing, an empty or blank cell
  (CsvExampleGen stores a column of integers as int64, so a categorical code "007" is checked
  as "7": declare such a column categorical_int);
- a column the spec does not list is float64 if its values are numbers, text otherwise.

CsvExampleGen stores floats as float32; they are turned back into the shortest decimal that
round-trips, so a CSV value of 12.45 is checked (and shown) as 12.45, not 12.449999809.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from components.ingest import csv_format, example_batches
from pipeline.config.dataset_spec import CATEGORICAL, DatasetSpec, Feature

# GX validates a whole DataFrame, so the frame's size bounds the memory a validation needs; each
# frame also costs GX ~0.3 s of set-up (its metric graph), which small frames multiply. At most
# BATCH_ROWS rows and BATCH_CELLS cells: 50k rows of a 20-column table (as before the cell
# bound), 5k of a 200-column one. Larger frames are faster but raise the process's peak for the
# rest of a run: 3M cells saved 5 s of 75 at 1.5M scored taxi rows and added ~400 MB; 1.5M cells
# went with a training run's 1.5M/150k peak ratio of 1.44x in one bench (1.21x before; not
# measured apart).
BATCH_ROWS = 150_000
BATCH_CELLS = 1_000_000


def frame_rows(spec: DatasetSpec, batch_rows: int = BATCH_ROWS) -> int:
    """Rows per frame for this spec's columns: at most batch_rows, and BATCH_CELLS cells."""
    return max(1, min(batch_rows, BATCH_CELLS // max(1, len(spec.column_names))))


def normalize(values: pd.Series, feature: Feature | None) -> pd.Series:
    """One column with the type its spec gives it (see the module docstring)."""
    numeric_type = pd.api.types.is_numeric_dtype(values.dtype)
    if feature is None:
        return values.astype("float64") if numeric_type else _as_text(values)
    if feature.type == CATEGORICAL:
        return _number_text(values) if numeric_type else _as_text(values)
    return values.astype("float64") if numeric_type else _parse_numbers(values)


def _as_text(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), None)


def _number_text(values: pd.Series) -> pd.Series:
    """Numbers in a categorical column, as the text a CSV writer would give them (7, not 7.0)."""
    def text(v):
        if pd.isna(v):
            return None
        return str(int(v)) if float(v).is_integer() else str(v)

    return values.astype(object).map(text)


def _parse_numbers(values: pd.Series) -> pd.Series:
    """Text cells of a numeric column as numbers, as the ingestion reads them
    (csv_format.py): spaces around a number ignored, NaN ('nan') missing, and an infinite
    number ('inf'), which the ingestion refuses, kept as the text it was (not a number)."""
    parsed = pd.to_numeric(values, errors="coerce").astype("float64")
    parsed = parsed.where(~(parsed.abs() > csv_format.FLOAT32_MAX))
    not_numbers = values.notna() & parsed.isna()
    if not_numbers.any():  # a NaN written as text is missing, not text
        not_numbers[not_numbers] = ~values[not_numbers].map(csv_format.is_nan).astype(bool)
    if not not_numbers.any():
        return parsed.astype("float64")
    mixed = parsed.astype(object).where(parsed.notna(), None)
    mixed[not_numbers] = values[not_numbers].astype(str)
    return mixed


def _frame(columns: dict[str, pd.Series], spec: DatasetSpec) -> pd.DataFrame:
    known = {f.name: f for f in spec.features}
    ordered = [n for n in spec.column_names if n in columns] + [
        n for n in columns if n not in known]
    return pd.DataFrame({n: normalize(columns[n], known.get(n)) for n in ordered})


def csv_frames(path: str | Path, spec: DatasetSpec,
               batch_rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
    """The CSV in frames of at most batch_rows rows. Only empty cells and the spec's
    missing_values are missing, as in the ExampleGen ("NA" is text unless the spec lists it;
    pandas would otherwise read it as missing)."""
    reader = csv_format.read_frame(path, spec.missing_values, dtype=str, keep_default_na=False,
                                   na_values=[""], chunksize=frame_rows(spec, batch_rows))
    for chunk in reader:
        yield _frame({name: chunk[name] for name in chunk.columns}, spec)


def shortest_decimals(values: np.ndarray) -> np.ndarray:
    """float32 values as the float64 of the shortest decimal that round-trips to each, the
    number `str()` prints (12.45 for float32 12.449999809): what a CSV reader gives for the cell
    the value came from. Vectorized: for 1 to 9 significant digits (9 always round-trip a
    float32), a value rounded to that many digits is kept when it is the first to round-trip.
    Scaling by an exact power of ten (up to 1e22) and dividing rounds once, so the kept value is
    the float64 nearest that decimal; anything else (tiny or huge values, rounding noise) goes
    through str(). Several times faster than astype(str) on a million values."""
    out = values.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.floor(np.log10(np.abs(out)))
    finite = np.isfinite(magnitude)  # not 0, nan or inf: those need no rounding
    todo = np.flatnonzero(finite & (np.abs(magnitude) <= 12))
    for digits in range(1, 10):
        if not len(todo):
            break
        x = out[todo]
        shift = digits - 1 - magnitude[todo]  # decimals kept: |shift| <= 20, exact powers
        scale = 10.0 ** np.abs(shift)
        rounded = np.where(shift >= 0, np.rint(x * scale) / scale, np.rint(x / scale) * scale)
        fits = rounded.astype(np.float32) == values[todo]
        out[todo[fits]] = rounded[fits]
        todo = todo[~fits]
    rest = np.concatenate([np.flatnonzero(finite & (np.abs(magnitude) > 12)), todo])
    if len(rest):
        out[rest] = values[rest].astype(str).astype(np.float64)
    return out


def _first_values(column, num_rows: int) -> pd.Series:
    """A tf.Example feature column (a list per row) as one value per row; [] is missing.

    CSV rows have at most one value per feature; should a list hold more, the first one counts.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_null(column.type):  # the feature was empty in every row of the batch
        return pd.Series([None] * num_rows, dtype=object)
    flat = column.flatten()
    rows, first = np.unique(np.asarray(pc.list_parent_indices(column)), return_index=True)
    if pa.types.is_binary(flat.type) or pa.types.is_large_binary(flat.type):
        out = np.full(num_rows, None, dtype=object)
        out[rows] = _texts(flat.take(pa.array(first)))
    else:
        values = flat.to_numpy(zero_copy_only=False)[first]
        if values.dtype == np.float32:
            values = shortest_decimals(values)
        out = np.full(num_rows, np.nan)
        out[rows] = values
    return pd.Series(out)


def _texts(values) -> np.ndarray:
    """Binary values as str, invalid UTF-8 replaced. Arrow's cast makes the strings in C (a
    third of the time of bytes.decode per value on 1.5M taxi values); it refuses invalid
    UTF-8, which then goes value by value."""
    import pyarrow as pa

    try:
        return values.cast(pa.large_string()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return np.array([v.decode("utf-8", errors="replace")
                         for v in values.to_numpy(zero_copy_only=False)], dtype=object)


def frame_from_record_batch(batch, spec: DatasetSpec) -> pd.DataFrame:
    """A pyarrow RecordBatch decoded from tf.Examples, as a typed frame."""
    return _frame({name: _first_values(column, batch.num_rows)
                   for name, column in zip(batch.schema.names, batch.columns)}, spec)


def example_frames(split_uri: str, spec: DatasetSpec,
                   batch_rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
    """One split of an Examples artifact (TFRecord files of tf.Examples) in typed frames of at
    most batch_rows rows; only one batch is in memory at a time."""
    # Without a schema each feature is typed from the data, as ingestion wrote it.
    for batch in example_batches.read_batches(example_batches.record_files(split_uri),
                                              frame_rows(spec, batch_rows)):
        frame = frame_from_record_batch(batch, spec)
        del batch  # only the frame stays alive while the caller validates it
        yield frame
