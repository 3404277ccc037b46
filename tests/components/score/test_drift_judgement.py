"""Drift that cannot be told from sampling noise is not reported (components/score/drift.py,
drift_draft.py): a comparison on too few rows is not judged, and the drafted thresholds sit above
what a numeric column of few distinct values reads between its training split and its own file.

Each case runs TFX's DistributionValidator executor and DriftGate's function on TFDV statistics
of small frames written as StatisticsGen writes them (no pipeline run).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import DATA
from components.contract.data_errors import DataValidationError
from components.contract.gates import REPORT_FILE, DataValidationReport
from components.score import drift, drift_draft
from pipeline.config import stage_names
from pipeline.config.dataset_spec import DRIFT_DEFAULTS, DRIFT_MIN_ROWS, Drift, load_spec
from pipeline.console import summary_figures
from pipeline.mlmd.queries import NodeExecution

PENGUINS = DATA / "penguins"
SHIFT_MM = 8.0  # bill length shifted within its range: the e2e test's drift, read at 0.3+


@pytest.fixture
def spec(tmp_path):
    """Penguins with bill_length_mm critical: its drift stops a run that is judged."""
    folder = tmp_path / "penguins"
    folder.mkdir()
    for name in ("spec.yaml", "data.csv"):
        (folder / name).write_bytes((PENGUINS / name).read_bytes())
    (folder / "schema").mkdir()
    (folder / "schema" / "schema.pbtxt").write_bytes(
        (PENGUINS / "schema" / "schema.pbtxt").read_bytes())
    with open(folder / "spec.yaml", "a") as f:
        f.write("drift:\n  critical: [bill_length_mm]\n")
    return load_spec(folder / "spec.yaml")


def _penguins(rows: int, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """`rows` penguins drawn with replacement (complete rows, the label dropped)."""
    frame = pd.read_csv(PENGUINS / "data.csv").dropna().drop(columns=["species"])
    frame = frame.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    frame["bill_length_mm"] = frame["bill_length_mm"] + shift
    return frame


def _statistics(folder: Path, splits: dict[str, pd.DataFrame]):
    """An ExampleStatistics artifact as StatisticsGen writes it: FeatureStats.pb per split."""
    import tensorflow_data_validation as tfdv
    from tfx.types import artifact_utils, standard_artifacts

    artifact = standard_artifacts.ExampleStatistics()
    artifact.uri = str(folder)
    artifact.split_names = artifact_utils.encode_split_names(list(splits))
    for split, frame in splits.items():
        path = Path(artifact_utils.get_split_uri([artifact], split))
        path.mkdir(parents=True)
        (path / drift.STATS_FILE).write_bytes(
            tfdv.generate_statistics_from_dataframe(frame).SerializeToString())
    return artifact


def _schema(spec):
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse(spec.schema_path.read_text(), schema_pb2.Schema())


def _gate(tmp: Path, spec, current: dict, baseline: dict, pair: tuple[str, str],
          drop: bool = False, report_uri: Path | None = None) -> dict:
    """DistributionValidator (TFX's executor, drift.py's config) then DriftGate: its report."""
    from tfx.components.distribution_validator import executor
    from tfx.types import standard_artifacts

    statistics = _statistics(tmp / "statistics", current)
    baseline_statistics = _statistics(tmp / "baseline", baseline)
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp / "anomalies")
    # A file to score is compared on the columns it has (the builder passes its header): the
    # label only when it holds it; a training drop always has it.
    present = None if drop else sorted({c for frame in current.values() for c in frame})
    config = drift.distribution_config(spec, drift.checked_columns(spec, _schema(spec), present),
                                       spec.drift.row_count_change if drop else None)
    executor.Executor().Do(
        {"statistics": [statistics], "baseline_statistics": [baseline_statistics]},
        {"anomalies": [anomalies]},
        {"distribution_validator_config": config, "include_split_pairs": json.dumps([pair])})
    report = DataValidationReport()
    report.uri = str(report_uri or tmp / "report")
    Path(report.uri).mkdir(parents=True)
    gate = drift.DriftGate.EXECUTOR_SPEC.executor_class._FUNCTION
    gate(anomalies=anomalies, statistics=statistics, report=report,
         critical_columns=json.dumps(list(spec.drift.critical)),
         baseline_statistics=baseline_statistics, compare_rows=int(drop), code_fingerprint="",
         label=spec.label, row_count_change=spec.drift.row_count_change if drop else -1.0)
    return json.loads((Path(report.uri) / REPORT_FILE).read_text())


def _stage_figure(tmp: Path) -> str:
    """The DriftGate's summary line figure, read from the report as the live summary reads it."""
    from ml_metadata.proto import metadata_store_pb2

    node = NodeExecution(stage_names.DRIFT_GATE, "complete", None,
                         {"report": [metadata_store_pb2.Artifact(uri=str(tmp / "report"))]})
    return summary_figures.figure(node)


