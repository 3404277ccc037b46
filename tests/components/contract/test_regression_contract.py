"""The data contract of a regression label (docs/regression.md): drafted range and null share as
critical, the per-split mean and spread guard against a collapsed label, judged exactly batch
by batch, and what a person reads when it breaks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.contract import contract_report, example_frames, suite_draft, suite_loading
from components.contract import suite_validation
from components.contract.suite_loading import SuiteError
from conftest import DATA
from pipeline.config.dataset_spec import DatasetSpec, Feature, load_spec

SPEC = DatasetSpec(
    name="prices", csv_path=Path("prices.csv"), task="regression", label="price", classes=(),
    features=(Feature("size", "float"), Feature("color", "categorical"),
              Feature("price", "float", role="label")),
)


def _frame(rows: int = 400, seed: int = 0, offset: float = 250_000.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.uniform(40, 200, rows).round(1)
    return pd.DataFrame({
        "size": size, "color": rng.choice(["red", "blue"], rows).astype(object),
        "price": (offset + 2_000 * size + rng.normal(0, 20_000, rows)).round(2),
    })


def _suite(frame: pd.DataFrame) -> suite_loading.Suite:
    return suite_loading.parse_suite(suite_draft.draft_suite([frame], SPEC), SPEC, "prices.json")


def _label_checks(suite: suite_loading.Suite) -> dict[str, suite_loading.Check]:
    return {c.type: c for c in suite.checks if c.column == "price"}


def test_the_draft_guards_the_label_with_critical_range_nulls_mean_and_spread():
    frame = _frame()
    checks = _label_checks(_suite(frame))
    assert {c.severity for c in checks.values()} == {"critical"}
    assert "mostly" not in checks["expect_column_values_to_not_be_null"].kwargs  # never empty
    between = checks["expect_column_values_to_be_between"].kwargs
    assert between["min_value"] <= frame.price.min() and between["max_value"] >= frame.price.max()
    mean, spread = checks["expect_column_mean_to_be_between"], checks[
        "expect_column_stdev_to_be_between"]
    assert mean.per_split and spread.per_split and mean.kind == spread.kind == suite_loading.MOMENTS
    std = frame.price.std()
    assert mean.kwargs["min_value"] < frame.price.mean() - 0.9 * std
    assert mean.kwargs["max_value"] > frame.price.mean() + 0.9 * std
    assert 0 < spread.kwargs["min_value"] <= std / 3.9 and spread.kwargs["max_value"] >= 3.9 * std
    # No class shares for a number: no set expectations on the label.
    assert not any("value_set" in c.kwargs for c in checks.values())


def test_the_draft_refuses_a_constant_or_empty_label():
    constant = _frame().assign(price=12.5)
    with pytest.raises(SuiteError, match=r"label 'price' has the same value \(12.5\) in every"):
        suite_draft.draft_suite([constant], SPEC)
    with pytest.raises(SuiteError, match="label 'price' is empty in every row"):
        suite_draft.draft_suite([_frame().assign(price=np.nan)], SPEC)


def test_mean_and_spread_are_judged_on_all_batches_exactly():
    frame = _frame(1000, seed=1)
    suite = _suite(frame)
    cut = suite_validation.validate(suite, (("train", frame.iloc[i:i + 97])
                                            for i in range(0, 1000, 97)))
    observed = {r.check.type: r.result["observed_value"] for r in cut.results
                if r.check.kind == suite_loading.MOMENTS}
    assert observed["expect_column_mean_to_be_between"] == pytest.approx(frame.price.mean(),
                                                                         rel=1e-12)
    assert observed["expect_column_stdev_to_be_between"] == pytest.approx(frame.price.std(),
                                                                           rel=1e-9)
    assert cut.passed == cut.evaluated


@pytest.mark.parametrize("broken, line", [
    # Every price the same: no spread left.
    (lambda f: f.assign(price=300_000.0), "price in split eval: "
     "expect_column_stdev_to_be_between"),
    # Cents instead of dollars in one split: mean and spread far outside the drafted bounds.
    (lambda f: f.assign(price=f.price * 100), "price in split eval: "
     "expect_column_mean_to_be_between"),
])
def test_a_collapsed_label_in_one_split_stops_the_run_naming_it(broken, line):
    frame = _frame(600, seed=2)
    suite = _suite(frame)
    outcome = suite_validation.validate(suite, [("train", frame.iloc[:400]),
                                                ("eval", broken(frame.iloc[400:]))])
    report = contract_report.report(outcome, "/d/x.html")
    message = contract_report.contract_error_message(report)
    assert message is not None and line in message


def test_an_empty_or_text_label_is_refused_naming_the_column_and_an_example():
    frame = _frame(300, seed=3)
    suite = _suite(frame)
    empty = frame.copy()
    empty.loc[[5, 9], "price"] = np.nan
    message = contract_report.contract_error_message(contract_report.report(
        suite_validation.validate(suite, [("train", empty)]), "/d/x.html"))
    assert "price: expect_column_values_to_not_be_null" in message
    # Text in a numeric column as example_frames reads it: the value kept as a string.
    text = frame.astype({"price": object})
    text.loc[7, "price"] = "n/a"
    message = contract_report.contract_error_message(contract_report.report(
        suite_validation.validate(suite, [("train", example_frames.normalize(
            text["price"], SPEC.label_feature).to_frame().join(text.drop(columns="price")))]),
        "/d/x.html"))
    assert "price: expect_column_values_to_be_in_type_list" in message and "'n/a'" in message


def test_the_shipped_regression_data_passes_its_committed_suite():
    spec = load_spec(DATA / "taxi_fare" / "spec.yaml")
    suite = suite_loading.load_suite(suite_loading.suite_path(spec), spec)
    assert {c.type for c in suite.checks if c.column == spec.label and c.per_split} == {
        "expect_column_mean_to_be_between", "expect_column_stdev_to_be_between"}
    outcome = suite_validation.validate(
        suite, (("all", f) for f in example_frames.csv_frames(spec.csv_path, spec, 4000)))
    assert [contract_report.describe(r) for r in outcome.results if not r.success] == []


def test_a_draft_from_data_with_empty_labels_says_they_will_be_refused():
    frame = _frame(200, seed=4)
    frame.loc[[3, 8], "price"] = np.nan
    checks = _label_checks(_suite(frame))
    note = checks["expect_column_values_to_not_be_null"]
    assert "mostly" not in note.kwargs
    observed = suite_draft.draft_suite([frame], SPEC)["expectations"]
    (entry,) = [e for e in observed if e["kwargs"].get("column") == "price"
                and e["type"] == "expect_column_values_to_not_be_null"]
    assert entry["meta"]["observed"] == ("1.0% empty: the contract refuses rows without a "
                                         "label, drop them from the CSV")
