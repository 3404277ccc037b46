"""One key figure per stage, read from the artifacts a stage wrote (for the live summary)."""
from __future__ import annotations

import json
import logging
import math
import os
from typing import Iterator

from components.score.unseen_values import UNSEEN
from pipeline.config import stage_names
from pipeline.mlmd.queries import NodeExecution


def eval_metrics(evaluation) -> Iterator[tuple[tuple, str, str, float]]:
    """(slice key, sub key, metric name, value) of every finite number in a TFMA EvalResult;
    a metric undefined for a slice (precision with no positives) is left out."""
    for slice_key, by_output in evaluation.slicing_metrics:
        for by_sub_key in by_output.values():
            for sub_key, values in by_sub_key.items():
                for metric, value in values.items():
                    number = value.get("doubleValue") if isinstance(value, dict) else None
                    if number is not None and math.isfinite(float(number)):
                        yield slice_key, sub_key, metric, float(number)


def split_row_counts(statistics_uri: str) -> dict[str, int]:
    # tensorflow_metadata's proto class, as tfdv.load_stats_binary parses it: importing TFDV
    # (and with it TensorFlow and Beam) cost the tracking task ~9 s for two row counts.
    from tensorflow_metadata.proto.v0 import statistics_pb2

    counts = {}
    for name in sorted(os.listdir(statistics_uri)):
        path = os.path.join(statistics_uri, name, "FeatureStats.pb")
        if name.startswith("Split-") and os.path.exists(path):
            with open(path, "rb") as f:
                stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
            counts[name[len("Split-"):]] = int(stats.datasets[0].num_examples)
    return counts


