"""Drafting an expectation suite from the data, for a person to review before committing it.

The draft covers the column set, each column's type, its share of empty values, numeric ranges,
category sets, the row count and the label's class shares in each split, each with a severity. Its bounds sit
some way from what the data shows (the constants below): a draft should tolerate normal
variation and catch gross breakage; the person reviewing it tightens or loosens from there.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import math
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from components.contract import example_frames
from components.contract.suite_loading import (
    CRITICAL,
    SEVERITIES,
    SUITE_FILE,
    WARNING,
    SuiteError,
    parse_suite,
)
from pipeline.config.dataset_spec import CATEGORICAL_INT, INT, DatasetSpec, Feature

# Types a value may have (GX's names) in a column as example_frames.py builds it.
NUMERIC_TYPES = ["float64", "float"]
TEXT_TYPES = ["str"]

NULL_SLACK_FACTOR, NULL_SLACK = 1.5, 0.05  # allowed empty share: 1.5 x observed + 5 points
RANGE_MARGIN = 0.1  # numeric ranges widen by 10% of the observed span on each side ...
RANGE_MOSTLY = 0.99  # ... and 1% of values may still fall outside (stray outliers)
CATEGORY_MOSTLY = 0.95  # up to 5% of values may be categories the data did not have
MAX_CATEGORIES = 100  # more distinct values than this: a range (or nothing), not a set
ROW_COUNT_FACTOR = 2  # row count within [rows / 2, rows * 2]
LABEL_SHARE_FLOOR = 0.5  # each class keeps at least half its observed share of the labels
# A regression label's guard against a collapsed label, in each split: its mean stays within
# LABEL_MEAN_SPREADS standard deviations of the drafted mean, its standard deviation within a
# factor LABEL_SPREAD_FACTOR of the drafted one (a constant label has none).
LABEL_MEAN_SPREADS = 1.0
LABEL_SPREAD_FACTOR = 4.0


def _number(x: float) -> str:
    return str(int(x)) if x.is_integer() else f"{x:.6g}"


def _share_text(share: float, what: str) -> str:
    return f"{share:.2%} {what}" if 0 < share < 0.001 else f"{share:.1%} {what}"


@dataclasses.dataclass
class _Profile:
    """What a draft needs to know about one column, gathered a batch at a time."""

    rows: int = 0
    nulls: int = 0
    low: float = math.inf
    high: float = -math.inf
    counts: collections.Counter | None = None  # values seen: categorical columns and the label
    not_numbers: list = dataclasses.field(default_factory=list)
    # Count, sum and sum of squares of the numbers less `shift` (the first number seen).
    shift: float | None = None
    moments: tuple[int, float, float] = (0, 0.0, 0.0)

    def add(self, values: pd.Series, numeric: bool) -> None:
        self.rows += len(values)
        self.nulls += int(values.isna().sum())
        present = values.dropna()
        if numeric:
            if present.dtype == object:
                numbers = pd.to_numeric(present, errors="coerce")
                self.not_numbers += list(present[numbers.isna()].head(3))
                present = numbers.dropna()
            infinite = present[~np.isfinite(present.to_numpy(dtype=float))]
            if len(infinite):  # the ingestion refuses them: not numbers a range may hold
                self.not_numbers += list(infinite.head(3))
                present = present[np.isfinite(present.to_numpy(dtype=float))]
            if len(present):
                self.low = min(self.low, float(present.min()))
                self.high = max(self.high, float(present.max()))
                numbers = present.to_numpy(dtype=float)
                self.shift = float(numbers[0]) if self.shift is None else self.shift
                centred = numbers - self.shift
                n, total, squares = self.moments
                self.moments = (n + len(numbers), total + float(centred.sum()),
                                squares + float((centred ** 2).sum()))
        if self.counts is not None:
            self.counts.update(present.tolist())
            if len(self.counts) > MAX_CATEGORIES:
                self.counts = None  # too many values for a set; stop counting them


def _expectation(type_: str, severity: str, observed: str = "", **kwargs: Any) -> dict:
    meta: dict[str, Any] = {"severity": severity}
    if observed:
        meta["observed"] = observed  # what the draft saw, for the person reviewing it
    return {"type": type_, "kwargs": kwargs, "meta": meta}


def _round_out(low: float, high: float, integer: bool) -> tuple[float, float]:
    """Bounds rounded outward to a precision that suits their span (0 to 771, not 0 to 770.077)."""
    if not (math.isfinite(low) and math.isfinite(high)):  # nothing to round (a caller's bug)
        return _value(low), _value(high)
    if integer:
        return math.floor(low), math.ceil(high)
    span = high - low
    decimals = max(0, 2 - math.floor(math.log10(span))) if span > 0 else 2
    scale = 10 ** decimals
    return _value(math.floor(low * scale) / scale), _value(math.ceil(high * scale) / scale)


def _range(profile: _Profile, integer: bool) -> tuple[float, float]:
    span = profile.high - profile.low
    margin = RANGE_MARGIN * span if span > 0 else max(abs(profile.high) * RANGE_MARGIN, 1.0)
    low, high = profile.low - margin, profile.high + margin
    # Data that never crosses zero keeps that side at zero: a fare of 0 must not license -70.
    if profile.low >= 0:
        low = max(low, 0.0)
    if profile.high <= 0:
        high = min(high, 0.0)
    return _round_out(low, high, integer)


def _floor3(x: float) -> float:
    return math.floor(x * 1000) / 1000


def _value(v: Any) -> Any:
    """A value as the suite stores it: integral numbers as ints."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _typed_classes(spec: DatasetSpec) -> list:
    """The spec's classes as the label column holds them (numbers for a numeric label)."""
    if spec.label_feature.holds_numbers:
        return [_value(float(c)) for c in spec.classes]
    return list(spec.classes)


