"""Drift: a file's statistics against a baseline's, measured by TFX's DistributionValidator
(TFDV's comparators), judged by DriftGate.

Two baselines use this: `make score` compares a new file with the statistics of the data the
champion model was trained on, and `make pipeline` compares a new drop of data with the last
successful run's (components/score/previous_statistics.py). The comparators are TFDV's:
L-infinity distance (the largest change in one value's share) for text categories, approximate
Jensen-Shannon divergence of the histograms for numbers, integer category codes included (their
statistics are numeric, where TFDV's L-infinity always reads 0: data-validation#147). The
divergence is taken over TFDV's quantile histograms (equal-mass buckets), not its default
equal-width ones: on taxi, two random halves of the same 15,002 rows differ by 0.33 (fare),
0.71 (trip_miles) on the equal-width histograms, whose buckets a few large values stretch, and
by 0.08 at most on the quantile ones, while fares 30% higher read 0.17. The thresholds are the
spec's `drift:` block (pipeline/config/dataset_spec.py).

For text columns DriftGate also measures the share of values the baseline never had
(components/score/unseen_values.py), at the column's L-infinity threshold: L-infinity misses a
column of many rare values replaced by new ones.

The label is compared too, where the compared statistics have it (a training drop always; a
file to score when it holds the label): a classification label by L-infinity over its classes, a
regression label by Jensen-Shannon. A change in the class mix between two drops changes what the
model learns (3% of `Yes` in one drop, 20% in the next: a champion scoring accuracy 0.70 where
the last one scored 0.89) while no feature need move. TFDV reads L-infinity 0 on integer classes
(numeric statistics): DriftGate measures their class mix itself (components/score/class_shares.py).

DistributionValidator records every measurement (drift_skew_info) and an anomaly per column over
its threshold; DriftGate turns that into one line per drifted column, `drift: fare
Jensen-Shannon 0.31 > 0.10`, a warning, or a stop when the spec marks the column critical. A
comparison with fewer than DRIFT_MIN_ROWS rows on either side is not judged (`drift: not judged
on 5 rows (at least 100 needed)`): its measurements are kept in the report, but no column is
reported drifted and none stops the run (the rule is beside DRIFT_MIN_ROWS).
"""
# No `from __future__ import annotations` here: TFX reads the component type hints at runtime.
import json
import logging
import os
from typing import List, Optional

from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.proto import distribution_validator_pb2
from tfx.types import artifact_utils, standard_artifacts

from components.contract.data_errors import DataValidationError, kept_folder
from components.contract.gates import REPORT_FILE, DataValidationReport
from components.score.class_shares import class_l_infinity, is_numeric
from components.score.row_count import change_text
from components.score.split_divergence import JENSEN_SHANNON, L_INFINITY, set_comparator
from components.score.unseen_values import UNSEEN, unseen_share
from pipeline.config.dataset_spec import (CLASSIFICATION_TASKS, DRIFT_MIN_ROWS, FEATURE,
                                          DatasetSpec)

# A column over its threshold is drift only when it is also over NOISE_FACTOR times what the
# baseline's own train and eval splits (a hash partition of one data set) read apart, scaled up
# when the compared file is smaller than the eval split (sampling noise grows as 1/rows). On a
# numeric column of few distinct values TFDV's quantile histograms read far apart on samples of
# the same data (a 442-row table's `level`, values 2..8: train against eval 0.27, the whole file
# against train 0.20, with the default threshold 0.1). 2, not the draft's 3: that reference is
# one reading, not the largest of five cuts, and at 3 the same column shifted by 3 (0.69) passed
# as noise (tests/components/score/test_drift_judgement.py).
NOISE_FACTOR = 2
NOISE_SPLITS = ("train", "eval")
# How a line names each comparator, and TFDV's names for its measurements.
COMPARATOR_NAMES = {L_INFINITY: "L-infinity", JENSEN_SHANNON: "Jensen–Shannon",
                    UNSEEN: "values not in the baseline"}
