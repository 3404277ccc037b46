"""The data contract without a pipeline run: the committed suites, drafting, batch-wise
validation, the messages a person reads, the Data Docs page and the component's pieces."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.contract import (
    contract_report,
    example_frames,
    suite_draft,
    suite_loading,
    suite_validation,
    suite_verdicts,
)
from components.contract.suite_loading import SuiteError
from conftest import DATA, pipeline_command
from pipeline.config.dataset_spec import DatasetSpec, Feature, load_spec

TOY = DatasetSpec(
    name="toy", csv_path=Path("toy.csv"), task="binary", label="y", classes=("0", "1"),
    features=(
        Feature("fare", "float"),
        Feature("hour", "categorical_int"),
        Feature("color", "categorical"),
        Feature("note", "categorical", role="ignore"),
        Feature("y", "int", role="label"),
    ),
)


def _toy_frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "fare": rng.uniform(0, 100, rows).round(2),
        "hour": rng.integers(0, 24, rows).astype(float),
        "color": rng.choice(["red", "blue", "green"], rows).astype(object),
        "note": [None] * rows,
        "y": rng.choice([0.0, 1.0], rows, p=[0.7, 0.3]),
    })


def _expectation(type_: str, severity: str = "critical", **kwargs) -> dict:
    return {"type": type_, "kwargs": kwargs, "meta": {"severity": severity}}


def _suite(*entries: dict) -> suite_loading.Suite:
    return suite_loading.parse_suite({"name": "toy", "expectations": list(entries)}, TOY, "toy.json")


def _validate(suite: suite_loading.Suite, *frames: pd.DataFrame) -> suite_validation.Outcome:
    return suite_validation.validate(suite, (("train", f) for f in frames))


# ---- the committed suites -------------------------------------------------------------------

@pytest.mark.parametrize("dataset", ["taxi", "penguins"])
def test_committed_suite_loads_and_names_only_spec_columns(dataset):
    spec = load_spec(DATA / dataset / "spec.yaml")
    suite = suite_loading.load_suite(suite_loading.suite_path(spec), spec)
    assert {c.severity for c in suite.checks} == {"critical", "warning"}
    checked = {c.column for c in suite.checks if c.column}
    assert set(spec.required_columns) <= checked <= set(spec.column_names)
    label = [c for c in suite.checks if c.column == spec.label and "value_set" in c.kwargs]
    assert {c.severity for c in label} == {"critical"}
    pooled = [[str(v) for v in c.kwargs["value_set"]] for c in label if not c.per_split]
    assert pooled == [list(spec.classes)]  # only the spec's classes
    # Guarded in each split: every class present, and each class's share has a floor.
    per_split = {(c.type, tuple(str(v) for v in c.kwargs["value_set"]))
                 for c in label if c.per_split}
    assert per_split == {("expect_column_distinct_values_to_contain_set", spec.classes)} | {
        ("expect_column_values_to_be_in_set", (cls,)) for cls in spec.classes}


@pytest.mark.parametrize("dataset", ["taxi", "penguins"])
def test_shipped_data_passes_its_committed_suite(dataset):
    spec = load_spec(DATA / dataset / "spec.yaml")
    suite = suite_loading.load_suite(suite_loading.suite_path(spec), spec)
    # Small batches on purpose: the verdict must not depend on how the data is cut.
    outcome = suite_validation.validate(
        suite, (("all", f) for f in example_frames.csv_frames(spec.csv_path, spec, 4000)))
    assert [contract_report.describe(r) for r in outcome.results if not r.success] == []
    assert outcome.passed == outcome.evaluated == len(suite.checks)


# ---- drafting -------------------------------------------------------------------------------

def test_draft_covers_columns_types_nulls_ranges_sets_rows_and_label_shares():
    frame = _toy_frame()
    frame.loc[:9, "fare"] = np.nan  # 5% empty
    draft = suite_draft.draft_suite([frame.iloc[:120], frame.iloc[120:]], TOY)

    def get(type_, column=None, value_set=None):
        found = [e for e in draft["expectations"]
                 if e["type"] == f"expect_{type_}" and e["kwargs"].get("column") == column
                 and value_set in (None, e["kwargs"].get("value_set"))]
        assert len(found) == 1, (type_, column, found)
        return found[0]

    assert get("table_columns_to_match_set")["kwargs"]["column_set"] == list(TOY.column_names)
    rows = get("table_row_count_to_be_between")
    assert (rows["kwargs"]["min_value"], rows["kwargs"]["max_value"]) == (100, 400)
    assert rows["meta"]["severity"] == "warning"
    fare_range = get("column_values_to_be_between", "fare")["kwargs"]
    low, high = frame["fare"].min(), frame["fare"].max()
    assert fare_range["min_value"] == 0  # never negative in the data: no negative margin
    assert high + 0.1 * (high - low) <= fare_range["max_value"] <= high + 0.1 * (high - low) + 1
    fare_nulls = get("column_values_to_not_be_null", "fare")["kwargs"]
    assert fare_nulls["mostly"] == pytest.approx(1 - (0.05 * 1.5 + 0.05), abs=0.001)
    assert get("column_values_to_be_in_set", "color")["kwargs"]["value_set"] == [
        "blue", "green", "red"]
    assert get("column_values_to_be_in_set", "hour")["kwargs"]["value_set"] == sorted(
        set(int(h) for h in frame["hour"]))
    assert get("column_values_to_be_in_type_list", "fare")["kwargs"]["type_list"] == [
        "float64", "float"]
    assert get("column_values_to_be_in_type_list", "color")["kwargs"]["type_list"] == ["str"]
    # The label: only the spec's classes; in each split, every class present and keeping half
    # its share. All critical.
    assert get("column_values_to_be_in_set", "y", [0, 1])["meta"] == {"severity": "critical"}
    present = get("column_distinct_values_to_contain_set", "y", [0, 1])
    assert present["meta"] == {"severity": "critical", "per_split": True}
    share = (frame["y"] == 1).mean()
    ones = get("column_values_to_be_in_set", "y", [1])
    assert ones["meta"]["severity"] == "critical" and ones["meta"]["per_split"] is True
    assert ones["kwargs"]["mostly"] == pytest.approx(share / 2, abs=0.001)
    # Ignored columns get warnings only, and an always-empty one gets no range or set.
    note = [e for e in draft["expectations"] if e["kwargs"].get("column") == "note"]
    assert [(e["type"], e["meta"]["severity"]) for e in note] == [
        ("expect_column_values_to_be_in_type_list", "warning")]


def test_draft_refuses_a_numeric_column_holding_text():
    frame = _toy_frame(10).astype({"fare": object})
    frame.loc[3, "fare"] = "twelve"
    with pytest.raises(SuiteError, match="column 'fare' .* not numbers, e.g. 'twelve'"):
        suite_draft.draft_suite([frame], TOY)


def test_write_draft_writes_a_suite_the_loader_accepts(tmp_path):
    spec = load_spec(DATA / "penguins" / "spec.yaml")
    counts = suite_draft.write_draft(spec, tmp_path / "draft" / "expectations.json")
    suite = suite_loading.load_suite(tmp_path / "draft" / "expectations.json", spec)
    assert counts == {"critical": sum(c.severity == "critical" for c in suite.checks),
                      "warning": sum(c.severity == "warning" for c in suite.checks)}
    assert counts["critical"] > 10 and counts["warning"] == 1  # the row count


# ---- loading: every mistake names the file and the expectation ------------------------------

@pytest.mark.parametrize("entry, message", [
    ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "fare"}},
     "expectation #1 (expect_column_values_to_not_be_null): meta.severity must be one of "
     "critical, warning, got None"),
    (_expectation("expect_column_values_to_not_be_null", "fatal", column="fare"),
     "meta.severity must be one of critical, warning, got 'fatal'"),
    ({**_expectation("expect_column_values_to_not_be_null", "warning", column="fare"),
      "severity": "critical"}, "severity 'critical' contradicts meta.severity 'warning'"),
    (_expectation("expect_column_values_to_not_be_null", column="farez"),
     "column 'farez' is not in the spec (columns: fare, hour, color, note, y)"),
    (_expectation("expect_column_values_to_be_purple", column="fare"),
     "Great Expectations has no expectation of that type"),
    (_expectation("expect_column_median_to_be_between", column="fare", min_value=0),
     "cannot be checked batch by batch"),
    (_expectation("expect_column_values_to_be_between", column="fare", min_value="low"),
     "Great Expectations rejects it"),
])
def test_malformed_suite_fails_with_a_clear_message(entry, message):
    with pytest.raises(SuiteError) as error:
        suite_loading.parse_suite({"expectations": [entry]}, TOY, "data/toy/expectations.json")
    assert str(error.value).startswith("expectation suite data/toy/expectations.json: ")
    assert message in str(error.value)


def test_a_bug_while_building_the_gx_suite_is_not_refused_input(monkeypatch, tmp_path):
    """Only GX's verdict on the suite is a SuiteError (exit 2, no Airflow retry); an error of
    this code while building it stays what it is, so the run fails (exit 1) and is retried."""
    def broken(self):
        raise KeyError("internal")

    monkeypatch.setattr(suite_verdicts, "CACHE_DIR", tmp_path)  # GX asked, not remembered
    monkeypatch.setattr(suite_loading.Suite, "to_gx", broken)
    entry = _expectation("expect_column_values_to_not_be_null", column="fare")
    with pytest.raises(KeyError, match="internal"):
        suite_loading.parse_suite({"expectations": [entry]}, TOY, "data/toy/expectations.json")


def test_missing_suite_file_says_how_to_make_one(tmp_path):
    with pytest.raises(SuiteError, match="file not found; draft one with `make expectations "
                                         "DATASET=toy`"):
        suite_loading.load_suite(tmp_path / "expectations.json", TOY)


def test_suite_file_that_is_not_json_is_named(tmp_path):
    (tmp_path / "expectations.json").write_text("{not json")
    with pytest.raises(SuiteError, match="expectations.json: not valid JSON"):
        suite_loading.load_suite(tmp_path / "expectations.json", TOY)


# ---- validating in batches ------------------------------------------------------------------

BATCH_SUITE = (
    _expectation("expect_table_row_count_to_be_between", "warning", min_value=150, max_value=250),
    _expectation("expect_table_columns_to_match_set", column_set=list(TOY.column_names),
                 exact_match=True),
    _expectation("expect_column_values_to_be_between", column="fare", min_value=0,
                 max_value=100, mostly=0.95),
    _expectation("expect_column_values_to_not_be_null", column="fare", mostly=0.9),
    _expectation("expect_column_values_to_be_in_set", column="color",
                 value_set=["red", "blue"], mostly=0.9),
    _expectation("expect_column_values_to_be_in_type_list", column="fare",
                 type_list=["float64", "float"]),
)


def test_verdicts_and_counts_do_not_depend_on_how_the_data_is_cut():
    frame = _toy_frame()
    frame.loc[::10, "fare"] = -5.0  # 10% out of range: fails mostly=0.95
    frame.loc[1::20, "fare"] = np.nan  # 5% empty: passes mostly=0.9
    suite = _suite(*BATCH_SUITE)
    whole = _validate(suite, frame)
    cut = _validate(suite, frame.iloc[:70], frame.iloc[70:71], frame.iloc[71:])
    for a, b in zip(whole.results, cut.results):
        assert (a.success, a.result.get("unexpected_count"), a.result.get("element_count"),
                a.result.get("missing_count")) == (
            b.success, b.result.get("unexpected_count"), b.result.get("element_count"),
            b.result.get("missing_count")), a.check.type
    assert [r.success for r in cut.results] == [True, True, False, True, False, True]
    fare_range = cut.results[2]
    assert fare_range.result["unexpected_count"] == 20
    assert fare_range.result["unexpected_percent"] == pytest.approx(100 * 20 / 190)


def test_unexpected_values_and_their_counts_are_gxs_own():
    # Validation asks GX for its BASIC result (the SUMMARY one filters the whole frame twice
    # more per expectation, for row indices nothing here reads) and counts the unexpected
    # values itself: the counts must be those GX's SUMMARY gives on the same rows.
    frame = _toy_frame()
    frame["color"] = "red"
    frame.loc[[3, 50, 120], "color"] = "green"
    frame.loc[[7, 140], "color"] = "pink"
    suite = _suite(BATCH_SUITE[4])
    cut = _validate(suite, frame.iloc[:100], frame.iloc[100:]).results[0].result
    gx_batch = suite_validation._ephemeral_batch_definition().get_batch(
        batch_parameters={"dataframe": frame})
    [gx] = gx_batch.validate(suite.to_gx(), result_format={
        "result_format": "SUMMARY", "partial_unexpected_count": suite_validation.EXAMPLES}).results
    assert cut["unexpected_count"] == gx.result["unexpected_count"] == 5
    assert sorted(cut["partial_unexpected_list"]) == sorted(gx.result["partial_unexpected_list"])
    assert ({c["value"]: c["count"] for c in cut["partial_unexpected_counts"]}
            == {c["value"]: c["count"] for c in gx.result["partial_unexpected_counts"]}
            == {"green": 3, "pink": 2})


def test_row_count_is_judged_on_the_total_not_per_batch():
    suite = _suite(BATCH_SUITE[0])
    frame = _toy_frame()
    assert _validate(suite, *[frame.iloc[i:i + 50] for i in range(0, 200, 50)]).passed == 1
    assert _validate(suite, frame.iloc[:100]).passed == 0


def test_a_string_in_a_numeric_column_from_tfrecords_fails_the_type_expectation(tmp_path):
    # CsvExampleGen makes a column with any non-number BYTES; the frame keeps the numbers as
    # numbers and the text as text, so the type expectation counts (and shows) only the text.
    _write_examples(tmp_path / "Split-train", [
        {"fare": b"12.5", "color": b"red"}, {"fare": b"twelve", "color": b"blue"},
        {"fare": b"", "color": b"red"}, {"fare": b"7", "color": b"red"},
    ])
    spec = DatasetSpec(name="toy", csv_path=Path("toy.csv"), task="binary", label="color",
                       classes=("red", "blue"),
                       features=(Feature("fare", "float"),
                                 Feature("color", "categorical", role="label")))
    suite = suite_loading.parse_suite({"expectations": [BATCH_SUITE[5]]}, spec, "s.json")
    frames = example_frames.example_frames(str(tmp_path / "Split-train"), spec)
    result = suite_validation.validate(suite, (("train", f) for f in frames)).results[0]
    assert not result.success
    assert contract_report.describe(result) == (
        "fare: expect_column_values_to_be_in_type_list(['float64', 'float']): 33.3% of values "
        "of another type, e.g. 'twelve'")


# ---- reading frames: the CSV and CsvExampleGen's TFRecords agree ----------------------------

def _feature(value):
    """A cell as CsvExampleGen writes it: float32, int64 or bytes; an empty cell holds no value."""
    import tensorflow as tf

    if value is None:
        return tf.train.Feature()
    if isinstance(value, float):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    if isinstance(value, int):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value] if value else []))


def _write_examples(folder: Path, rows: list[dict]) -> None:
    import tensorflow as tf

    folder.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(folder / "data_tfrecord-00000-of-00001.gz"), "GZIP") as w:
        for row in rows:
            features = {k: _feature(v) for k, v in row.items()}
            w.write(tf.train.Example(
                features=tf.train.Features(feature=features)).SerializeToString())


def test_tfrecord_frames_match_csv_frames(tmp_path):
    csv = tmp_path / "toy.csv"
    csv.write_text("fare,hour,color,note,y\n12.45,5,red,,0\n,7,,,1\n0.1,,blue,,1\n")
    _write_examples(tmp_path / "Split-train", [
        {"fare": 12.45, "hour": 5, "color": b"red", "note": None, "y": 0},
        {"fare": None, "hour": 7, "color": None, "note": None, "y": 1},
        {"fare": 0.1, "hour": None, "color": b"blue", "note": None, "y": 1},
    ])
    from_csv = pd.concat(example_frames.csv_frames(csv, TOY))
    from_records = list(example_frames.example_frames(str(tmp_path / "Split-train"), TOY,
                                                      batch_rows=2))
    assert [len(f) for f in from_records] == [2, 1]  # bounded batches
    from_records = pd.concat(from_records, ignore_index=True)
    pd.testing.assert_frame_equal(from_csv.reset_index(drop=True), from_records)
    assert from_records["fare"].tolist()[::2] == [12.45, 0.1]  # not float32's 12.449999809
    assert from_records["color"].tolist() == ["red", None, "blue"]


def test_tfrecord_text_keeps_non_ascii_and_replaces_invalid_utf8(tmp_path):
    _write_examples(tmp_path / "Split-train", [
        {"fare": 1.0, "color": "café".encode()}, {"fare": 2.0, "color": b"bad \xff byte"},
        {"fare": 3.0, "color": None}])
    [frame] = example_frames.example_frames(str(tmp_path / "Split-train"), TOY)
    assert frame["color"].tolist() == ["café", "bad \ufffd byte", None]


# ---- what a person reads --------------------------------------------------------------------

def test_failure_lines_name_column_expectation_share_and_examples():
    frame = _toy_frame(100)
    frame["color"] = "red"
    frame.loc[:9, "fare"] = [-12.5] * 5 + [1000.0] * 5
    frame.loc[:49, "color"] = "purple"
    outcome = _validate(_suite(*BATCH_SUITE[2:5]), frame)
    assert [contract_report.describe(r) for r in outcome.results if not r.success] == [
        "fare: expect_column_values_to_be_between(0, 100, mostly=0.95): 10.0% of values out of "
        "range (the suite allows 5.0%), e.g. -12.5, 1000",
        "color: expect_column_values_to_be_in_set(['red', 'blue'], mostly=0.9): 50.0% of values "
        "outside the set (the suite allows 10.0%), e.g. 'purple'",
    ]


def test_stop_message_puts_a_single_failure_on_its_first_line_and_lists_several():
    frame = _toy_frame(100)
    frame.loc[:9, "fare"] = -1.0
    one = contract_report.report(_validate(_suite(BATCH_SUITE[2]), frame), "/d/data_docs.html")
    assert contract_report.contract_error_message(one).splitlines() == [
        "data contract broken: fare: expect_column_values_to_be_between(0, 100, mostly=0.95): "
        "10.0% of values out of range (the suite allows 5.0%), e.g. -1",
        "  Data Docs: /d/data_docs.html",
    ]
    frame.loc[:49, "color"] = "purple"
    two = contract_report.report(_validate(_suite(*BATCH_SUITE[2:5]), frame), "/d/x.html")
    lines = contract_report.contract_error_message(two).splitlines()
    assert lines[0] == "data contract broken: 2 critical expectations failed:"
    assert lines[1].startswith("  fare: ") and lines[2].startswith("  color: ")


def test_one_stray_value_in_a_file_too_small_for_the_allowed_share_is_a_warning():
    # mostly=0.95 allows 5%: a file of 19 rows cannot hold one stray value within it, a file of
    # 20 can. The same one value must not break the contract in the first and pass the second.
    suite = _suite(BATCH_SUITE[2])  # fare between 0 and 100, mostly 0.95, critical
    for rows in (1, 19):
        frame = _toy_frame(rows)
        frame.loc[0, "fare"] = 120.0
        report = contract_report.report(_validate(suite, frame), "/d/x.html")
        assert report["failed"] == {"critical": 0, "warning": 1}
        assert contract_report.contract_error_message(report) is None
        assert report["failures"][0]["message"] == (
            f"fare: expect_column_values_to_be_between(0, 100, mostly=0.95): 1 of {rows} values "
            "out of range (the suite allows 5.0%; one value is a warning in a file too small to "
            "hold that share), e.g. 120")
    frame = _toy_frame(20)
    frame.loc[0, "fare"] = 120.0
    assert _validate(suite, frame).results[0].success
    # Two stray values, or a suite that allows none, still break it.
    frame = _toy_frame(19)
    frame.loc[:1, "fare"] = 120.0
    assert _validate(suite, frame).failures("critical")
    strict = _suite(_expectation("expect_column_values_to_be_between", column="fare",
                                 min_value=0, max_value=100))
    assert _validate(strict, _toy_frame(1).assign(fare=120.0)).failures("critical")


LABEL_SUITE = (
    _expectation("expect_column_values_to_be_in_set", column="y", value_set=[0, 1]),
    {**_expectation("expect_column_distinct_values_to_contain_set", column="y",
                    value_set=[0, 1]), "meta": {"severity": "critical", "per_split": True}},
    {**_expectation("expect_column_values_to_be_in_set", column="y", value_set=[1],
                    mostly=0.15), "meta": {"severity": "critical", "per_split": True}},
)


def _split_outcome(train: list[float], eval_: list[float], batch: int = 4):
    frames = [("train", pd.DataFrame({"y": train[i:i + batch]}))
              for i in range(0, len(train), batch)]
    frames += [("eval", pd.DataFrame({"y": eval_[i:i + batch]}))
               for i in range(0, len(eval_), batch)]
    outcome = suite_validation.validate(_suite(*LABEL_SUITE), frames, label="y")
    return outcome, contract_report.report(outcome, "/d/x.html", label="y", classes=("0", "1"))


def test_label_checks_marked_per_split_are_judged_in_each_split():
    # 30% ones over both splits, but none in eval: the pooled share would pass.
    outcome, report = _split_outcome([0.0] * 8 + [1.0] * 6, [0.0] * 6)
    present, share = outcome.results[1], outcome.results[2]
    assert (present.success, present.split) == (False, "eval")
    assert present.result["details"]["missing"] == [1]
    assert (share.success, share.split) == (False, "eval")
    assert report["label"]["shares"] == {"train": {"0": 8 / 14, "1": 6 / 14},
                                         "eval": {"0": 1.0, "1": 0.0}}
    # Both splits mixed: every check passes; presence is the union over the split's batches.
    outcome, _ = _split_outcome([0.0] * 4 + [1.0] * 4, [0.0] * 4 + [1.0] * 2)
    assert all(r.success for r in outcome.results)


def test_a_collapsed_label_stops_with_one_line_naming_it_and_the_shares_seen():
    _, report = _split_outcome([0.0] * 12, [0.0] * 5)
    assert contract_report.contract_error_message(report).splitlines() == [
        "data contract broken: label 'y' has class shares outside the suite's bounds: "
        "train 0 100.0%, 1 0.0%; eval 0 100.0%, 1 0.0% (every class must appear in every "
        "split, each within its bounds)",
        "  Data Docs: /d/x.html",
    ]
    # A value outside the classes keeps its own message beside it.
    _, report = _split_outcome([0.0] * 12, [0.0] * 4 + [7.0])
    lines = contract_report.contract_error_message(report).splitlines()
    assert lines[0] == "data contract broken: 2 critical expectations failed:"
    assert "eval 0 80.0%, 1 0.0%, 7 20.0%" in lines[1]
    assert lines[2] == ("  y: expect_column_values_to_be_in_set([0, 1]): 5.9% of values "
                        "outside the set, e.g. 7")  # pooled: 1 of 17 rows


def test_per_split_must_be_a_boolean():
    entry = {**LABEL_SUITE[1], "meta": {"severity": "critical", "per_split": "yes"}}
    with pytest.raises(SuiteError, match="meta.per_split must be true or false, got 'yes'"):
        _suite(entry)


def test_failed_warnings_are_reported_but_do_not_stop():
    suite = _suite(BATCH_SUITE[0])
    report = contract_report.report(_validate(suite, _toy_frame(20)), "/d/x.html")
    assert report["failed"] == {"critical": 0, "warning": 1}
    assert report["failures"][0]["message"] == (
        "table: expect_table_row_count_to_be_between(150, 250): 20 rows")
    assert contract_report.contract_error_message(report) is None


def test_summary_figure():
    assert contract_report.summary_figure(59, 58, 1, 0) == "expectations passed 58/59, 1 warning"
    assert contract_report.summary_figure(59, 54, 1, 4) == (
        "expectations passed 54/59, 1 warning, 4 critical")
    assert contract_report.summary_figure(3, 3, 0, 0) == "expectations passed 3/3, 0 warnings"


# ---- the component's pieces -----------------------------------------------------------------

def test_validator_writes_result_json_data_docs_and_report(tmp_path):
    from tfx.types import artifact_utils, standard_artifacts

    from components.contract import gx_validator

    rows = [{"fare": 10.0 + i, "hour": i % 24, "color": b"red", "note": None, "y": i % 2}
            for i in range(40)]
    for i in (3, 5, 33):  # 3 of 40 out of range, over both splits: more than mostly allows
        rows[i]["fare"] = -12.5
    _write_examples(tmp_path / "examples" / "Split-train", rows[:30])
    _write_examples(tmp_path / "examples" / "Split-eval", rows[30:])
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    suite = {"name": "toy", "expectations": list(BATCH_SUITE[1:3])}
    (tmp_path / "out").mkdir()
    report = gx_validator.validate_examples(examples, json.dumps(suite), "toy.json",
                                            TOY.to_config(), str(tmp_path / "out"), batch_rows=7)
    assert report["rows"] == {"train": 30, "eval": 10}
    assert report["failed"] == {"critical": 1, "warning": 0}
    stored = json.loads((tmp_path / "out" / "report.json").read_text())
    assert stored == json.loads(json.dumps(report))
    result = json.loads((tmp_path / "out" / gx_validator.VALIDATION_FILE).read_text())
    assert result["statistics"]["unsuccessful_expectations"] == 1
    page = (tmp_path / "out" / gx_validator.DATA_DOCS_FILE).read_text()
    assert report["data_docs"] == str(tmp_path / "out" / gx_validator.DATA_DOCS_FILE)
    assert page.startswith("<!DOCTYPE html>") or "<html" in page[:500]
    assert "fare" in page and "-12.5" in page


def test_component_consumes_examples_and_outputs_a_report():
    from tfx.types import channel_utils, standard_artifacts

    from components.contract.gates import DataValidationReport, ExpectationsGate
    from components.contract.gx_validator import GreatExpectationsValidator

    validator = GreatExpectationsValidator(
        examples=channel_utils.as_channel([standard_artifacts.Examples()]),
        suite="{}", suite_source="s.json", spec="{}")
    assert validator.outputs["report"].type is DataValidationReport
    gate = ExpectationsGate(validation=validator.outputs["report"])
    assert gate.outputs == {}


def test_pipeline_makes_the_trainer_wait_for_the_gates_and_not_the_transform(tmp_path):
    """No model learns from data a gate refused; the Transform runs beside the checks
    (pipeline/runners/check_branch.py), so it does not wait for them."""
    from pipeline.config.settings import Settings
    from pipeline.definition import builder

    settings = Settings(dataset="taxi", output_root=tmp_path)
    pipeline = builder.create_pipeline(settings, settings.load_spec(), write_files=False)
    nodes = {node.id: node for node in pipeline.components}
    gates = {builder.EXPECTATIONS_GATE, builder.ANOMALIES_GATE, builder.DRIFT_GATE}
    assert gates <= {n.id for n in nodes[builder.TRAINER].upstream_nodes}
    assert {n.id for n in nodes[builder.TRANSFORM].upstream_nodes} == {
        builder.EXAMPLE_GEN, builder.SCHEMA_IMPORTER}
    validator = nodes[builder.EXPECTATIONS_VALIDATOR]
    assert validator.inputs["examples"].producer_component_id == builder.EXAMPLE_GEN


# ---- the command line -----------------------------------------------------------------------

@pytest.mark.e2e  # the real CLI in a subprocess (~11 s), out of make test-fast
def test_make_expectations_drafts_a_suite_for_review(tmp_path):
    result = subprocess.run(
        pipeline_command("expectations", "--dataset", "penguins", "--output-root", str(tmp_path)),
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    draft = tmp_path / "penguins" / "expectations_draft" / "expectations.json"
    assert f"Draft suite: {draft} (" in result.stdout
    assert f"then copy it to {DATA / 'penguins' / 'expectations.json'}" in result.stdout
    assert json.loads(draft.read_text())["meta"]["drafted_rows"] == 344


def test_a_dataset_without_a_suite_is_refused_before_the_run(tmp_path):
    shutil.copytree(DATA / "penguins", tmp_path / "penguins",
                    ignore=shutil.ignore_patterns("expectations.json"))
    result = subprocess.run(
        pipeline_command("run", "--dataset", "penguins", "--data-root", str(tmp_path),
                         "--output-root", str(tmp_path / "outputs")),
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: expectation suite {tmp_path / 'penguins' / 'expectations.json'}: file not "
        "found; draft one with `make expectations DATASET=penguins`, review it and commit it "
        "there"]
    assert not (tmp_path / "outputs").exists()


def test_the_summary_line_says_what_the_first_failed_warning_was(tmp_path):
    """"expectations passed 46/47, 1 warning" left the reader to find the warning in the log;
    the line names it (the validator's own message), and where the others are."""
    from ml_metadata.proto import metadata_store_pb2

    from components.contract.gates import REPORT_FILE
    from pipeline.config import stage_names
    from pipeline.console import summary_figures
    from pipeline.mlmd.queries import NodeExecution

    suite = _suite(BATCH_SUITE[0])
    report = contract_report.report(_validate(suite, _toy_frame(20)), "/d/x.html")
    (tmp_path / REPORT_FILE).write_text(json.dumps(report))

    def node(warnings: int, critical: int = 0) -> NodeExecution:
        artifact = metadata_store_pb2.Artifact(uri=str(tmp_path))
        for name, value in (("evaluated", 3), ("passed", 3 - warnings - critical),
                            ("failed_warning", warnings), ("failed_critical", critical)):
            artifact.custom_properties[name].int_value = value
        return NodeExecution(stage_names.EXPECTATIONS_VALIDATOR, "complete", None,
                             {"report": [artifact]})

    assert summary_figures.figure(node(1)) == (
        "expectations passed 2/3, 1 warning: table: "
        "expect_table_row_count_to_be_between(150, 250): 20 rows")
    assert summary_figures.figure(node(2)).endswith("20 rows (and 1 more: /d/x.html)")
    # A critical failure is the run's error, which says it; the line keeps its counts.
    assert summary_figures.figure(node(1, 1)) == (
        "expectations passed 1/3, 1 warning, 1 critical")