def _profiles(frames: Iterable[pd.DataFrame], spec: DatasetSpec) -> tuple[int, dict]:
    profiles = {f.name: _Profile(counts=collections.Counter() if f.is_categorical or (
                                     f.name == spec.label and not spec.is_regression) else None)
                for f in spec.features}
    rows = 0
    for frame in frames:
        rows += len(frame)
        for f in spec.features:
            if f.name in frame:
                profiles[f.name].add(frame[f.name], f.holds_numbers)
    if rows == 0:
        raise SuiteError(f"cannot draft an expectation suite for {spec.name}: the data has no rows")
    for f in spec.features:
        if profiles[f.name].not_numbers:
            raise SuiteError(
                f"cannot draft an expectation suite for {spec.name}: column '{f.name}' ({f.type} "
                f"in the spec) holds values that are not numbers, e.g. "
                f"{profiles[f.name].not_numbers[0]!r}; fix the data or the spec first")
    return rows, profiles


def _column_expectations(f: Feature, p: _Profile, rows: int, severity: str) -> list[dict]:
    numeric = f.holds_numbers
    drafted = [_expectation("expect_column_values_to_be_in_type_list", severity, column=f.name,
                            type_list=NUMERIC_TYPES if numeric else TEXT_TYPES)]
    null_share = p.nulls / rows
    allowed = null_share * NULL_SLACK_FACTOR + NULL_SLACK
    if allowed < 1:  # a column (nearly) always empty has no useful bound
        drafted.append(_expectation(
            "expect_column_values_to_not_be_null", severity, _share_text(null_share, "empty"),
            column=f.name, mostly=_floor3(1 - allowed)))
    if p.rows == p.nulls:
        return drafted
    if f.is_categorical and p.counts is not None:
        drafted.append(_expectation(
            "expect_column_values_to_be_in_set", severity, f"{len(p.counts)} distinct values",
            column=f.name, value_set=sorted(_value(v) for v in p.counts),
            mostly=CATEGORY_MOSTLY))
    elif numeric:
        low, high = _range(p, integer=f.type in (INT, CATEGORICAL_INT))
        # A time (a year, a timestamp) is bounded from below only: new data comes later.
        bounds = {"min_value": low} if f.time else {"min_value": low, "max_value": high}
        drafted.append(_expectation(
            "expect_column_values_to_be_between", severity, f"min {_number(p.low)}, max {_number(p.high)}",
            column=f.name, **bounds, mostly=RANGE_MOSTLY))
    return drafted


def _label_expectations(spec: DatasetSpec, p: _Profile, rows: int) -> list[dict]:
    """All critical. The label is never empty and holds only the spec's classes; in each split
    (train, eval) every class appears and keeps at least a floor of its observed share, so a
    class's ceiling is what the other classes' floors leave. A label that collapsed to one
    class, or a split without a class, stops the run before anything trains on it."""
    classes = _typed_classes(spec)
    numeric = spec.label_feature.holds_numbers
    drafted = [
        _expectation("expect_column_values_to_be_in_type_list", CRITICAL, column=spec.label,
                     type_list=NUMERIC_TYPES if numeric else TEXT_TYPES),
        _expectation("expect_column_values_to_not_be_null", CRITICAL,
                     _share_text(p.nulls / rows, "empty"), column=spec.label),
        _expectation("expect_column_values_to_be_in_set", CRITICAL, column=spec.label,
                     value_set=classes),
        _per_split(_expectation("expect_column_distinct_values_to_contain_set", CRITICAL,
                                column=spec.label, value_set=classes)),
    ]
    counts = p.counts or {}
    labelled = sum(counts.values())
    for cls in classes:
        share = counts.get(cls, 0) / labelled if labelled else 0
        if share * LABEL_SHARE_FLOOR >= 0.001:
            drafted.append(_per_split(_expectation(
                "expect_column_values_to_be_in_set", CRITICAL, _share_text(share, "of labels"),
                column=spec.label, value_set=[cls], mostly=_floor3(share * LABEL_SHARE_FLOOR))))
    return drafted


def _mean_and_spread(p: _Profile) -> tuple[float, float]:
    """Mean and sample standard deviation of a column's numbers (0 spread for one number)."""
    n, total, squares = p.moments
    mean = (p.shift or 0.0) + total / n
    spread = math.sqrt(max(squares - total * total / n, 0.0) / (n - 1)) if n > 1 else 0.0
    return mean, spread