_MEASUREMENTS = {
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: L_INFINITY,
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: JENSEN_SHANNON,
}
ANOMALIES_FILE = "SchemaDiff.pb"
STATS_FILE = "FeatureStats.pb"  # what StatisticsGen writes per split (TFX 1.16)
SPLIT_PAIR_PREFIX = "SplitPair-"


def comparator_for(schema_type: int) -> str:
    """L-infinity for text (BYTES) columns, Jensen-Shannon for numbers (see the docstring)."""
    return L_INFINITY if schema_type == schema_pb2.BYTES else JENSEN_SHANNON


def label_comparator(spec: DatasetSpec) -> str:
    """L-infinity over a classification label's classes (their shares, whatever their type:
    integer classes are measured by class_shares.py), Jensen-Shannon for a regression label."""
    return L_INFINITY if spec.task in CLASSIFICATION_TASKS else JENSEN_SHANNON


def checked_columns(spec: DatasetSpec, schema: schema_pb2.Schema,
                    present: Optional[List[str]] = None) -> "dict[str, str]":
    """{column: comparator} for the model's feature columns and its label in the schema (and
    in `present`, the file's header, when given: a file to score may lack the label); not a
    time (a year, a timestamp: `time: true` in the spec), which new data moves by design."""
    types = {f.name: f.type for f in schema.feature}
    return {f.name: (label_comparator(spec) if f.name == spec.label
                     else comparator_for(types[f.name])) for f in spec.features
            if (f.role == FEATURE or f.name == spec.label) and not f.time and f.name in types
            and (present is None or f.name in present)}


def distribution_config(spec: DatasetSpec, columns: "dict[str, str]",
                        row_count_change: Optional[float] = None
                        ) -> distribution_validator_pb2.DistributionValidatorConfig:
    """DistributionValidator's config: each column's comparator at the spec's threshold, and a
    bound on the change in row count when row_count_change is given (training drops)."""
    config = distribution_validator_pb2.DistributionValidatorConfig()
    slice_config = config.default_slice_config
    for name, comparator in columns.items():
        feature = slice_config.feature.add()
        feature.path.step.append(name)
        set_comparator(feature.distribution_comparator, comparator,
                       spec.drift.threshold(name, comparator))
    if row_count_change is not None:
        bounds = slice_config.num_examples_comparator
        bounds.min_fraction_threshold = max(0.0, 1 - row_count_change)
        bounds.max_fraction_threshold = 1 + row_count_change
    return config


def measurements(anomalies_uri: str, split_pairs: List[str]) -> "list[dict]":
    """Every column's measured drift in every split pair: column, comparator, value,
    threshold, drifted; a column TFDV could not compare has value None."""
    found = []
    for pair in split_pairs:
        anomalies = read_anomalies(anomalies_uri, pair)
        compared = set()
        for info in anomalies.drift_skew_info:
            column = ".".join(info.path.step)
            for m in info.drift_measurements:
                if m.type in _MEASUREMENTS:
                    compared.add(column)
                    found.append({"split": pair, "column": column,
                                  "comparator": _MEASUREMENTS[m.type], "value": m.value,
                                  "threshold": m.threshold, "drifted": m.value > m.threshold})
        for column, info in anomalies.anomaly_info.items():
            if column not in compared and any(
                    r.type == anomalies_pb2.AnomalyInfo.STATS_NOT_AVAILABLE for r in info.reason):
                found.append({"split": pair, "column": column, "comparator": "", "value": None,
                              "threshold": None, "drifted": False})
    return found


def _row_count_lines(anomalies_uri: str, split_pairs: List[str], rows: "dict[str, int]",
                     baseline_rows: "dict[str, int]", allowed: Optional[float] = None
                     ) -> "list[str]":
    """One line per row count out of the bounds DistributionValidator was configured with
    (`allowed`: drift.row_count_change, None when not known): `train 60 rows against 240 in the
    last run (-75%; allowed ±50%: drift.row_count_change in spec.yaml)`. TFDV's own description
    ("The ratio of num examples in the current dataset versus the previous span is 0.25 ...")
    names neither the counts nor the setting."""
    kinds = (anomalies_pb2.AnomalyInfo.COMPARATOR_LOW_NUM_EXAMPLES,
             anomalies_pb2.AnomalyInfo.COMPARATOR_HIGH_NUM_EXAMPLES)
    return [_row_count_line(pair, reason.description, rows, baseline_rows, allowed)
            for pair in split_pairs
            for reason in read_anomalies(anomalies_uri, pair).dataset_anomaly_info.reason
            if reason.type in kinds]


