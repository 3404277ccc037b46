"""What a person reads about a validation: one line per failed expectation, the report JSON the
gate reads, the stop message, the summary figure and the Data Docs page."""
from __future__ import annotations

from typing import Any

from components.contract.suite_loading import (
    CRITICAL,
    MOMENTS,
    ROW_COUNT,
    SEVERITIES,
    TABLE_SHAPE,
    WARNING,
    Check,
)
from components.contract.suite_validation import CheckResult, Outcome


def _show(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    if isinstance(value, int):
        return str(value)
    return repr(value)


def _show_set(values: list, limit: int = 5) -> str:
    shown = ", ".join(_show(v) for v in values[:limit])
    return f"[{shown}]" if len(values) <= limit else f"[{shown}, ... {len(values)} values]"


def _arguments(check: Check) -> str:
    kw = check.kwargs
    if "min_value" in kw or "max_value" in kw:
        args = [_show(kw.get("min_value")), _show(kw.get("max_value"))]
    elif "value_set" in kw:
        args = [_show_set(list(kw["value_set"]))]
    elif "type_list" in kw:
        args = [_show_set(list(kw["type_list"]))]
    elif "column_set" in kw:
        args = [f"{len(kw['column_set'])} columns"]
    else:
        args = [f"{k}={_show(v)}" for k, v in kw.items()
                if k not in ("column", "mostly", "result_format", "catch_exceptions")]
    if check.mostly < 1:
        args.append(f"mostly={check.mostly:g}")
    return f"({', '.join(args)})"


def _percent(x: float) -> str:
    return f"{x:.1f}%" if x >= 0.1 or x == 0 else f"{x:.2g}%"


def _observed(result: CheckResult) -> str:
    check, r = result.check, result.result
    if result.error:
        return f"could not be checked: {result.error}"
    if check.kind == ROW_COUNT:
        return f"{r.get('observed_value', 0):,} rows"
    if check.kind == MOMENTS:
        what = "mean" if check.type == "expect_column_mean_to_be_between" else \
            "standard deviation"
        value = r.get("observed_value")
        if value is None:
            return f"no {what}: too few numbers in the column"
        return f"{what} {_show(float(value))}" + (" (every value the same)" if value == 0 else "")
    if check.kind == TABLE_SHAPE:
        mismatched = (r.get("details") or {}).get("mismatched") or {}
        parts = [f"{key} column(s) {', '.join(map(str, names))}"
                 for key, names in sorted(mismatched.items()) if names]
        return "; ".join(parts) or f"observed {_show(r.get('observed_value'))}"
    allowed = (f" (the suite allows {_percent(100 * (1 - check.mostly))})"
               if check.mostly < 1 else "")
    examples = list(dict.fromkeys(_show(v) for v in r.get("partial_unexpected_list") or []))[:3]
    example_text = f", e.g. {', '.join(examples)}" if examples else ""
    what = {
        "expect_column_values_to_not_be_null": "of rows are empty",
        "expect_column_values_to_be_between": "of values out of range",
        "expect_column_values_to_be_in_set": "of values outside the set",
        "expect_column_values_to_not_be_in_set": "of values in the excluded set",
        "expect_column_values_to_be_in_type_list": "of values of another type",
        "expect_column_values_to_be_of_type": "of values of another type",
    }.get(check.type, "of values unexpected")
    if result.small_batch_stray:
        considered = r.get("element_count", 0) - (r.get("missing_count") or 0)
        # "1 of 1 values out of range", not "100.0%": the count is what a small file shows.
        return (f"1 of {considered:,} {what.removeprefix('of ')} (the suite allows "
                f"{_percent(100 * (1 - check.mostly))}; one value is a warning in a file too "
                f"small to hold that share){example_text}")
    share = _percent(r.get("unexpected_percent") or 0.0)
    if check.type == "expect_column_values_to_not_be_null":
        return f"{share} {what}{allowed}"
    return f"{share} {what}{allowed}{example_text}"


def describe(result: CheckResult) -> str:
    """One line a person can act on, e.g. `fare: expect_column_values_to_be_between(0, 771,
    mostly=0.99): 12.0% of values out of range (the suite allows 1.0%), e.g. -12.5`."""
    check = result.check
    where = f" in split {result.split}" if result.split else ""
    return (f"{check.column or 'table'}{where}: {check.type}{_arguments(check)}: "
            f"{_observed(result)}")


def label_shares(outcome: Outcome, classes: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """{split: {class: share of the split's labelled rows}}, every spec class listed (0 when
    absent) and any other value seen after them."""
    shares = {}
    for split, counts in outcome.label_counts.items():
        total = sum(counts.values())
        seen = {_show(value): n for value, n in counts.items()}
        names = list(classes) + sorted(set(seen) - set(classes))
        shares[split] = {c: seen.get(c, 0) / total if total else 0.0 for c in names}
    return shares


def _label_line(label: str, shares: dict[str, dict[str, float]]) -> str:
    splits = "; ".join(f"{split} " + ", ".join(f"{c} {_percent(100 * share)}"
                                               for c, share in by_class.items())
                       for split, by_class in shares.items())
    return (f"label '{label}' has class shares outside the suite's bounds: {splits} (every "
            "class must appear in every split, each within its bounds)")


def render_data_docs(gx_result) -> str:
    """One Data Docs validation page (HTML). It loads its styles from the CDNs GX uses; offline
    it shows unstyled, with the same content."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    return DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(gx_result))


def report(outcome: Outcome, data_docs: str, label: str = "",
           classes: tuple[str, ...] = ()) -> dict:
    """The JSON summary a gate and a person read: counts, one line per failed expectation and
    the label's class shares per split."""
    return {
        "label": {"column": label, "shares": label_shares(outcome, classes)} if label else None,
        "suite": outcome.suite.name,
        "suite_source": outcome.suite.source,
        "rows": outcome.rows,
        "evaluated": outcome.evaluated,
        "passed": outcome.passed,
        "success_percent": outcome.success_percent,
        "failed": {s: len(outcome.failures(s)) for s in SEVERITIES},
        "failures": [
            {"severity": r.severity, "column": r.check.column,
             "expectation": r.check.type, "per_split": r.check.per_split, "split": r.split,
             "message": describe(r)}
            for r in outcome.results if not r.success
        ],
        "data_docs": data_docs,
    }


def warning_messages(report_dict: dict) -> list[str]:
    """What each failed warning-level expectation says, in the report's order."""
    return [f["message"] for f in report_dict["failures"] if f["severity"] == WARNING]


def contract_error_message(report_dict: dict) -> str | None:
    """The error for a run whose data broke critical expectations; None when none broke."""
    critical = [f for f in report_dict["failures"] if f["severity"] == CRITICAL]
    label = report_dict.get("label") or {}
    # The label's per-split share checks: one line with the shares seen, for all of them.
    shares = [f for f in critical if f.get("per_split") and f["column"] == label.get("column")]
    problems = [f["message"] for f in critical if f not in shares]
    if shares:
        problems.insert(0, _label_line(label["column"], label["shares"]))
    if not problems:
        return None
    where = f"\n  Data Docs: {report_dict['data_docs']}"
    if len(problems) == 1:
        return f"data contract broken: {problems[0]}{where}"
    return (f"data contract broken: {len(problems)} critical expectations failed:\n  "
            + "\n  ".join(problems) + where)


def summary_figure(evaluated: int, passed: int, warnings: int, critical: int) -> str:
    """The validator's summary line, e.g. 'expectations passed 83/84, 1 warning'."""
    text = f"expectations passed {passed}/{evaluated}, {warnings} warning{'s' * (warnings != 1)}"
    return text + (f", {critical} critical" if critical else "")