def test_a_five_row_file_is_not_judged_and_its_critical_column_does_not_stop(spec, tmp_path):
    """5 rows read 0.3 to 0.8 on every numeric column against the training data: noise, not
    drift. Nothing is named drifted, the critical column does not stop the scoring, and the
    summary and MLflow say that drift was not judged and why."""
    report = _gate(tmp_path, spec, {"score": _penguins(5, shift=SHIFT_MM)},
                   {"train": _penguins(240), "eval": _penguins(100, seed=1)}, ("score", "train"))
    line = f"drift: not judged on 5 rows (at least {DRIFT_MIN_ROWS} needed)"
    assert report["compared"] and not report["judged"]
    assert report["drifted"] == [] and report["not_judged"] == line
    # The measurements are kept in the report: without the minimum they were alarms.
    assert any(m["value"] > m["threshold"] for m in report["measurements"]
               if m["column"] == "bill_length_mm")
    assert summary_figures.drift_lines(report) == [line]
    assert _stage_figure(tmp_path) == line.removeprefix("drift: ")
    assert summary_figures.drift_metrics(report) == {
        "drift/judged": 0.0, "drift/min_rows": float(DRIFT_MIN_ROWS),
        "drift/drifted_columns": 0.0}


def test_the_same_drift_on_enough_rows_is_judged_and_stops_on_the_critical_column(
        spec, tmp_path):
    """The counterpart of the 5-row file: at the minimum the shift is drift, and critical."""
    with pytest.raises(DataValidationError, match=r"1 critical column drifted past the spec's "
                       r"threshold:\n  drift: bill_length_mm Jensen–Shannon .* \(critical\)"):
        _gate(tmp_path, spec, {"score": _penguins(DRIFT_MIN_ROWS, shift=SHIFT_MM)},
              {"train": _penguins(240)}, ("score", "train"))
    report = json.loads((tmp_path / "report" / REPORT_FILE).read_text())
    assert report["judged"] and not report["not_judged"]
    assert [m["column"] for m in report["drifted"]] == ["bill_length_mm"]
    metrics = summary_figures.drift_metrics(report)
    assert metrics["drift/judged"] == 1.0 and metrics["drift/bill_length_mm"] > 0.1


def test_a_baseline_of_too_few_rows_is_named_as_the_reason(spec, tmp_path):
    report = _gate(tmp_path, spec, {"score": _penguins(300, shift=SHIFT_MM)},
                   {"train": _penguins(40)}, ("score", "train"))
    assert not report["judged"] and report["drifted"] == []
    assert report["not_judged"] == (f"drift: not judged against a baseline of 40 rows "
                                    f"(at least {DRIFT_MIN_ROWS} needed)")