def _row_count_line(pair: str, description: str, rows: "dict[str, int]",
                    baseline_rows: "dict[str, int]", allowed: Optional[float] = None) -> str:
    now, before = _pair_rows(pair, rows, baseline_rows)
    if not before:
        return description
    splits = _pair_splits(pair, rows, baseline_rows)
    where = f"{splits[0]} " if splits else ""
    bound = f"allowed ±{allowed:.0%}: " if allowed is not None else ""
    return (f"{where}{now:,} rows against {before:,} in the last run "
            f"({change_text(now / before - 1, allowed)}; {bound}drift.row_count_change in "
            "spec.yaml)")


def read_anomalies(anomalies_uri: str, split_pair: str) -> anomalies_pb2.Anomalies:
    path = os.path.join(anomalies_uri, SPLIT_PAIR_PREFIX + split_pair, ANOMALIES_FILE)
    with open(path, "rb") as f:
        return anomalies_pb2.Anomalies.FromString(f.read())


def drift_line(m: dict, critical: bool = False) -> str:
    """`drift: fare Jensen–Shannon 0.31 > 0.10`, `(critical)` after it; with more digits where
    two would print the value equal to the threshold (`0.1004 > 0.1000`). The label is named
    so: `drift: default (label) L-infinity 0.17 > 0.10`."""
    value, threshold = m["value"], m["threshold"]
    column = f"{m['column']} (label)" if m.get("label") else m["column"]
    if m["comparator"] == UNSEEN:  # `drift: city 87% of values not in the baseline (> 10%)`
        return (f"drift: {column} {value:.0%} of values not in the baseline (> "
                f"{threshold:.0%})" + (" (critical)" if critical else ""))
    digits = 2
    while digits < 6 and round(value, digits) <= round(threshold, digits):
        digits += 1
    return (f"drift: {column} {COMPARATOR_NAMES[m['comparator']]} {value:.{digits}f} > "
            f"{threshold:.{digits}f}" + (" (critical)" if critical else ""))


def _row_count(statistics: Optional[standard_artifacts.ExampleStatistics]) -> "dict[str, int]":
    """{split: rows} from TFDV's statistics (StatisticsGen's output)."""
    if statistics is None:
        return {}
    return {split: _num_examples(statistics, split)
            for split in artifact_utils.decode_split_names(statistics.split_names)}


def _num_examples(statistics: standard_artifacts.ExampleStatistics, split: str) -> int:
    """StatisticsGen writes each split's statistics as one binary proto, FeatureStats.pb: read
    with tensorflow_metadata's own class, not TFDV, so that the gate's task does not import
    TFDV and TensorFlow (~3 s) for a row count (pipeline/runners/stage_imports.py)."""
    path = os.path.join(artifact_utils.get_split_uri([statistics], split), STATS_FILE)
    if os.path.exists(path):
        return int(_statistics(statistics, split).datasets[0].num_examples)
    from tfx.components.statistics_gen import stats_artifact_utils  # an older TFRecord artifact

    return int(stats_artifact_utils.load_statistics(statistics, split).proto()
               .datasets[0].num_examples)


def _pair_splits(pair: str, splits, baseline_splits) -> "Optional[tuple[str, str]]":
    """(split, baseline split) of a split pair `<split>_<baseline split>` (TFX's
    DistributionValidator names pairs so), or None."""
    for split in splits:
        baseline = pair[len(split) + 1:] if pair.startswith(split + "_") else None
        if baseline in baseline_splits:
            return split, baseline
    return None


def _statistics_if_any(statistics: standard_artifacts.ExampleStatistics, split: str):
    """_statistics, or None for an older artifact's TFRecord layout (no FeatureStats.pb)."""
    try:
        return _statistics(statistics, split)
    except FileNotFoundError:
        return None


