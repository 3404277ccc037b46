"""The `drift:` block `make expectations` drafts for spec.yaml (`make init` its defaults).

A threshold below the noise of sampling would flag every new file. So the draft measures that
noise with TFDV itself: the data's rows are cut into two random halves, each gets TFDV
statistics, and the halves are compared with the comparators drift uses (L-infinity for text
columns, Jensen-Shannon for numbers: drift.py) at threshold 0. That is done SPLITS times, each
cut seeded, and a column's noise is the largest difference of the SPLITS: one cut is not a
robust estimate. On a numeric column of few distinct values (diabetes' s4: 66 values, most rows
on 2, 3, ..., 7) TFDV's quantile histograms put bucket edges on repeated values, and the halves
of 20 cuts differed by 0.03 to 0.18 (median 0.13): 1 cut in 20 drafted the default 0.1, below
the 0.13 that the pipeline's training split read against the whole file. A column whose halves
already differ by more than a third of the default threshold gets its own threshold, three times
that difference; the rest keep the defaults (`make init` writes only those: it measures nothing).
Critical columns are left to the reviewer. The label is measured too, as drift compares it
(drift.checked_columns): a classification label's classes by L-infinity, read as text so that
TFDV counts integer classes as values (its L-infinity reads 0 on numbers), a regression label by
Jensen-Shannon.
"""
from __future__ import annotations

import math

import numpy as np

from components.ingest import csv_format
from components.score.split_divergence import JENSEN_SHANNON, L_INFINITY, divergences
from pipeline.config.dataset_spec import (CATEGORICAL, CLASSIFICATION_TASKS, DRIFT_DEFAULTS,
                                          FEATURE, DatasetSpec)

NOISE_FACTOR = 3
MAX_ROWS = 200_000  # rows read for the measurement (a sample of a larger file)
SEED = 42
# Random half cuts measured; a column's noise is the largest. Each costs two TFDV statistics of
# the halves: on 200,000 taxi rows the measurement takes ~4 s for 5 cuts (1.3 s for one),
# beside TFDV's import (~4 s); 0.8 s for taxi's 15,002 rows.
SPLITS = 5


def measure_noise(spec: DatasetSpec, max_rows: int = MAX_ROWS,
                  splits: int = SPLITS) -> dict[str, tuple[str, float]]:
    """{column: (comparator, the largest divergence between two random halves of the data over
    `splits` seeded cuts)}."""
    import tensorflow_data_validation as tfdv

    # Not a time (`time: true`): drift does not compare it; the label it does
    # (drift.checked_columns).
    columns = [f for f in spec.features
               if (f.role == FEATURE or f.name == spec.label) and not f.time]
    text = {f.name for f in columns if f.type == CATEGORICAL or (
        f.name == spec.label and spec.task in CLASSIFICATION_TASKS)}
    frame = csv_format.read_frame(spec.csv_path, spec.missing_values,
                                  usecols=[f.name for f in columns], nrows=max_rows, dtype=str,
                                  keep_default_na=False).fillna("")  # a marker: as empty
    for f in columns:  # TFDV's types as the ingestion gives them: numbers or text
        if f.name not in text:
            frame[f.name] = frame[f.name].replace("", np.nan).astype("float64")
        else:
            frame[f.name] = frame[f.name].replace("", None)
    rng = np.random.default_rng(SEED)  # the first cut is the one a single cut used to be
    pairs = []
    for _ in range(splits):  # statistics kept, not the halves: one copy of the rows at a time
        halves = np.array_split(rng.permutation(len(frame)), 2)
        pairs.append([tfdv.generate_statistics_from_dataframe(frame.iloc[np.sort(part)])
                      for part in halves])
    comparators = {f.name: L_INFINITY if f.name in text else JENSEN_SHANNON for f in columns}
    noise: dict[str, tuple[str, float]] = {}
    for first, second in pairs:
        for name, value in divergences(first, second, comparators).items():
            noise[name] = (comparators[name], max(value, noise.get(name, ("", 0.0))[1]))
    return noise


def block_lines(noise: dict[str, tuple[str, float]], source: str = "") -> list[str]:
    """The `drift:` block as spec.yaml lines, a comment on each."""
    measured = f" between random halves of {source} ({SPLITS} cuts)" if source else ""
    columns = {}
    for name, (comparator, value) in sorted(noise.items()):
        if value * NOISE_FACTOR > DRIFT_DEFAULTS[comparator]:
            threshold = min(1.0, math.ceil(round(value * NOISE_FACTOR * 100, 6)) / 100)
            columns[name] = (threshold, comparator, value)
    lines = [
        "# Drift (docs/scoring.md): how far a file to score may be from the champion's training",
        "# data, and a new training drop from the last run's, before a warning; drift in a",
        "# critical column stops the run instead.",
        "drift:",
        f"  l_infinity: {DRIFT_DEFAULTS['l_infinity']}  # text columns: the largest change in "
        "one value's share",
        f"  jensen_shannon: {DRIFT_DEFAULTS['jensen_shannon']}  # numeric columns: Jensen-Shannon "
        "divergence of the histograms",
        f"  row_count_change: {DRIFT_DEFAULTS['row_count_change']}  # training drops: the row "
        "count may change by this fraction",
        "  critical: []  # columns (the label too) whose drift stops the run, e.g. [fare]",
    ]
    if columns:
        lines.append(f"  columns:  # sampling noise{measured} alone reaches a third of the default")
        for name, (threshold, comparator, value) in columns.items():
            lines.append(f"    {_key(name)}: {threshold}  # halves differ by up to {value:.3f} "
                         f"({comparator.replace('_', ' ')})")
    return lines


def _key(name: str) -> str:
    import json

    plain = name.replace("_", "").isalnum() and name.isascii() and not name[0].isdigit()
    return name if plain else json.dumps(name, ensure_ascii=False)


def draft(spec: DatasetSpec) -> str:
    """The block's text for the dataset's CSV."""
    return "\n".join(block_lines(measure_noise(spec), spec.csv_path.name)) + "\n"