def test_a_small_training_drop_is_not_judged_but_its_row_count_still_is(spec, tmp_path):
    """Drift between drops compares the train splits: a drop of 60 train rows is not judged
    for drift, and its fall in rows (60 train rows against 240, more than row_count_change) is
    reported. The line, the summary and MLflow count the same rows: the train splits' (the
    summary and the metric counted every split, 340 -> 80, beside the line's 240 -> 60), and
    the summary and a metric say that the count is out of bounds."""
    report = _gate(tmp_path, spec,
                   {"train": _penguins(60, shift=SHIFT_MM), "eval": _penguins(20, seed=1)},
                   {"train": _penguins(240), "eval": _penguins(100, seed=1)},
                   ("train", "train"), drop=True)
    assert not report["judged"] and report["drifted"] == []
    assert (report["rows"], report["baseline_rows"], report["rows_split"]) == (60, 240, "train")
    assert report["total_rows"] == 80 and report["row_count_out_of_bounds"] is True
    lines = summary_figures.drift_lines(report)
    assert lines[0] == f"drift: not judged on 60 rows (at least {DRIFT_MIN_ROWS} needed)"
    # Counts and the setting, not TFDV's "ratio of num examples ... versus the previous span".
    assert lines[1] == ("drift: row count: train 60 rows against 240 in the last run (-75.0%; "
                        "allowed ±50%: drift.row_count_change in spec.yaml)")
    assert _stage_figure(tmp_path) == (f"not judged on 60 rows (at least {DRIFT_MIN_ROWS} "
                                       "needed); rows 240 -> 60 in train (-75.0%, out of "
                                       "bounds: allowed ±50%)")
    metrics = summary_figures.drift_metrics(report)
    assert metrics["drift/judged"] == 0.0 and not any(
        key.startswith("drift/bill") for key in metrics)
    assert metrics["drift/row_count_change"] == pytest.approx(60 / 240 - 1)
    assert metrics["drift/row_count_out_of_bounds"] == 1.0


def test_a_row_count_just_past_its_bound_does_not_read_as_allowed(spec, tmp_path):
    """The tour's drop: 1,390 train rows against 2,796 (-50.3%) with ±50% allowed. Rounded to a
    whole percent the line and the summary read -50%, as if allowed; one decimal shows it (and
    more where one would still print the bound). A count within bounds is said to be so by the
    metric (0), not by the summary."""
    from components.score.row_count import change_text

    report = _gate(tmp_path / "out", spec,
                   {"train": _penguins(139), "eval": _penguins(60, seed=1)},
                   {"train": _penguins(280), "eval": _penguins(120, seed=1)},
                   ("train", "train"), drop=True)
    assert report["row_count_anomalies"] == [
        "train 139 rows against 280 in the last run (-50.4%; allowed ±50%: "
        "drift.row_count_change in spec.yaml)"]
    assert _stage_figure(tmp_path / "out").endswith(
        "; rows 280 -> 139 in train (-50.4%, out of bounds: allowed ±50%)")
    assert change_text(-0.5003, 0.5) == "-50.03%" and change_text(-0.4996, 0.5) == "-50.0%"
    assert change_text(0.12) == "+12.0%"

    report = _gate(tmp_path / "within", spec,
                   {"train": _penguins(150), "eval": _penguins(60, seed=1)},
                   {"train": _penguins(280), "eval": _penguins(120, seed=1)},
                   ("train", "train"), drop=True)
    assert report["row_count_anomalies"] == [] and report["row_count_out_of_bounds"] is False
    assert _stage_figure(tmp_path / "within").endswith("; rows 280 -> 150 in train (-46.4%)")
    assert summary_figures.drift_metrics(report)["drift/row_count_out_of_bounds"] == 0.0


def test_the_minimum_keeps_a_shares_sampling_noise_within_the_default_thresholds():
    """The rule beside DRIFT_MIN_ROWS: a share of 0.5 moves by 1.96 standard errors in 1
    comparison of 20; at the minimum that is within both default thresholds."""
    noise = 1.96 * (0.5 * 0.5 / DRIFT_MIN_ROWS) ** 0.5
    assert noise <= min(DRIFT_DEFAULTS["l_infinity"], DRIFT_DEFAULTS["jensen_shannon"])


def _discrete_table(folder: Path, rows: int = 442, seed: int = 67):
    """A numeric column of few distinct values (most rows on 2, 3, ..., 8, some measured to the
    hundredth), as diabetes' s4 is, beside a continuous one. The seed is one of the 8% of such
    tables (30 of 360 seeds tried) on which the first random half cut (the draft's seed) reads
    below a third of the default, so that one cut drafted the default 0.1, while the training
    split reads up to 0.26 against the whole file: the false alarm of the bug report."""
    rng = np.random.default_rng(seed)
    level = rng.choice([2.0, 3, 4, 5, 6, 7, 8], size=rows, p=[.07, .3, .25, .16, .1, .08, .04])
    odd = rng.random(rows) < 0.15
    level[odd] = np.round(level[odd] + rng.uniform(-0.5, 0.5, odd.sum()), 2)
    frame = pd.DataFrame({"level": level, "size": np.round(rng.normal(50, 10, rows), 1),
                          "target": np.round(rng.normal(size=rows), 3)})
    folder.mkdir()
    frame.to_csv(folder / "data.csv", index=False)
    (folder / "spec.yaml").write_text(
        "name: discrete\ncsv: data.csv\ntask: regression\nlabel: target\nfeatures:\n"
        "  level: {type: float}\n  size: {type: float}\n  target: {type: float, role: label}\n")
    return frame