def unseen_measurements(found: "list[dict]", statistics, baseline_statistics) -> "list[dict]":
    """For each text column TFDV compared (an L-infinity measurement), the share of the
    compared split's values that the baseline split never had, at the same threshold; none
    where the statistics cannot tell (unseen_values.py)."""
    if statistics is None or baseline_statistics is None:
        return []
    by_pair: dict = {}
    for m in found:
        if m["comparator"] == L_INFINITY and m["value"] is not None:
            by_pair.setdefault(m["split"], []).append(m)
    result = []
    for pair, measured in by_pair.items():
        splits = _pair_splits(pair, artifact_utils.decode_split_names(statistics.split_names),
                              artifact_utils.decode_split_names(baseline_statistics.split_names))
        if splits is None:
            continue
        compared = _statistics_if_any(statistics, splits[0])
        known = _statistics_if_any(baseline_statistics, splits[1])
        if compared is None or known is None:
            continue
        for m in measured:
            share = unseen_share(known, compared, m["column"])
            if share is not None:
                result.append({"split": pair, "column": m["column"], "comparator": UNSEEN,
                               "value": share, "threshold": m["threshold"],
                               "drifted": share > m["threshold"]})
    return result


def class_measurements(found: "list[dict]", statistics, baseline_statistics) -> "list[dict]":
    """`found` with each L-infinity measurement of a column whose statistics are numeric (a
    classification label of integer classes: TFDV reads 0 there) measured from its class mix
    instead (class_shares.py); None where the statistics cannot tell."""
    if statistics is None or baseline_statistics is None:
        return found
    result = []
    for m in found:
        if m["comparator"] == L_INFINITY and m["value"] is not None:
            splits = _pair_splits(
                m["split"], artifact_utils.decode_split_names(statistics.split_names),
                artifact_utils.decode_split_names(baseline_statistics.split_names))
            compared = _statistics_if_any(statistics, splits[0]) if splits else None
            known = _statistics_if_any(baseline_statistics, splits[1]) if splits else None
            if compared is not None and known is not None and is_numeric(compared, m["column"]):
                value = class_l_infinity(known, compared, m["column"])
                m = dict(m, value=value, drifted=value is not None and value > m["threshold"],
                         measured="class shares")
        result.append(m)
    return result


def _pair_rows(pair: str, rows: "dict[str, int]", baseline_rows: "dict[str, int]"
               ) -> "tuple[int, int]":
    """(rows compared, baseline rows compared) of a split pair `<split>_<baseline split>`."""
    splits = _pair_splits(pair, rows, baseline_rows)
    if splits is not None:
        return rows[splits[0]], baseline_rows[splits[1]]
    return sum(rows.values()), sum(baseline_rows.values())


def within_noise(found: "list[dict]", baseline_statistics, rows: int
                 ) -> "dict[tuple[str, str], float]":
    """{(column, comparator): the noise bound it stayed within} for the measurements over
    their threshold that are within NOISE_FACTOR times the same measurement between the
    baseline's train and eval splits (scaled for a compared side of `rows` rows). Asked only
    when a column went over its threshold: TFDV's comparators import TFDV, which the gate's
    task otherwise does without. {} when the baseline lacks either split."""
    splits = artifact_utils.decode_split_names(baseline_statistics.split_names)
    if not all(split in splits for split in NOISE_SPLITS):
        return {}
    train, held = (_statistics(baseline_statistics, split) for split in NOISE_SPLITS)
    sizes = [s.datasets[0].num_examples for s in (train, held)]
    if min(sizes) == 0 or rows == 0:
        return {}
    over = [m for m in found if m["drifted"]]
    measured = {}
    # Integer classes: TFDV's L-infinity reads 0 on them, their class mix is read instead.
    classes = {m["column"] for m in over if m.get("measured") == "class shares"}
    for column in classes:
        value = class_l_infinity(train, held, column)
        if value is not None:
            measured[column, L_INFINITY] = value
    tfdv_asked = {m["column"]: m["comparator"] for m in over
                  if m["comparator"] != UNSEEN and m["column"] not in classes}
    if tfdv_asked:
        from components.score.split_divergence import divergences

        measured = {(column, tfdv_asked[column]): value
                    for column, value in divergences(train, held, tfdv_asked).items()}
    for m in over:
        if m["comparator"] == UNSEEN:
            share = unseen_share(train, held, m["column"])
            if share is not None:
                measured[m["column"], UNSEEN] = share
    # Sampling noise between samples of m and n rows grows as 1/m + 1/n: the eval split's
    # reading stands for a compared side at least as large; a smaller one reads more.
    scale = max(1.0, (1 / sizes[0] + 1 / rows) / (1 / sizes[0] + 1 / sizes[1]))
    bounds = {key: NOISE_FACTOR * value * scale for key, value in measured.items()}
    return {(m["column"], m["comparator"]): bounds[m["column"], m["comparator"]] for m in over
            if (m["column"], m["comparator"]) in bounds
            and m["value"] <= bounds[m["column"], m["comparator"]]}