def training_history(model_run_uri: str) -> dict[str, list[float]]:
    path = os.path.join(model_run_uri, stage_names.TRAINING_HISTORY_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


class _MetricsOnly:
    """The metrics of an EvalResult without its plots. tfma.load_eval_result also turns every
    plot (calibration, confusion matrices at 1,000 thresholds) into JSON dicts: 0.3 s alone,
    ~1 s inside a penguin run, for a summary line that shows two numbers."""

    def __init__(self, evaluation_uri: str):
        self.slicing_metrics = slicing_metrics(evaluation_uri)


def slicing_metrics(evaluation_uri: str, model_name: str | None = None) -> list:
    """What load_eval_result does for its slicing_metrics (TFMA 0.47): every slice's metrics of
    `model_name` (None: the one model evaluated) as dicts."""
    from tensorflow_model_analysis.view import util as view_util
    from tensorflow_model_analysis.writers import metrics_plots_and_validations_writer

    found = (view_util.convert_metrics_proto_to_dict(p, model_name=model_name) for p in
             metrics_plots_and_validations_writer.load_and_deserialize_metrics(
                 evaluation_uri, "tfrecord"))
    return [m for m in found if m is not None]


def overall_metrics(evaluation_uri: str) -> dict[str, float]:
    """Overall-slice TFMA metrics as {name: value}; binarized ones keep only their name."""
    metrics: dict[str, float] = {}
    for slice_key, _, name, value in eval_metrics(_MetricsOnly(evaluation_uri)):
        if slice_key == ():
            metrics.setdefault(name, value)
    return metrics


def figure(node: NodeExecution) -> str:
    """A short phrase for the summary line; '' when the stage has nothing worth a number."""
    try:
        return _FIGURES.get(node.node_id, lambda n: "")(node)
    except Exception as e:  # a summary must never fail a run that succeeded
        # The line stays short; the log file keeps the trace.
        logging.getLogger(__name__).exception("summary figure of %s", node.node_id)
        return f"(no figure: {type(e).__name__}: {e})"[:200]


def _example_gen(node):
    return "splits " + ", ".join(node.split_names("examples"))


def _statistics(node):
    counts = split_row_counts(node.output_uri("statistics"))
    parts = " / ".join(f"{k} {v:,}" for k, v in counts.items())
    return f"{sum(counts.values()):,} rows ({parts})"


def _schema(node):
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(os.path.join(node.output_uri("schema"), "schema.pbtxt"))
    return f"{len(schema.feature)} columns in schema"


def _validator(node):
    from components.contract.gates import describe_anomalies

    problems = describe_anomalies(node.output_uri("anomalies"), node.split_names("anomalies"))
    return f"{len(problems)} anomal{'y' if len(problems) == 1 else 'ies'}"


def _expectations(node):
    from components.contract.contract_report import summary_figure

    counts = {p: node.output_property("report", p) or 0
              for p in ("evaluated", "passed", "failed_warning", "failed_critical")}
    text = summary_figure(counts["evaluated"], counts["passed"], counts["failed_warning"],
                          counts["failed_critical"])
    if counts["failed_warning"] and not counts["failed_critical"]:
        text += _first_warning(node.output_uri("report"), counts["failed_warning"])
    return text


def _first_warning(uri: str | None, warnings: int) -> str:
    """What the first failed warning-level expectation says, and where the others are: a run
    said "1 warning" and left the reader to find it in the log (a drop below the suite's row
    count bounds). A critical failure says its own, in the run's error."""
    from components.contract.contract_report import warning_messages
    from components.contract.gates import REPORT_FILE

    try:
        with open(os.path.join(uri or "", REPORT_FILE)) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return ""
    messages = warning_messages(report)
    if not messages:
        return ""
    more = f" (and {warnings - 1} more: {report.get('data_docs')})" if warnings > 1 else ""
    return f": {messages[0]}{more}"


def _gate(node):
    return "passed" if node.state in ("ran", "cached") else "stopped the run"


def _transform(node):
    """`24 transformed features and the label`: the Transform's outputs include the label
    (the taxi's 25 outputs read as 25 features)."""
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(node.output_uri("transform_graph"))
    names = set(output.transformed_feature_spec())
    label = _transformed_label(_string_property(node, "custom_config"))
    if label in names:
        return f"{len(names) - 1} transformed features and the label"
    return f"{len(names)} transformed features"


def _transformed_label(custom_config: str) -> str:
    """The label's output name, from the spec in the Transform's custom_config ('' if none)."""
    from pipeline.config.dataset_spec import transformed_name

    try:
        return transformed_name(json.loads(custom_config)["spec"]["label"])
    except (ValueError, KeyError, TypeError):
        return ""


def _trainer(node):
    history = training_history(node.output_uri("model_run"))
    # Classification reports accuracy, regression RMSE (in the label's units).
    if history.get("val_accuracy"):
        key, name, show = "val_accuracy", "val accuracy", lambda v: f"{v:.3f}"
    else:
        key, name, show = "val_rmse", "val RMSE", _figure
    if not history.get(key):
        return ""
    best = min(range(len(history["val_loss"])), key=history["val_loss"].__getitem__)
    return f"{name} {show(history[key][best])} (epoch {best + 1} of {len(history['val_loss'])})"


def unsigned_zero(value: float, digits: int = 2) -> str:
    """The value to `digits` decimals, a value that rounds to zero without a sign: an R² of
    -0.001 read `-0.00`, as if below zero mattered at that precision."""
    return f"{round(value, digits) + 0.0:.{digits}f}"


def _figure(value: float) -> str:
    """A regression figure to 3 significant digits at least: RMSE 4.12, 0.0231, 12,345."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def _tuner(node):
    path = os.path.join(node.output_uri("tuner_results") or "", "tuner_results.json")
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        trials = json.load(f)  # TFX writes the completed trials, best first
    if not trials:
        return "no trial completed"
    best = {k: v for k, v in trials[0].items() if k not in ("trial_id", "score")}
    chosen = ", ".join(f"{k}={v}" for k, v in best.items())
    return f"best of {len(trials)} trials: val loss {trials[0]['score']:.4f} ({chosen})"


def _evaluator(node):
    metrics = overall_metrics(node.output_uri("evaluation"))
    blessed = node.output_property("blessing", "blessed")
    parts = [f"{name} {metrics[key]:.3f}" for name, key in
             (("AUC", "auc"), ("accuracy", "sparse_categorical_accuracy")) if key in metrics]
    # Regression (docs/regression.md): errors in the label's units, R^2 unitless.
    parts += [f"{name} {_figure(metrics[key])}" for name, key in
              (("RMSE", "root_mean_squared_error"), ("MAE", "mean_absolute_error"))
              if key in metrics]
    if "r_squared" in metrics:
        parts.append(f"R² {unsigned_zero(metrics['r_squared'])}")
    if IMPROVEMENT in metrics and blessed:
        # The gated figure of a regression: "R² -0.00, blessed yes" read as a mistake where
        # the model beat predicting the training mean by the little its gate asks.
        parts.append(_improvement_over_mean(metrics[IMPROVEMENT],
                                            _improvement_gate(_string_property(node, "eval_config"))))
    # A scoring run's Evaluator judges the champion on the scored file: no model is blessed or
    # pushed there, so its line says whether the champion still meets its gates on these rows.
    scoring = stage_names.SCORE_SPLIT in _string_property(node, "example_splits")
    if blessed:
        parts.append("meets its gates on this file" if scoring else "blessed yes")
    else:  # which gate it missed, from TFMA's validation result
        from pipeline.console.blessing_verdict import verdict

        why = verdict(node.output_uri('evaluation'), metrics)
        parts.append(f"below its gates on this file: {why}" if scoring else f"blessed no: {why}")
    return ", ".join(parts)


IMPROVEMENT = "rmse_improvement_over_mean"


def _improvement_over_mean(improvement: float, gate: float | None) -> str:
    """'64.1% below the training mean's RMSE (gate 50.0%)'; a gate left at 0 asks for any
    improvement (eval_config sets a tiny bound there): '(gate > 0)'."""
    where = "below" if improvement >= 0 else "above"
    asked = "" if gate is None else (f" (gate {gate:.1%})" if gate >= 0.0005 else " (gate > 0)")
    return f"{abs(improvement):.1%} {where} the training mean's RMSE{asked}"


def _improvement_gate(eval_config_json: str) -> float | None:
    """The lower bound the Evaluator's config set on the improvement over the mean (None when
    the config does not say: an older run)."""
    try:
        config = json.loads(eval_config_json or "null") or {}
    except ValueError:
        return None
    for metrics_spec in config.get("metrics_specs", []):
        for metric in metrics_spec.get("metrics", []):
            if IMPROVEMENT not in (metric.get("config") or ""):
                continue
            for per_slice in metric.get("per_slice_thresholds", []):
                bound = (((per_slice.get("threshold") or {}).get("value_threshold") or {})
                         .get("lower_bound"))
                if bound is not None:
                    return float(bound)  # a DoubleValue is a plain number in proto JSON
    return None


def _string_property(node, name: str) -> str:
    """An execution property TFX recorded as a string ('' when absent)."""
    value = node.execution.custom_properties.get(name)
    return value.string_value if value is not None else ""


def _resolver(node):
    models = node.outputs.get("model") or []
    if not models:
        return "no earlier blessed model to compare with"
    return f"baseline: model {models[0].id}"


def pushed_destination(node: NodeExecution) -> str:
    """Where a Pusher execution pushed the model; '' when it pushed nothing."""
    if node.output_property("pushed_model", "pushed"):
        return node.output_property("pushed_model", "pushed_destination") or ""
    return ""


def _pusher(node):
    destination = pushed_destination(node)
    return f"pushed to {destination}" if destination else "not pushed (model not blessed)"


def drift_report(node) -> dict | None:
    """DriftGate's report (components/score/drift.py), None when it wrote none. A gate that
    stopped the run wrote it all the same, into the output folder ML Metadata does not record
    for a failed execution (pipeline/mlmd/unpublished_outputs.py): read from there."""
    from components.contract.gates import REPORT_FILE

    uri = node.written_uri("report") if hasattr(node, "written_uri") else \
        node.output_uri("report")
    path = os.path.join(uri, REPORT_FILE) if uri else ""
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError:  # cut short by a stop from beside it
        return None


def drift_lines(report: dict) -> list[str]:
    """One line per drifted column (`drift: fare Jensen–Shannon 0.31 > 0.10`), or the one saying
    that too few rows were not judged, and one per row count out of bounds."""
    judged = [report["not_judged"]] if report.get("not_judged") else \
        [m["line"] for m in report.get("drifted", [])]
    return judged + [f"drift: row count: {line}" for line in report.get("row_count_anomalies", [])]


def drift_metrics(report: dict | None) -> dict[str, float]:
    """For MLflow: drift/<column>, the measured divergence (the larger over split pairs), and
    for a text column drift/<column>/unseen, the share of its values not in the baseline;
    drift/drifted_columns; against the last drop drift/row_count_change (a fraction, of the
    compared split's rows: the count drift.row_count_change bounds) and
    drift/row_count_out_of_bounds (1 when outside that bound); drift/judged 0 with
    drift/min_rows and no drift/<column> when there were too few rows to judge
    (components/score/drift.py)."""
    if not report or not report.get("compared"):
        return {}
    judged = report.get("judged", True)  # a report written before the minimum was judged
    metrics: dict[str, float] = {"drift/judged": float(judged)}
    if not judged:
        metrics["drift/min_rows"] = float(report["min_rows"])
    for m in report["measurements"] if judged else []:
        if m["value"] is not None:
            key = f"drift/{m['column']}" + ("/unseen" if m["comparator"] == UNSEEN else "")
            metrics[key] = max(metrics.get(key, 0.0), float(m["value"]))
    metrics["drift/drifted_columns"] = float(len({m["column"] for m in report["drifted"]}))
    if report.get("baseline_rows"):
        metrics["drift/row_count_change"] = report["rows"] / report["baseline_rows"] - 1
    if report.get("row_count_out_of_bounds") is not None:
        metrics["drift/row_count_out_of_bounds"] = float(report["row_count_out_of_bounds"])
    return metrics


def _drift_gate(node):
    report = drift_report(node)
    if report is None:
        return "stopped the run" if node.state == "failed" else ""
    figure = _drift_figure(report)
    # A gate that stopped the run: its figures all the same (a critical column drifted).
    return f"stopped the run: {figure}" if node.state == "failed" else figure


def _row_change(report: dict) -> str:
    """`; rows 2,796 -> 1,390 in train (-50.3%, out of bounds: allowed ±50%)`: the compared
    split's rows, as TFDV's row-count bound counts them (drift.py); '' without a baseline's."""
    from components.score.row_count import change_text

    before, rows = report.get("baseline_rows"), report["rows"]
    if not before:
        return ""
    allowed = report.get("row_count_allowed")
    where = f" in {report['rows_split']}" if report.get("rows_split") else ""
    bounds = ""
    if report.get("row_count_out_of_bounds"):
        bounds = ", out of bounds" + (f": allowed ±{allowed:.0%}" if allowed is not None else "")
    return (f"; rows {before:,} -> {rows:,}{where} "
            f"({change_text(rows / before - 1, allowed)}{bounds})")


def _drift_figure(report: dict) -> str:
    if not report["compared"]:
        return "no baseline to compare with (first run, or the same data as the last one)"
    columns = len({m["column"] for m in report["measurements"]})
    change = _row_change(report)
    if report.get("not_judged"):
        return report["not_judged"].removeprefix("drift: ") + change
    drifted = report["drifted"]
    noise = report.get("within_noise") or []
    # Columns over their threshold but within what the baseline's own splits read apart
    # (components/score/drift.py, within_noise): said, so a reader knows they were looked at.
    within = (f" ({', '.join(noise)} over {'its' if len(noise) == 1 else 'their'} threshold "
              "but within the noise of the baseline's own splits)") if noise else ""
    unseen = _unseen_below_threshold(report)
    if not drifted:
        return f"no drift in {columns} columns{within}{unseen}{change}"
    # A column may drift by two measurements (a text column's L-infinity and unseen values).
    named = list(dict.fromkeys(f"{m['column']}{' (label)' if m.get('label') else ''}"
                               f"{' (critical)' if m['critical'] else ''}" for m in drifted))
    return (f"{len(named)} of {columns} columns drifted: {', '.join(named)}{within}{unseen}"
            f"{change}")


def _unseen_below_threshold(report: dict) -> str:
    """The text columns with values the baseline never had, too few to be drift: said, since
    each such row reaches the model as an out-of-vocabulary value (a new `owner=maybe` on 5 of
    1,319 rows was scored without a word)."""
    drifted = {m["column"] for m in report["drifted"] if m["comparator"] == UNSEEN}
    shares: dict[str, float] = {}
    for m in report["measurements"]:
        if m["comparator"] == UNSEEN and m["value"] and m["column"] not in drifted:
            shares[m["column"]] = max(shares.get(m["column"], 0.0), float(m["value"]))
    if not shares:
        return ""
    named = ", ".join(f"{column} {share:.1%}" if share >= 0.001 else f"{column} <0.1%"
                      for column, share in shares.items())
    return f"; values not seen in training: {named}"


def _distribution_validator(node):
    artifacts = node.outputs.get("anomalies") or []
    if not artifacts or "split_names" not in artifacts[0].properties:
        return "no baseline: nothing to compare"
    pairs = node.split_names("anomalies")
    return "compared " + ", ".join(p.replace("_", " with ", 1) for p in pairs)


def _previous_statistics(node):
    found = node.outputs.get("baseline") or []
    if not found:
        return "no earlier successful run with other data"
    return f"baseline: statistics {found[0].id} of the last successful run"


def _imported(node):
    uri = node.output_uri("result")
    return f"{uri}" if uri else ""


def _writer(node):
    rows = node.output_property("scored", "rows")
    return f"{rows:,} rows scored" if rows is not None else ""


# Gates whose figure says why they stopped a run (the FAILED line shows it).
STOPPING_GATES = frozenset({stage_names.ANOMALIES_GATE, stage_names.EXPECTATIONS_GATE,
                            stage_names.DRIFT_GATE})

_FIGURES = {
    stage_names.EXAMPLE_GEN: _example_gen,
    stage_names.STATISTICS_GEN: _statistics,
    stage_names.SCHEMA_IMPORTER: _schema,
    stage_names.SCHEMA_GEN: _schema,
    stage_names.EXAMPLE_VALIDATOR: _validator,
    stage_names.ANOMALIES_GATE: _gate,
    stage_names.EXPECTATIONS_VALIDATOR: _expectations,
    stage_names.EXPECTATIONS_GATE: _gate,
    stage_names.TRANSFORM: _transform,
    stage_names.TUNER: _tuner,
    stage_names.TRAINER: _trainer,
    stage_names.EVALUATOR: _evaluator,
    stage_names.PUSHER: _pusher,
    stage_names.BASELINE_RESOLVER: _resolver,
    stage_names.PREVIOUS_STATISTICS_RESOLVER: _previous_statistics,
    stage_names.DRIFT_GATE: _drift_gate,
    stage_names.DRIFT_VALIDATOR: _distribution_validator,
    stage_names.SERVING_VALIDATOR: _validator,
    stage_names.CHAMPION_MODEL: _imported,
    stage_names.CHAMPION_STATISTICS: _imported,
    stage_names.PREDICTIONS_WRITER: _writer,
}
