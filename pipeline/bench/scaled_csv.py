"""Write an N-row CSV for a dataset by resampling its shipped rows with realistic jitter.

Whole rows are resampled, so categories keep their observed proportions and their relation to
the label; numbers get Gaussian noise (a few percent of the column's spread, clipped to the
observed range, integers stay integers); epoch-second timestamps shift by up to a week, also
within the observed range. Rows are generated and appended in chunks, so memory holds the
source rows and one chunk, never N rows.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from components.ingest import csv_format
from pipeline.config.dataset_spec import DatasetSpec, load_spec

CHUNK_ROWS = 50_000
NOISE_FRACTION = 0.03  # of the column's standard deviation
TIMESTAMP_SHIFT_SECONDS = 7 * 24 * 3600


def _numeric_columns(spec: DatasetSpec, frame: pd.DataFrame) -> list[str]:
    """Numeric features and ignored numeric columns; never the label, never categorical codes."""
    return [f.name for f in spec.features
            if f.is_numeric and f.role != "label" and pd.api.types.is_numeric_dtype(frame[f.name])]


def _is_timestamp(name: str, values: pd.Series) -> bool:
    # Epoch seconds between 2001 and 2033: shift them like times, not like measurements.
    present = values.dropna()
    return "timestamp" in name and not present.empty and present.between(1e9, 2e9).all()


def jitter_chunk(source: pd.DataFrame, spec: DatasetSpec, rows: int,
                 rng: np.random.Generator) -> pd.DataFrame:
    chunk = source.iloc[rng.integers(0, len(source), size=rows)].reset_index(drop=True)
    for name in _numeric_columns(spec, source):
        column = source[name]
        values = chunk[name].to_numpy(dtype="float64", copy=True)
        present = ~np.isnan(values)
        if _is_timestamp(name, column):
            values[present] += rng.integers(-TIMESTAMP_SHIFT_SECONDS, TIMESTAMP_SHIFT_SECONDS,
                                            size=present.sum())
        else:
            spread = float(np.nanstd(column.to_numpy(dtype="float64"))) * NOISE_FRACTION
            values[present] += rng.normal(0.0, spread, size=present.sum())
        is_integral = (spec.feature(name).type == "int"
                       or (column.dropna() == column.dropna().round()).all())
        values = np.round(values) if is_integral else np.round(values, 6)
        # Inside the observed range (after rounding, which could step past an edge), timestamps
        # too: the schema and the suite bound values there.
        values = np.clip(values, column.min(), column.max())
        chunk[name] = pd.array(values, dtype="Int64") if is_integral else values
    return chunk


def write_scaled_csv(spec: DatasetSpec, rows: int, target: Path, seed: int = 0,
                     chunk_rows: int = CHUNK_ROWS) -> Path:
    source = csv_format.read_frame(
        spec.csv_path, dtype={f.name: str for f in spec.features
                              if f.is_categorical or f.role == "label"},
        keep_default_na=False, na_values=[""])
    rng = np.random.default_rng(seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    written = 0
    with tmp.open("w") as out:
        while written < rows:
            n = min(chunk_rows, rows - written)
            jitter_chunk(source, spec, n, rng).to_csv(out, header=written == 0, index=False)
            written += n
    tmp.replace(target)  # never leave a half-written CSV under the final name
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench.scaled_csv",
                                     description=__doc__)
    parser.add_argument("--dataset", default="taxi", help="dataset name under data/")
    parser.add_argument("--rows", type=int, required=True, help="rows to write")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    from pipeline.config.settings import Settings

    spec = load_spec(Settings(dataset=args.dataset).spec_path)
    write_scaled_csv(spec, args.rows, args.out, args.seed)
    print(f"wrote {args.rows:,} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