def _statistics(statistics: standard_artifacts.ExampleStatistics, split: str):
    path = os.path.join(artifact_utils.get_split_uri([statistics], split), STATS_FILE)
    with open(path, "rb") as f:
        return statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())


def not_judged_line(rows: int, baseline_rows: int, min_rows: int = DRIFT_MIN_ROWS) -> str:
    """`drift: not judged on 5 rows (at least 100 needed)`; names the baseline when it is the
    side with too few rows."""
    if rows < min_rows:
        return f"drift: not judged on {rows:,} rows (at least {min_rows:,} needed)"
    return (f"drift: not judged against a baseline of {baseline_rows:,} rows (at least "
            f"{min_rows:,} needed)")


def drift_report(anomalies: standard_artifacts.ExampleAnomalies, critical: List[str],
                 statistics=None, baseline_statistics=None, compare_rows: bool = False,
                 min_rows: int = DRIFT_MIN_ROWS, label: str = "",
                 row_count_change: Optional[float] = None) -> dict:
    """What DriftGate records: the measurements, the drifted columns' lines, the row count of
    the compared split (and the baseline's split, when compare_rows: two drops of the same data
    set; the count TFDV bounds by drift.row_count_change). A comparison with fewer than
    min_rows rows on either side is not judged: `judged` false, no column drifted,
    `not_judged` the line saying so (the measurements are kept). `label`: the label's column,
    named as such in its lines. `row_count_change`: the bound on the row count's change that
    DistributionValidator was given (drift.row_count_change), for the row count's lines."""
    pairs = artifact_utils.decode_split_names(anomalies.split_names) \
        if anomalies.split_names else []
    # Without a baseline DistributionValidator compares nothing and sets no split pairs.
    compared = bool(pairs) and baseline_statistics is not None
    found = measurements(anomalies.uri, pairs) if compared else []
    found = class_measurements(found, statistics, baseline_statistics) if compared else []
    found += unseen_measurements(found, statistics, baseline_statistics) if compared else []
    if label:
        found = [dict(m, label=True) if m["column"] == label else m for m in found]
    rows, baseline_rows = _row_count(statistics), _row_count(baseline_statistics)
    # The smallest side of any pair: the file (or drop) compared, or the baseline's split.
    sides = [_pair_rows(pair, rows, baseline_rows) for pair in pairs] if compared else []
    short = min(sides, key=min) if sides else None
    judged = compared and min(short) >= min_rows
    noise = {}
    if judged and any(m["drifted"] for m in found):
        noise = within_noise(found, baseline_statistics, short[0])
        found = [dict(m, drifted=False, noise=noise[m["column"], m["comparator"]])
                 if m["drifted"] and (m["column"], m["comparator"]) in noise else m
                 for m in found]
    drifted = [m for m in found if m["drifted"]] if judged else []
    # The rows of the compared split (and of the baseline's split it is compared with): what
    # TFDV's row-count bound checks, so the summary and MLflow show the same counts as its line.
    now, before = (sides[0] if sides else (sum(rows.values()), sum(baseline_rows.values())))
    splits = _pair_splits(pairs[0], rows, baseline_rows) if sides else None
    row_lines = (_row_count_lines(anomalies.uri, pairs, rows, baseline_rows, row_count_change)
                 if compared else [])
    return {
        "compared": compared,
        "judged": judged,
        "min_rows": min_rows,
        "not_judged": not_judged_line(*short, min_rows) if compared and not judged else "",
        "split_pairs": pairs,
        "measurements": found,
        "drifted": [dict(m, critical=m["column"] in critical, line=drift_line(
            m, m["column"] in critical)) for m in drifted],
        "within_noise": sorted({column for column, _ in noise}),
        "row_count_anomalies": row_lines,
        # Out of drift.row_count_change's bounds, allowed: that bound (a fraction).
        "row_count_out_of_bounds": bool(row_lines) if compared and compare_rows else None,
        "row_count_allowed": row_count_change if row_lines else None,
        "rows": now,
        "baseline_rows": before if compared and compare_rows else None,
        "rows_split": splits[0] if splits else None,
        "total_rows": sum(rows.values()),
    }