def _training_split_against_whole_file(frame: pd.DataFrame, spec, column: str,
                                       splits: int = 5, train_ratio: float = 0.7) -> float:
    """The largest Jensen-Shannon divergence, with the comparator drift.py configures, between
    a random training split (the baseline, as the champion's) and the whole file scored."""
    import tensorflow_data_validation as tfdv

    features = frame.drop(columns=[spec.label])
    whole = tfdv.generate_statistics_from_dataframe(features)
    config = drift.distribution_config(spec, {column: drift.JENSEN_SHANNON})
    found = []
    for seed in range(splits):
        order = np.random.default_rng(seed).permutation(len(features))
        train = tfdv.generate_statistics_from_dataframe(
            features.iloc[np.sort(order[:int(len(features) * train_ratio)])])
        schema = tfdv.infer_schema(train)
        for feature in config.default_slice_config.feature:  # as DistributionValidator does
            tfdv.get_feature(schema, feature.path.step[0]).drift_comparator.CopyFrom(
                feature.distribution_comparator)
        anomalies = tfdv.validate_statistics(whole, schema, previous_statistics=train)
        found += [m.value for info in anomalies.drift_skew_info
                  if list(info.path.step) == [column] for m in info.drift_measurements]
    return max(found)


def test_a_discrete_numeric_columns_drafted_threshold_is_above_its_training_split_reading(
        tmp_path):
    frame = _discrete_table(tmp_path / "discrete")
    spec = load_spec(tmp_path / "discrete" / "spec.yaml")
    block = yaml.safe_load("\n".join(drift_draft.block_lines(
        drift_draft.measure_noise(spec), "data.csv")))["drift"]
    drafted = Drift(columns=tuple(block.get("columns", {}).items()))
    reading = _training_split_against_whole_file(frame, spec, "level")
    # The default would flag the training data itself; the drafted threshold does not.
    assert reading > DRIFT_DEFAULTS["jensen_shannon"]
    assert drafted.threshold("level", drift.JENSEN_SHANNON) > reading


def test_a_reading_within_the_baselines_own_split_noise_is_not_drift(tmp_path):
    """With the defaults `make init` writes, the whole discrete table scored against its own
    training split reads over 0.1 on `level` (the bug report's false alarm): the baseline's
    train and eval splits read that far apart already, so the gate records it within the noise
    and reports no drift; the same column shifted is still drift."""
    import tensorflow_data_validation as tfdv

    frame = _discrete_table(tmp_path / "discrete")
    folder = tmp_path / "discrete"
    (folder / "schema").mkdir()
    features = frame.drop(columns=["target"])
    (folder / "schema" / "schema.pbtxt").write_text(str(tfdv.infer_schema(
        tfdv.generate_statistics_from_dataframe(features))))
    spec = load_spec(folder / "spec.yaml")
    order = np.random.default_rng(3).permutation(len(features))
    cut = int(len(features) * 0.7)
    baseline = {"train": features.iloc[np.sort(order[:cut])],
                "eval": features.iloc[np.sort(order[cut:])]}
    report = _gate(tmp_path / "same", spec, {"score": features}, baseline, ("score", "train"))
    level = next(m for m in report["measurements"] if m["column"] == "level")
    assert level["value"] > level["threshold"] == DRIFT_DEFAULTS["jensen_shannon"]
    assert report["judged"] and report["drifted"] == [] and report["within_noise"] == ["level"]
    assert level["noise"] >= level["value"]
    assert _stage_figure(tmp_path / "same") == (
        "no drift in 2 columns (level over its threshold but within the noise of the "
        "baseline's own splits)")

    shifted = features.assign(level=features["level"] + 3)
    report = _gate(tmp_path / "shifted", spec, {"score": shifted}, baseline, ("score", "train"))
    assert [m["column"] for m in report["drifted"]] == ["level"]
    assert report["within_noise"] == []