def _regression_label_expectations(spec: DatasetSpec, p: _Profile, rows: int) -> list[dict]:
    """All critical. The label is a number, never empty, within the drafted range (as a
    feature's, with 1% stray values allowed); in each split (train, eval) its mean and standard
    deviation stay near the drafted ones, so a label that collapsed (constant, all zeros, a
    unit changed from dollars to cents) stops the run before anything trains on it."""
    label = spec.label_feature
    if p.rows == p.nulls:
        raise SuiteError(f"cannot draft an expectation suite for {spec.name}: the label "
                         f"'{spec.label}' is empty in every row")
    mean, spread = _mean_and_spread(p)
    if spread == 0:
        raise SuiteError(f"cannot draft an expectation suite for {spec.name}: the label "
                         f"'{spec.label}' has the same value ({_number(mean)}) in every row: "
                         "there is nothing to learn")
    low, high = _range(p, integer=label.type == INT)
    # Bounds rounded outward like a range's (12.3 to 14.5, not 12.2871 to 14.5129).
    mean_low, mean_high = _round_out(mean - LABEL_MEAN_SPREADS * spread,
                                     mean + LABEL_MEAN_SPREADS * spread, integer=False)
    spread_low, spread_high = _round_out(spread / LABEL_SPREAD_FACTOR,
                                         spread * LABEL_SPREAD_FACTOR, integer=False)
    observed_moments = f"mean {_number(mean)}, standard deviation {_number(spread)}"
    return [
        _expectation("expect_column_values_to_be_in_type_list", CRITICAL, column=spec.label,
                     type_list=NUMERIC_TYPES),
        _expectation("expect_column_values_to_not_be_null", CRITICAL,
                     _share_text(p.nulls / rows, "empty") + (
                         ": the contract refuses rows without a label, drop them from the CSV"
                         if p.nulls else ""), column=spec.label),
        _expectation("expect_column_values_to_be_between", CRITICAL,
                     f"min {_number(p.low)}, max {_number(p.high)}", column=spec.label,
                     min_value=low, max_value=high, mostly=RANGE_MOSTLY),
        _per_split(_expectation("expect_column_mean_to_be_between", CRITICAL, observed_moments,
                                column=spec.label, min_value=mean_low, max_value=mean_high)),
        _per_split(_expectation("expect_column_stdev_to_be_between", CRITICAL, observed_moments,
                                column=spec.label, min_value=_value(max(spread_low, 0.0)),
                                max_value=spread_high)),
    ]


def _per_split(expectation: dict) -> dict:
    expectation["meta"]["per_split"] = True
    return expectation


def draft_suite(frames: Iterable[pd.DataFrame], spec: DatasetSpec, source: str = "") -> dict:
    """A suite (as a JSON-able dict in GX's format) drafted from the data.

    Columns the model reads (features, label, slicing column) get `critical` expectations, the
    others `warning`. The row count is `warning`: a smaller drop of data (a sample, a quiet
    month) is worth a look, not a stop. The label's checks are critical, its class shares
    judged in each split (see _label_expectations).
    """
    rows, profiles = _profiles(frames, spec)
    required = set(spec.required_columns)
    drafted = [
        _expectation("expect_table_columns_to_match_set", CRITICAL,
                     column_set=list(spec.column_names), exact_match=True),
        _expectation("expect_table_row_count_to_be_between", WARNING, f"{rows} rows",
                     min_value=math.ceil(rows / ROW_COUNT_FACTOR),
                     max_value=rows * ROW_COUNT_FACTOR),
    ]
    for f in spec.features:
        if f.name == spec.label and spec.is_regression:
            drafted += _regression_label_expectations(spec, profiles[f.name], rows)
        elif f.name == spec.label:
            drafted += _label_expectations(spec, profiles[f.name], rows)
        else:
            severity = CRITICAL if f.name in required else WARNING
            drafted += _column_expectations(f, profiles[f.name], rows, severity)
    try:
        version = importlib_metadata.version("great_expectations")
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover - it is a dependency
        version = "unknown"
    return {
        "name": spec.name,
        "meta": {
            "great_expectations_version": version,
            "drafted_from": source or str(spec.csv_path),
            "drafted_rows": rows,
            "review": "Drafted from the data by `make expectations`. Review each bound and "
                      "severity (critical stops the run, warning is reported), then commit it "
                      f"as data/{spec.name}/{SUITE_FILE}.",
        },
        "expectations": drafted,
    }


def write_draft(spec: DatasetSpec, target: Path) -> dict[str, int]:
    """Draft a suite from the spec's CSV into `target`; return its expectation count by severity."""
    suite = draft_suite(example_frames.csv_frames(spec.csv_path, spec), spec)
    parse_suite(suite, spec, str(target))  # a draft that GX or the loader refuses is a bug here
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(suite, indent=2) + "\n")
    return {s: sum(e["meta"]["severity"] == s for e in suite["expectations"]) for s in SEVERITIES}