@component
def DriftGate(  # noqa: N802 - TFX component classes are CamelCase
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    report: OutputArtifact[DataValidationReport],
    critical_columns: Parameter[str] = "[]",
    baseline_statistics: InputArtifact[standard_artifacts.ExampleStatistics] = None,
    compare_rows: Parameter[int] = 0,
    code_fingerprint: Parameter[str] = "",
    label: Parameter[str] = "",
    row_count_change: Parameter[float] = -1.0,
) -> None:
    """Records DistributionValidator's measurements; fails the run when a column the spec marks
    critical drifted past its threshold, and only warns about the others; judges nothing on too
    few rows (DRIFT_MIN_ROWS). compare_rows: also record the baseline's row count (a training
    drop against the last one). label: the label's column, named so in its lines.
    row_count_change: the bound DistributionValidator was given on the change in row count
    (drift.row_count_change; negative: none), said in the row count's lines. A run it
    stops keeps its report beside the output folder TFX removes then: the summary and MLflow
    read it from there (pipeline/mlmd/unpublished_outputs.py)."""
    critical = json.loads(critical_columns)
    result = drift_report(anomalies, critical, statistics, baseline_statistics,
                          bool(compare_rows), label=label,
                          row_count_change=row_count_change if row_count_change >= 0 else None)
    with open(os.path.join(report.uri, REPORT_FILE), "w") as f:
        json.dump(result, f, indent=2)
    report.set_int_custom_property("compared", int(result["compared"]))
    report.set_int_custom_property("judged", int(result["judged"]))
    report.set_int_custom_property("drifted", len(result["drifted"]))
    report.set_int_custom_property("rows", result["rows"])
    if result["baseline_rows"] is not None:
        report.set_int_custom_property("baseline_rows", result["baseline_rows"])
    if result["not_judged"]:
        logging.warning("%s", result["not_judged"])
    for m in result["drifted"]:
        logging.warning("%s", m["line"])
    for line in result["row_count_anomalies"]:
        logging.warning("drift: row count: %s", line)
    message = stop_message(result)
    if message:
        # TFX removes a failed execution's output folders: the report is kept beside it, for
        # the run's summary line and its MLflow run (pipeline/mlmd/unpublished_outputs.py).
        kept = kept_folder(report.uri)
        os.makedirs(kept, exist_ok=True)
        with open(os.path.join(kept, REPORT_FILE), "w") as f:
            json.dump(result, f, indent=2)
        raise DataValidationError(message)


def stop_message(report: dict) -> str:
    """The error of a run the gate stops ('' when it does not): the critical columns' lines,
    then the other drifted columns' and an out-of-bounds row count's, as the warnings they are
    (a run stopped on one column said nothing of the others)."""
    stops = [m["line"] for m in report["drifted"] if m["critical"]]
    if not stops:
        return ""
    warnings = [m["line"] for m in report["drifted"] if not m["critical"]]
    warnings += [f"drift: row count: {line}" for line in report["row_count_anomalies"]]
    text = (f"{len(stops)} critical column{'s' if len(stops) > 1 else ''} drifted past the "
            "spec's threshold:\n  " + "\n  ".join(stops))
    if warnings:
        text += "\nalso drifted (warnings, not critical):\n  " + "\n  ".join(warnings)
    return text