def _stores_table(folder: Path, rows: int = 1200, stores: int = 300, seed: int = 5):
    """A text column of many rare values (300 store codes, a third of a percent each: more
    than TFDV's schema inference lists, so no value list) beside a number; its schema as
    TFDV infers it."""
    import tensorflow_data_validation as tfdv

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"store": [f"S{i:03d}" for i in rng.integers(0, stores, rows)],
                          "size": np.round(rng.normal(50, 10, rows), 1)})
    folder.mkdir()
    (folder / "spec.yaml").write_text(
        "name: stores\ncsv: data.csv\ntask: regression\nlabel: target\nfeatures:\n"
        "  store: {type: categorical}\n  size: {type: float}\n"
        "  target: {type: float, role: label}\n")
    frame.assign(target=0.0).to_csv(folder / "data.csv", index=False)
    (folder / "schema").mkdir()
    schema = tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(frame))
    assert not tfdv.get_feature(schema, "store").HasField("domain")  # no value list
    (folder / "schema" / "schema.pbtxt").write_text(str(schema))
    return frame


def test_a_column_of_rare_values_all_replaced_by_new_ones_is_drift(tmp_path):
    """L-infinity reads the largest change in one value's share: 300 rare store codes all
    replaced by codes the model never saw move no share by more than a percent. The share of
    values not in the baseline names it; the same stores drawn again, or a few new ones, do not."""
    frame = _stores_table(tmp_path / "stores")
    spec = load_spec(tmp_path / "stores" / "spec.yaml")
    baseline = {"train": frame.iloc[:840], "eval": frame.iloc[840:]}
    rng = np.random.default_rng(9)
    renamed = frame.iloc[:600].assign(store=[f"N{i:03d}" for i in rng.integers(0, 300, 600)])
    report = _gate(tmp_path / "new", spec, {"score": renamed}, baseline, ("score", "train"))
    by = {(m["column"], m["comparator"]): m for m in report["measurements"]}
    assert by["store", drift.L_INFINITY]["value"] < DRIFT_DEFAULTS["l_infinity"]  # missed there
    assert by["store", drift.UNSEEN]["value"] == 1.0
    assert [(m["column"], m["comparator"]) for m in report["drifted"]] == [("store", drift.UNSEEN)]
    assert report["drifted"][0]["line"] == "drift: store 100% of values not in the baseline (> 10%)"
    assert _stage_figure(tmp_path / "new") == "1 of 2 columns drifted: store"
    metrics = summary_figures.drift_metrics(report)
    assert metrics["drift/store/unseen"] == 1.0 and metrics["drift/drifted_columns"] == 1.0

    # The same stores, drawn again; then one row in twenty from a new store.
    again = frame.sample(600, replace=True, random_state=11)
    report = _gate(tmp_path / "again", spec, {"score": again}, baseline, ("score", "train"))
    assert report["drifted"] == []
    few = again.assign(store=[f"N{i}" if i % 20 == 0 else s
                              for i, s in enumerate(again["store"])])
    report = _gate(tmp_path / "few", spec, {"score": few}, baseline, ("score", "train"))
    unseen = next(m for m in report["measurements"] if m["comparator"] == drift.UNSEEN)
    assert 0.04 < unseen["value"] < 0.1 and report["drifted"] == []
    # Too few to be drift, but said: each such row is out of the model's vocabulary.
    assert _stage_figure(tmp_path / "few") == \
        f"no drift in 2 columns; values not seen in training: store {unseen['value']:.1%}"
    trained_on = frame.iloc[:840].sample(600, replace=True, random_state=12)
    _gate(tmp_path / "seen", spec, {"score": trained_on}, baseline, ("score", "train"))
    assert _stage_figure(tmp_path / "seen") == "no drift in 2 columns"


# ---- the label (a change in the class mix between training drops) -------------------------

