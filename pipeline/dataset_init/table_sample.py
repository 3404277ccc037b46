"""One streaming pass over the CSV: what `init` needs from the whole file, and a sample of rows.

The file is read through the project's one CSV reader (components/ingest: csv_format.inspect
for the dialect, csv_ranges.read_batches for pyarrow record batches of string cells), so `init`
accepts and refuses exactly the files the pipeline does. From the whole file:

- every column's type exactly as the pipeline's ExampleGen will type it (INT, FLOAT, STRING,
  or UNKNOWN for a column empty on every row): a spec type that disagrees with it would fail
  the run;
- the row count and each column's count of empty cells;
- each value's count in one column (the label), so that a rare class is never lost to the
  sample.

Everything else (distinct values, words per value, leakage, the baseline) is judged on a
uniform random sample of at most SAMPLE_ROWS rows (fewer for a wide table: SAMPLE_CELLS cells,
at least MIN_SAMPLE_ROWS rows): bottom-k sampling, i.e. each row gets a
seeded random key and the rows with the SAMPLE_ROWS smallest keys are kept, batch by batch, so
memory stays flat in the file's size and the same file always gives the same sample. The
sample keeps the file's row order.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.ingest import csv_format
from components.ingest.column_types import ColumnSurvey, ColumnType
from components.ingest.csv_ranges import ByteRange, read_batches, refuse_not_finite

SAMPLE_ROWS = 50_000
# A wide table samples fewer rows: at most this many cells, but at least MIN_SAMPLE_ROWS rows.
SAMPLE_CELLS = 2_500_000
MIN_SAMPLE_ROWS = 5_000
SEED = 0


@dataclasses.dataclass(frozen=True)
class TableSample:
    path: Path
    header: tuple[str, ...]
    types: tuple[ColumnType, ...]  # per column, as the ExampleGen types it from the whole file
    rows: int  # data rows in the whole file
    empty: tuple[int, ...]  # per column, empty cells in the whole file
    sample: pa.Table  # string cells ("" when empty), at most SAMPLE_ROWS rows, in file order
    counts: dict[str, int]  # the counted column's values ("" for empty) over the whole file
    _columns: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def sampled(self) -> bool:
        return self.sample.num_rows < self.rows

    def column(self, name: str) -> list[str]:
        """The sampled cells of a column (read once: every rule asks for them)."""
        if name not in self._columns:
            self._columns[name] = self.sample.column(self.header.index(name)).to_pylist()
        return self._columns[name]

    def type_of(self, name: str) -> ColumnType:
        return self.types[self.header.index(name)]

    def empty_share(self, name: str) -> float:
        return self.empty[self.header.index(name)] / self.rows if self.rows else 1.0


def read(path: str | Path, count: str | None = None, sample_rows: int = SAMPLE_ROWS,
         seed: int = SEED, missing_values: tuple[str, ...] = ()) -> TableSample:
    """The whole-file facts and a row sample of the CSV at path, with the value counts of the
    column named `count` (CsvFormatError if it is not a CSV the pipeline reads; ValueError for
    a malformed row, as the ExampleGen would fail). missing_values: cells read as empty, as the
    pipeline reads them when the spec lists them (types, empty counts and sample included)."""
    fmt = csv_format.inspect(path, missing_values)
    sample_rows = min(sample_rows, max(MIN_SAMPLE_ROWS, SAMPLE_CELLS // max(len(fmt.header), 1)))
    counted = fmt.header.index(count) if count in fmt.header else None
    counts: dict[str, int] = {}
    names = [f"c{i}" for i in range(len(fmt.header))]
    surveys = [ColumnSurvey() for _ in fmt.header]
    empty = np.zeros(len(fmt.header), dtype=np.int64)
    rng = np.random.default_rng(seed)
    kept: list[pa.Table] = []
    kept_keys: list[np.ndarray] = []
    kept_rows = rows = 0
    for batch in read_batches(fmt, ByteRange(fmt.header_offset, None, skip_header=True)):
        for i, (survey, cells) in enumerate(zip(surveys, batch.columns)):
            survey.add(cells)
            empty[i] += pc.sum(pc.equal(cells, "")).as_py() or 0
        if counted is not None:
            for entry in pc.value_counts(batch.column(counted)).to_pylist():
                counts[entry["values"]] = counts.get(entry["values"], 0) + entry["counts"]
        # Row numbers keep the file order through the sampling.
        table = pa.Table.from_batches([batch]).rename_columns(names).append_column(
            "_row", pa.array(np.arange(rows, rows + batch.num_rows)))
        rows += batch.num_rows
        kept.append(table)
        kept_keys.append(rng.random(batch.num_rows))
        kept_rows += batch.num_rows
        if kept_rows > 2 * sample_rows:
            kept, kept_keys, kept_rows = _smallest_keys(kept, kept_keys, sample_rows)
    # An infinite number in a column of numbers, by its line, as the ExampleGen refuses it
    # (the suite draft's bounds and the gates' baseline would meet it otherwise).
    refuse_not_finite(fmt, surveys)
    if kept_rows > sample_rows:
        kept, kept_keys, kept_rows = _smallest_keys(kept, kept_keys, sample_rows)
    if kept:
        sample = pa.concat_tables(kept)
        sample = sample.take(pc.sort_indices(sample.column("_row")))
    else:
        sample = pa.table({n: pa.array([], pa.string()) for n in names + ["_row"]})
    sample = sample.drop(["_row"]).rename_columns(list(fmt.header))
    return TableSample(path=Path(path), header=fmt.header,
                       types=tuple(s.type for s in surveys), rows=rows,
                       empty=tuple(int(e) for e in empty), sample=sample, counts=counts)


def _smallest_keys(tables: list[pa.Table], keys: list[np.ndarray], k: int):
    table, all_keys = pa.concat_tables(tables), np.concatenate(keys)
    keep = np.sort(np.argpartition(all_keys, k - 1)[:k]) if len(all_keys) > k else \
        np.arange(len(all_keys))
    return [table.take(pa.array(keep))], [all_keys[keep]], len(keep)
