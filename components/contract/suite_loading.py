"""The data contract: a Great Expectations (GX 1.x) expectation suite per dataset.

The suite is a JSON file beside the spec (``data/<name>/expectations.json``) in GX's suite format.
`make expectations` drafts one from the current data (components/contract/suite_draft.py); a person
reviews it and commits it, so the committed file, not a fresh draft, is what every run checks.
Each expectation carries ``meta.severity``: ``critical`` failures stop the run, ``warning``
failures are reported and the run goes on.

Data is validated a batch at a time (suite_validation.py), so only expectations whose
batch results combine exactly are accepted: column map expectations (not null, between, in set,
type, ...), row counts, the table's columns, and a column's set of distinct values (the union of
the batches' sets), and a column's mean and standard deviation (from the batches' counts, sums
and sums of squares, computed here rather than by GX). Other aggregate statistics (quantiles,
medians) do not combine from batch results; a suite using them is refused when it is loaded
rather than judged wrongly.

An expectation with ``meta.per_split: true`` is judged on each split (train, eval) on its own
and fails if any split fails it: `make expectations` drafts the label's checks that way, since
a model learns nothing from a class its train split lacks and is not evaluated on one its eval
split lacks.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pipeline.config.dataset_spec import DatasetSpec, SpecError

SUITE_FILE = "expectations.json"
CRITICAL, WARNING = "critical", "warning"
SEVERITIES = (CRITICAL, WARNING)

# How batch results of an expectation combine (see components/contract/suite_validation.py).
MAP, ROW_COUNT, TABLE_SHAPE, DISTINCT = "map", "row count", "table shape", "distinct values"
MOMENTS = "moments"
# Judged on the column's count, sum and sum of squares over all batches (sample standard
# deviation, as GX computes it): the regression label's guard against a collapsed label.
MOMENT_TYPES = ("expect_column_mean_to_be_between", "expect_column_stdev_to_be_between")
DISTINCT_TYPES = (
    "expect_column_distinct_values_to_contain_set", "expect_column_distinct_values_to_be_in_set",
    "expect_column_distinct_values_to_equal_set",
)
ROW_COUNT_TYPES = ("expect_table_row_count_to_be_between", "expect_table_row_count_to_equal")
TABLE_SHAPE_TYPES = (
    "expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list",
    "expect_table_column_count_to_equal", "expect_table_column_count_to_be_between",
    "expect_column_to_exist",
)


class SuiteError(SpecError):
    """An expectation suite that cannot be used; the message names the file and the problem."""


def suite_path(spec: DatasetSpec) -> Path:
    return spec.directory / SUITE_FILE


@dataclasses.dataclass(frozen=True)
class Check:
    """One expectation of the suite, with what validation needs to know about it."""

    index: int
    type: str
    kwargs: dict
    severity: str
    kind: str  # MAP, ROW_COUNT, TABLE_SHAPE, DISTINCT or MOMENTS: how batch results combine
    per_split: bool = False  # judged on each split on its own (meta.per_split)

    @property
    def id(self) -> str:
        return f"expectation-{self.index}"

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")

    @property
    def mostly(self) -> float:
        return float(self.kwargs.get("mostly", 1.0))


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    source: str  # where it was read from, for messages
    checks: tuple[Check, ...]
    raw: dict

    def to_gx(self):
        """The suite as a GX ExpectationSuite (severity from meta, ids matching the checks)."""
        import great_expectations as gx

        expectations = []
        for check, raw in zip(self.checks, self.raw["expectations"]):
            entry = {k: v for k, v in raw.items() if k not in ("id", "severity")}
            expectations.append({**entry, "id": check.id, "severity": check.severity})
        return gx.ExpectationSuite(name=self.name, expectations=expectations,
                                   meta=self.raw.get("meta") or {})


def _kind(type_: str) -> str | None:
    from great_expectations.expectations.expectation import ColumnMapExpectation
    from great_expectations.expectations.registry import get_expectation_impl

    if type_ in ROW_COUNT_TYPES:
        return ROW_COUNT
    if type_ in TABLE_SHAPE_TYPES:
        return TABLE_SHAPE
    if type_ in DISTINCT_TYPES:
        return DISTINCT
    if type_ in MOMENT_TYPES:
        return MOMENTS
    return MAP if issubclass(get_expectation_impl(type_), ColumnMapExpectation) else None


def parse_suite(raw: Any, spec: DatasetSpec, source: str) -> Suite:
    """Check a suite against GX and the spec; every problem raises SuiteError naming `source`.
    A suite GX accepted before under this GX version is not shown to GX again
    (suite_verdicts.py): the run then need not import GX for it."""
    from components.contract import suite_verdicts

    remembered = suite_verdicts.kinds(raw)

    def fail(message: str) -> SuiteError:
        return SuiteError(f"expectation suite {source}: {message}")

    if not isinstance(raw, dict) or not isinstance(raw.get("expectations"), list):
        raise fail("expected a JSON object with an 'expectations' list")
    if not raw["expectations"]:
        raise fail("has no expectations")
    columns = set(spec.column_names)
    checks = []
    for index, entry in enumerate(raw["expectations"]):
        where = f"expectation #{index + 1}"
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise fail(f"{where}: expected an object with a 'type'")
        type_ = entry["type"]
        where += f" ({type_})"
        severity = (entry.get("meta") or {}).get("severity")
        if severity not in SEVERITIES:
            raise fail(f"{where}: meta.severity must be one of {', '.join(SEVERITIES)}, "
                       f"got {severity!r}")
        if entry.get("severity", severity) != severity:
            raise fail(f"{where}: severity {entry['severity']!r} contradicts meta.severity "
                       f"{severity!r}; keep only meta.severity")
        kwargs = entry.get("kwargs") or {}
        if "column" in kwargs and kwargs["column"] not in columns:
            raise fail(f"{where}: column {kwargs['column']!r} is not in the spec "
                       f"(columns: {', '.join(spec.column_names)})")
        kind = remembered[index] if remembered is not None else _checked_kind(type_, fail, where)
        if kind is None:
            raise fail(f"{where}: cannot be checked batch by batch (it needs the whole column at "
                       "once); use column value expectations, row counts or the column set")
        per_split = (entry.get("meta") or {}).get("per_split", False)
        if not isinstance(per_split, bool):
            raise fail(f"{where}: meta.per_split must be true or false, got {per_split!r}")
        checks.append(Check(index, type_, dict(kwargs), severity, kind, per_split))
    suite = Suite(str(raw.get("name") or spec.name), source, tuple(checks), raw)
    if remembered is None:
        _gx_builds(suite, fail)
        suite_verdicts.remember(raw, [check.kind for check in checks])
    return suite


def _checked_kind(type_: str, fail, where: str) -> str | None:
    from great_expectations.exceptions import ExpectationNotFoundError

    try:
        return _kind(type_)
    except ExpectationNotFoundError:
        raise fail(f"{where}: Great Expectations has no expectation of that type") from None


def _gx_builds(suite: Suite, fail) -> None:
    from great_expectations import exceptions as gx_exceptions
    from great_expectations.compatibility.pydantic import ValidationError

    try:
        suite.to_gx()
    # Only GX's verdicts on the suite's content (its pydantic errors name the wrong field): any
    # other error is a bug here, a failed run (exit 1, traceback in the log), not refused input.
    except (ValidationError, gx_exceptions.InvalidExpectationConfigurationError,
            gx_exceptions.InvalidExpectationKwargsError) as e:
        raise fail(f"Great Expectations rejects it: {e}") from None


def load_suite(path: str | Path, spec: DatasetSpec) -> Suite:
    path = Path(path)
    if not path.is_file():
        raise SuiteError(
            f"expectation suite {path}: file not found; draft one with `make expectations "
            f"DATASET={spec.name}`, review it and commit it there")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SuiteError(f"expectation suite {path}: not valid JSON: {e}") from None
    return parse_suite(raw, spec, str(path))