def _credit_spec(folder: Path, integer_label: bool = False, drift_block: str = ""):
    """ISLR's Default as the tour had it: balance, income, student, the label `default`
    (3.1% `Yes`, or 1 with integer classes); its schema as TFDV infers it."""
    import tensorflow_data_validation as tfdv

    folder.mkdir(parents=True)
    label = "{type: int, role: label}" if integer_label else "{type: categorical, role: label}"
    classes = "[0, 1]" if integer_label else "[No, 'Yes']"
    (folder / "spec.yaml").write_text(
        f"name: credit\ncsv: data.csv\ntask: binary\nlabel: default\nclasses: {classes}\n"
        "features:\n  default: " + label + "\n  student: {type: categorical}\n"
        "  balance: {type: float}\n  income: {type: float}\n" + drift_block)
    frame = _credit(2000, 0.031, integer_label)
    frame.to_csv(folder / "data.csv", index=False)
    (folder / "schema").mkdir()
    (folder / "schema" / "schema.pbtxt").write_text(
        str(tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(frame))))
    return load_spec(folder / "spec.yaml")


def _credit(rows: int, yes: float, integer_label: bool = False, seed: int = 0) -> pd.DataFrame:
    """Rows whose features do not depend on the label's mix: only the class mix moves."""
    rng = np.random.default_rng(seed)
    positive = rng.random(rows) < yes
    return pd.DataFrame({
        "default": positive.astype("int64") if integer_label else
        np.where(positive, "Yes", "No"),
        "student": np.where(rng.random(rows) < 0.3, "Yes", "No"),
        "balance": np.round(rng.normal(800, 480, rows), 2),
        "income": np.round(rng.normal(33000, 13000, rows), 2)})


def _drops(spec, tmp: Path, yes: float, integer_label: bool = False) -> dict:
    """The new drop (train and eval splits, 20% `Yes` or `yes`) against the last one's."""
    current = {"train": _credit(2800, yes, integer_label, seed=1),
               "eval": _credit(1200, yes, integer_label, seed=2)}
    baseline = {"train": _credit(2800, 0.031, integer_label, seed=3),
                "eval": _credit(1200, 0.031, integer_label, seed=4)}
    return _gate(tmp, spec, current, baseline, ("train", "train"), drop=True)


@pytest.mark.parametrize("integer_label", [False, True])
def test_a_change_in_the_labels_class_mix_between_drops_is_drift(tmp_path, integer_label):
    """The tour: credit at 3.1% `Yes`, then a drop at 20%: `no drift in 3 columns`, and the
    model trained on it became champion and scored accuracy 0.70 where the last one scored
    0.89. The label is compared (L-infinity over its classes) and named as the label; integer
    classes too, where TFDV's own L-infinity reads 0 (numeric statistics)."""
    spec = _credit_spec(tmp_path / "credit", integer_label)
    assert drift.checked_columns(spec, _schema(spec))["default"] == drift.L_INFINITY
    report = _drops(spec, tmp_path / "drop", 0.2, integer_label)
    [m] = report["drifted"]
    assert (m["column"], m["comparator"], m["label"]) == ("default", drift.L_INFINITY, True)
    assert 0.14 < m["value"] < 0.2
    assert m["line"] == f"drift: default (label) L-infinity {m['value']:.2f} > 0.10"
    assert summary_figures.drift_lines(report) == [m["line"]]
    assert _stage_figure(tmp_path / "drop") == (
        "1 of 4 columns drifted: default (label); rows 2,800 -> 2,800 in train (+0.0%)")
    assert summary_figures.drift_metrics(report)["drift/default"] == m["value"]

    # The same mix again is no drift (sampling alone moves it by a percent or two).
    report = _drops(spec, tmp_path / "same", 0.031, integer_label)
    assert report["drifted"] == []
    label = next(m for m in report["measurements"] if m["column"] == "default")
    assert label["value"] < 0.03


def test_the_label_takes_the_specs_threshold_and_can_be_critical(tmp_path):
    """drift.columns and drift.critical accept the label (they refused it: 'not a feature
    column'): its own threshold lets the mix move further; listed critical, it stops the run."""
    spec = _credit_spec(tmp_path / "loose", drift_block="drift:\n  columns: {default: 0.2}\n")
    assert _drops(spec, tmp_path / "loose-drop", 0.2)["drifted"] == []
    spec = _credit_spec(tmp_path / "strict", drift_block="drift:\n  critical: [default]\n")
    with pytest.raises(DataValidationError, match=r"1 critical column drifted past the spec's "
                       r"threshold:\n  drift: default \(label\) L-infinity 0\.\d\d > 0\.10 "
                       r"\(critical\)$"):
        _drops(spec, tmp_path / "strict-drop", 0.2)


def test_a_file_to_score_is_compared_on_its_label_only_when_it_has_it(tmp_path):
    spec = _credit_spec(tmp_path / "credit")
    header = ["student", "balance", "income"]
    assert "default" not in drift.checked_columns(spec, _schema(spec), header)
    assert drift.checked_columns(spec, _schema(spec), header + ["default"])["default"] == \
        drift.L_INFINITY
    baseline = {"train": _credit(1400, 0.031, seed=3), "eval": _credit(600, 0.031, seed=4)}
    report = _gate(tmp_path / "unlabelled", spec,
                   {"score": _credit(500, 0.2, seed=5).drop(columns=["default"])}, baseline,
                   ("score", "train"))
    assert "default" not in {m["column"] for m in report["measurements"]}
    report = _gate(tmp_path / "labelled", spec, {"score": _credit(500, 0.2, seed=5)}, baseline,
                   ("score", "train"))
    assert [m["column"] for m in report["drifted"]] == ["default"]


def test_a_regression_label_is_compared_by_jensen_shannon(tmp_path):
    spec = load_spec(_discrete_spec(tmp_path))
    columns = drift.checked_columns(spec, _schema(spec))
    assert columns["target"] == drift.JENSEN_SHANNON


def _discrete_spec(tmp_path: Path) -> Path:
    import tensorflow_data_validation as tfdv

    frame = _discrete_table(tmp_path / "discrete")
    (tmp_path / "discrete" / "schema").mkdir()
    (tmp_path / "discrete" / "schema" / "schema.pbtxt").write_text(
        str(tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(frame))))
    return tmp_path / "discrete" / "spec.yaml"


def test_the_drafted_block_measures_the_label_too(tmp_path):
    """`make expectations` drafts from the columns drift compares: the label among them, its
    classes read as text (TFDV's L-infinity reads 0 on integer classes)."""
    spec = _credit_spec(tmp_path / "credit", integer_label=True)
    noise = drift_draft.measure_noise(spec, splits=1)
    assert noise["default"][0] == drift.L_INFINITY and noise["default"][1] > 0


# ---- a run the gate stops keeps its figures ------------------------------------------------

def _store_with_a_stopped_gate(tmp: Path):
    """An ML Metadata store as TFX leaves it when DriftGate stops the run: StatisticsGen's
    output published at <root>/StatisticsGen/statistics/<its execution id>, the gate's execution
    FAILED with that input and no output (its report folder <root>/DriftGate/report/<its id> is
    not recorded). Returns (store, the report folder to write, the run id)."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb

    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(tmp / "metadata.sqlite")
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(config)
    run_type = store.put_context_type(pb.ContextType(name="pipeline_run"))
    node_type = store.put_context_type(pb.ContextType(name="node"))
    execution_type = store.put_execution_type(pb.ExecutionType(name="tfx.Component"))
    artifact_type = store.put_artifact_type(pb.ArtifactType(name="ExampleStatistics"))
    run, statistics_node, gate_node = store.put_contexts([
        pb.Context(type_id=run_type, name="run-1"),
        pb.Context(type_id=node_type, name=f"pipe.{stage_names.STATISTICS_GEN}"),
        pb.Context(type_id=node_type, name=f"pipe.{stage_names.DRIFT_GATE}")])
    root = tmp / "pipeline_root"
    [producer] = store.put_executions([pb.Execution(type_id=execution_type,
                                                    last_known_state=pb.Execution.COMPLETE)])
    artifact = pb.Artifact(type_id=artifact_type, uri=str(
        root / stage_names.STATISTICS_GEN / "statistics" / str(producer)))
    [statistics] = store.put_artifacts([artifact])
    output = pb.Event(type=pb.Event.OUTPUT, artifact_id=statistics, execution_id=producer)
    output.path.steps.add().key = "statistics"
    [gate] = store.put_executions([pb.Execution(type_id=execution_type,
                                                last_known_state=pb.Execution.FAILED)])
    used = pb.Event(type=pb.Event.INPUT, artifact_id=statistics, execution_id=gate)
    used.path.steps.add().key = "statistics"
    store.put_events([output, used])
    store.put_attributions_and_associations(
        [], [pb.Association(context_id=c, execution_id=e) for c, e in
             ((run, producer), (run, gate), (statistics_node, producer), (gate_node, gate))])
    return store, root / stage_names.DRIFT_GATE / "report" / str(gate), "run-1"


def test_a_run_the_gate_stops_keeps_its_figures(spec, tmp_path):
    """A critical column stopped the run: the FAILED line had no figure, the error named only
    the critical column, and the failed MLflow run had no drift/* metric and no report, since
    they read the report from the gate's published output, which a failed execution has none
    of. They read it from the folder the gate wrote it into; the error lists the other drifted
    columns after the critical one, as warnings."""
    from pipeline.mlmd import queries
    from pipeline.tracking import stage_records

    store, folder, run = _store_with_a_stopped_gate(tmp_path)
    shifted = _penguins(200, shift=SHIFT_MM).assign(body_mass_g=lambda f: f["body_mass_g"] * 1.3)
    with pytest.raises(DataValidationError) as stopped:
        _gate(tmp_path, spec, {"score": shifted}, {"train": _penguins(240)}, ("score", "train"),
              report_uri=folder)
    import shutil

    shutil.rmtree(folder)  # as TFX's launcher removes a failed execution's output folders
    kept = folder.parent / (folder.name + ".stopped")
    lines = str(stopped.value).splitlines()
    assert lines[0] == "1 critical column drifted past the spec's threshold:"
    assert lines[1].startswith("  drift: bill_length_mm Jensen–Shannon ")
    assert lines[1].endswith("(critical)")
    assert lines[2] == "also drifted (warnings, not critical):"
    assert lines[3].startswith("  drift: body_mass_g Jensen–Shannon ")

    [_, node] = queries.run_executions(store, "pipe", run)
    assert node.state == "failed" and node.outputs == {}
    assert node.unpublished == {"report": str(kept)}
    assert summary_figures.figure(node) == ("stopped the run: 2 of 7 columns drifted: "
                                            "bill_length_mm (critical), body_mass_g")
    record = stage_records.failed_record(node, spec, tmp_path / "mlflow")
    assert record.metrics["drift/bill_length_mm"] > 0.1
    assert record.metrics["drift/drifted_columns"] == 2.0
    assert (kept / REPORT_FILE, "report") in record.files
    # The same store read for one node (the scoring run's record reads it so as well).
    found = queries.node_execution(store, "pipe", stage_names.DRIFT_GATE, run)
    assert summary_figures.drift_report(found)["drifted"][0]["column"] == "bill_length_mm"


def test_the_row_count_line_says_the_bound_the_gate_was_given_whatever_tfdv_writes(tmp_path):
    """The allowed change comes from the spec's drift.row_count_change, passed to the gate, not
    read back from TFDV's wording: a description that names no threshold still gets it."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    folder = tmp_path / f"{drift.SPLIT_PAIR_PREFIX}train_train"
    folder.mkdir()
    anomalies = anomalies_pb2.Anomalies()
    anomalies.dataset_anomaly_info.reason.add(
        type=anomalies_pb2.AnomalyInfo.COMPARATOR_LOW_NUM_EXAMPLES,
        description="Fewer examples than in the previous span.")
    (folder / drift.ANOMALIES_FILE).write_bytes(anomalies.SerializeToString())
    found = drift._row_count_lines(str(tmp_path), ["train_train"], {"train": 60},
                                   {"train": 240}, 0.3)
    assert found == ["train 60 rows against 240 in the last run (-75.0%; allowed ±30%: "
                     "drift.row_count_change in spec.yaml)"]
    [line] = drift._row_count_lines(str(tmp_path), ["train_train"], {"train": 60},
                                    {"train": 240})
    assert "allowed" not in line
