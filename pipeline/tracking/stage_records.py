"""What each pipeline stage contributes to its MLflow run: parameters, metrics, files.

Read from ML Metadata and the artifacts a stage wrote, after the fact, like the live summary in
summary_figures.py. Metric names are unique across stages (examples/train, val/loss,
eval/island:Biscoe/sparse_categorical_accuracy...), so the pipeline's parent run can carry every
stage's metrics side by side for comparing runs in the MLflow UI.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Callable

from components.contract.gates import DataValidationReport
from pipeline.config import stage_names
from pipeline.config.dataset_spec import BINARY, DatasetSpec
from pipeline.console import blessing_verdict, summary_figures
from pipeline.mlmd.queries import NodeExecution
from pipeline.tracking import plots
from pipeline.tracking.run_logging import safe_name

# What the data checks output (components/contract: gates, gx_validator): counts as
# numeric custom properties, report files in its folder, and the path of the rendered Great
# Expectations Data Docs in the string property DATA_DOCS_PROPERTY.
VALIDATION_REPORT_TYPE = DataValidationReport.TYPE_NAME
DATA_DOCS_PROPERTY = "data_docs"
_MAX_PARAM_LENGTH = 500  # longer values (whole configs) go to exec_properties.json instead


@dataclasses.dataclass
class StageRecord:
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    # Per-step values (step 1, 2, ... = epoch), for curves in the MLflow UI.
    series: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    # (local file or folder, artifact folder in the run)
    files: list[tuple[Path, str]] = dataclasses.field(default_factory=list)


def exec_properties(node: NodeExecution) -> dict[str, Any]:
    """The execution's properties as Python values; JSON-encoded protos stay strings."""
    values = {}
    for key, value in node.execution.custom_properties.items():
        kind = value.WhichOneof("value")
        if kind in ("int_value", "double_value", "string_value"):
            values[key] = getattr(value, kind)
    return values


def _json(properties: dict[str, Any], key: str) -> Any:
    try:
        return json.loads(properties.get(key) or "null")
    except (TypeError, ValueError):
        return None


def scalar_params(properties: dict[str, Any]) -> dict[str, Any]:
    """Short, plain execution properties (paths, function names, flags) as parameters."""
    params = {}
    for key, value in properties.items():
        if key.startswith("__") or value == "null" or \
                isinstance(_json(properties, key), (dict, list)):
            continue
        if len(str(value)) <= _MAX_PARAM_LENGTH:
            params[key] = value
    return params


def record(node: NodeExecution, spec: DatasetSpec, folder: Path | None) -> StageRecord:
    """Everything the stage's run gets. `folder`: where to write files; None logs no files (a
    cached stage: its files are in the run that produced them)."""
    properties = exec_properties(node)
    result = StageRecord(params=scalar_params(properties))
    _common_outputs(node, result, folder)
    extra = _STAGES.get(node.node_id)
    if extra is not None:
        extra(node, spec, properties, result, folder)
    if folder is not None and properties:
        path = folder / "exec_properties.json"
        path.write_text(json.dumps(properties, indent=2, sort_keys=True))
        result.files.append((path, ""))
    return result


def _common_outputs(node: NodeExecution, result: StageRecord, folder: Path | None) -> None:
    """Data gates (the anomalies gate, expectation checks): their counts and their reports."""
    for artifacts in node.outputs.values():
        for artifact in artifacts:
            if artifact.type != VALIDATION_REPORT_TYPE:
                continue
            for prop, value in artifact.custom_properties.items():
                kind = value.WhichOneof("value")
                if kind in ("int_value", "double_value") and prop != "is_external":
                    name = safe_name(f"{node.node_id}/{prop}")
                    result.metrics[name] = float(getattr(value, kind))
            if folder is not None and os.path.isdir(artifact.uri):
                docs = artifact.custom_properties.get(DATA_DOCS_PROPERTY)
                _report_files(artifact.uri, docs.string_value if docs else "", result)


def _report_files(uri: str, data_docs: str, result: StageRecord) -> None:
    """The check's report files, with its Data Docs (a page or a site folder) under data_docs/."""
    docs = Path(data_docs) if data_docs and os.path.exists(data_docs) else None
    if docs is not None:
        result.files.append((docs, "data_docs"))
    for name in sorted(os.listdir(uri)):
        path = Path(uri) / name
        if docs is None or not path.samefile(docs):
            result.files.append((path, f"report/{name}" if path.is_dir() else "report"))


# ---- one function per stage --------------------------------------------------------------

def _example_gen(node, spec, properties, result, folder):
    splits = (_json(properties, "output_config") or {}).get("split_config", {}).get("splits", [])
    total = sum(s.get("hash_buckets", 0) for s in splits)
    for split in splits:
        buckets = split.get("hash_buckets", 0)
        result.params[f"split.{split['name']}.hash_buckets"] = buckets
        if total:
            result.params[f"split.{split['name']}.ratio"] = round(buckets / total, 4)
    for split in (_json(properties, "input_config") or {}).get("splits", []):
        result.params[f"input.{split['name']}.pattern"] = split.get("pattern", "")


def _statistics(node, spec, properties, result, folder):
    uri = node.output_uri("statistics")
    counts = summary_figures.split_row_counts(uri)
    for split, count in counts.items():
        result.metrics[f"examples/{split}"] = float(count)
    result.metrics["examples/total"] = float(sum(counts.values()))
    if folder is not None:
        result.files += [(p, "statistics") for p in _statistics_html(uri, sorted(counts), folder)]


def _statistics_html(uri: str, splits: list[str], folder: Path) -> list[Path]:
    """Facets view of every split side by side (as TFDV shows it in a notebook; the page loads
    the Facets scripts from the web) and a plain summary table that needs nothing."""
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.utils import display_util

    stats = {s: tfdv.load_stats_binary(os.path.join(uri, f"Split-{s}", "FeatureStats.pb"))
             for s in splits}
    facets = folder / "statistics.html"
    names = list(stats)
    html = display_util.get_statistics_html(
        stats[names[0]], stats[names[1]] if len(names) > 1 else None,
        lhs_name=names[0], rhs_name=names[1] if len(names) > 1 else "")
    facets.write_text(f"<html><body><h3>TFDV statistics: {', '.join(names)}</h3>{html}"
                      "</body></html>")
    summary = folder / "statistics_summary.html"
    summary.write_text(_summary_table(stats))
    return [facets, summary]


def _summary_table(stats: dict) -> str:
    import html

    rows = []
    for split, stats_list in stats.items():
        dataset = stats_list.datasets[0]
        for feature in dataset.features:
            name = ".".join(feature.path.step) or feature.name
            kind = feature.WhichOneof("stats")
            if kind == "num_stats":
                s = feature.num_stats
                common = s.common_stats
                detail = (f"mean {s.mean:.4g}, std {s.std_dev:.4g}, min {s.min:.4g}, "
                          f"max {s.max:.4g}, zeros {s.num_zeros}")
            elif kind == "string_stats":
                s = feature.string_stats
                common = s.common_stats
                top = ", ".join(f"{v.value} ({v.frequency:g})" for v in s.top_values[:5])
                detail = f"{s.unique} unique; top: {top}"
            else:
                continue
            present = common.num_non_missing
            missing = common.num_missing
            share = missing / (present + missing) if present + missing else 0.0
            rows.append(f"<tr><td>{html.escape(split)}</td><td>{html.escape(name)}</td>"
                        f"<td>{present}</td><td>{missing} ({share:.1%})</td>"
                        f"<td>{html.escape(detail)}</td></tr>")
    return ("<html><body><h3>Feature statistics per split</h3><table border='1' "
            "cellpadding='4' style='border-collapse:collapse;font-family:sans-serif'>"
            "<tr><th>split</th><th>feature</th><th>present</th><th>missing</th><th>values</th>"
            "</tr>" + "".join(rows) + "</table></body></html>")


def _schema(node, spec, properties, result, folder):
    uri = node.output_uri("schema")
    if folder is not None and uri:
        result.files.append((Path(uri) / "schema.pbtxt", "schema"))


def _validator(node, spec, properties, result, folder):
    from components.contract.gates import describe_anomalies

    uri = node.output_uri("anomalies")
    problems = describe_anomalies(uri, node.split_names("anomalies"))
    result.metrics["anomalies"] = float(len(problems))
    if folder is not None:
        path = folder / "anomalies.txt"
        path.write_text("\n".join(problems) + "\n" if problems else "no anomalies\n")
        result.files.append((path, "anomalies"))


def _trainer(node, spec, properties, result, folder):
    config = _json(properties, "custom_config") or {}
    for key, value in (config.get("training") or {}).items():
        result.params[f"training.{key}"] = value
    result.tags["code_fingerprint"] = str(config.get("code_fingerprint", ""))
    for key in ("train_args", "eval_args"):
        splits = (_json(properties, key) or {}).get("splits")
        if splits:
            result.params[f"{key}.splits"] = ",".join(splits)
    history = summary_figures.training_history(node.output_uri("model_run"))
    for key, values in history.items():
        # Only the per-epoch series: the UI shows its last step as the metric's value.
        name = f"val/{key[4:]}" if key.startswith("val_") else f"train/{key}"
        result.series[name] = [float(v) for v in values]
    if history.get("val_loss"):
        result.metrics["epochs"] = float(len(history["val_loss"]))
    if folder is not None and history:
        result.files.append((plots.training_curves(history, folder / plots.TRAINING_FILE), "plots"))


def _transform(node, spec, properties, result, folder):
    config = _json(properties, "custom_config") or {}
    result.tags["code_fingerprint"] = str(config.get("code_fingerprint", ""))


def eval_thresholds(eval_config: dict) -> dict[str, Any]:
    """Each gated metric's lower bound and allowed drop against the baseline (a threshold on
    every slice, or per slice as definition/eval_config.py sets for the overall slice)."""
    params = {}
    for metrics_spec in eval_config.get("metrics_specs", []):
        for metric in metrics_spec.get("metrics", []):
            name = json.loads(metric.get("config") or "{}").get("name") or metric["class_name"]
            gates = [(None, metric["threshold"])] if metric.get("threshold") else []
            gates += [(p.get("slicing_specs"), p.get("threshold", {}))
                      for p in metric.get("per_slice_thresholds", [])]
            for slicing, threshold in gates:
                where = "" if slicing is None else "." + "+".join(
                    ",".join(s.get("feature_keys", [])) or "overall" for s in slicing)
                lower = threshold.get("value_threshold", {}).get("lower_bound")
                upper = threshold.get("value_threshold", {}).get("upper_bound")
                change = threshold.get("change_threshold", {}).get("absolute")
                relative = threshold.get("change_threshold", {}).get("relative")
                if lower is not None:
                    params[f"threshold.{name}{where}.min"] = lower
                if upper is not None:
                    params[f"threshold.{name}{where}.max"] = upper
                if relative is not None:
                    # Regression: "(candidate - baseline) / baseline <= increase" plus a slack.
                    params[f"threshold.{name}{where}.max_relative_increase"] = round(
                        float(relative), 8)
                if change is not None:
                    # The config stores "change >= -drop" (minus a tiny slack); show the drop.
                    params[f"threshold.{name}{where}.max_drop"] = round(-float(change), 8)
    return params


def _slice_name(slice_key) -> str:
    return "-".join(f"{k}:{v}" for k, v in slice_key)


def eval_metric_name(slice_key, sub_key: str, metric: str, spec: DatasetSpec) -> str:
    parts = ["eval"]
    if slice_key:
        parts.append(_slice_name(slice_key).replace("/", "_"))
    if sub_key.startswith("classId:"):
        class_id = int(sub_key.split(":", 1)[1])
        # A binary task binarizes only its positive class: plain names read better there.
        if not (spec.task == BINARY and class_id == 1):
            label = spec.classes[class_id] if class_id < spec.num_classes else sub_key
            metric = f"{metric}_{label}"
    parts.append(metric)
    return safe_name("/".join(parts))


def candidate_result(uri: str):
    """The evaluated model's TFMA result as tfma.load_eval_result gives it (TFMA 0.47), with
    every slice's metrics but only the overall slice's plots: the only ones the record draws.
    load_eval_result turns every slice's plots into dicts (confusion matrices at 1,000
    thresholds per class), and next to a baseline it was called twice, once to learn that TFMA
    stored two models and finds the plots only when asked for the candidate by name."""
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.slicer import slicer_lib
    from tensorflow_model_analysis.view import util as view_util
    from tensorflow_model_analysis.view import view_types
    from tensorflow_model_analysis.writers import eval_config_writer
    from tensorflow_model_analysis.writers import metrics_plots_and_validations_writer as files

    config, data_location, file_format, locations = eval_config_writer.load_eval_run(uri)
    name = tfma.CANDIDATE_KEY if tfma.CANDIDATE_KEY in {s.name for s in config.model_specs} \
        else None
    plots = (view_util.convert_plots_proto_to_dict(p, model_name=name)
             for p in files.load_and_deserialize_plots(uri, "tfrecord")
             if slicer_lib.deserialize_slice_key(p.slice_key) == ())
    location = "" if not locations else locations[name] if name else next(iter(
        locations.values()))
    return view_types.EvalResult(
        slicing_metrics=summary_figures.slicing_metrics(uri, name),
        plots=[p for p in plots if p is not None], attributions=[], config=config,
        data_location=data_location, file_format=file_format, model_location=location)


def _evaluator(node, spec, properties, result, folder):
    import tensorflow_model_analysis as tfma

    eval_config = _json(properties, "eval_config") or {}
    result.params.update(eval_thresholds(eval_config))
    slicing = [",".join(s.get("feature_keys", [])) or "overall"
               for s in eval_config.get("slicing_specs", [])]
    result.params["slicing"] = "; ".join(slicing)

    uri = node.output_uri("evaluation")
    # Metrics named *_diff are the change against the baseline model, when there is one.
    evaluation = candidate_result(uri)
    for slice_key, sub_key, metric, value in summary_figures.eval_metrics(evaluation):
        result.metrics[eval_metric_name(slice_key, sub_key, metric, spec)] = value
    blessed = node.output_property("blessing", "blessed")
    result.metrics["blessed"] = 1.0 if blessed else 0.0
    result.tags["blessed"] = "true" if blessed else "false"
    if not blessed:
        overall = {n: v for k, _, n, v in summary_figures.eval_metrics(evaluation) if k == ()}
        result.tags[blessing_verdict.TAG] = blessing_verdict.verdict(uri, overall)
    if folder is None:
        return
    overall = next((p for k, p in (evaluation.plots or []) if k == ()), None)
    if overall:
        result.files += [(p, "plots") for p in plots.tfma_plots(overall, spec.classes, folder)]
    if spec.is_regression:
        result.files += [(p, "plots") for p in _regression_plots(evaluation, folder)]
    validation = tfma.load_validation_result(uri)
    path = folder / "validation_result.txt"
    path.write_text(str(validation))
    result.files.append((path, "evaluation"))
    result.files.append((Path(uri) / "eval_config.json", "evaluation"))


def _regression_plots(evaluation, folder: Path) -> list[Path]:
    """Predicted against actual and residuals from the Evaluator's sample of eval rows, and
    RMSE per slice (docs/regression.md)."""
    rmse, counts, sample = {}, {}, []
    for slice_key, by_output in evaluation.slicing_metrics:
        name = _slice_name(slice_key) or "overall"
        for by_sub_key in by_output.values():
            values = by_sub_key.get("", {})
            if "root_mean_squared_error" in values:
                rmse[name] = float(values["root_mean_squared_error"].get("doubleValue", "nan"))
            if "example_count" in values:
                counts[name] = float(values["example_count"].get("doubleValue", 0))
            if slice_key == () and "prediction_sample" in values:
                sample = plots.sample_pairs(values["prediction_sample"])
    written = []
    if sample:
        written += [plots.predicted_vs_actual(sample, folder / plots.PREDICTED_FILE),
                    plots.residuals(sample, folder / plots.RESIDUALS_FILE)]
    if rmse:
        ordered = dict(sorted(rmse.items(), key=lambda item: (item[0] != "overall", item[0])))
        written.append(plots.rmse_by_slice(ordered, counts, folder / plots.SLICE_RMSE_FILE))
    return written


def _resolver(node, spec, properties, result, folder):
    models = node.outputs.get("model") or []
    result.tags["baseline_model"] = models[0].uri if models else "none"


def _pusher(node, spec, properties, result, folder):
    destination = (_json(properties, "push_destination") or {}).get("filesystem", {})
    if destination.get("base_directory"):
        result.params["push_destination"] = destination["base_directory"]
    pushed = node.output_property("pushed_model", "pushed")
    result.metrics["pushed"] = 1.0 if pushed else 0.0
    if pushed:
        result.tags["pushed_destination"] = str(
            node.output_property("pushed_model", "pushed_destination"))


def _drift_gate(node, spec, properties, result, folder):
    """Drift against the baseline (components/score/drift.py): a metric per column. A gate
    that stopped the run published no report artifact (which _common_outputs logs), but wrote
    its report before it stopped: that file is logged instead."""
    report = summary_figures.drift_report(node)
    metrics = summary_figures.drift_metrics(report)
    result.metrics.update(metrics)  # run_logging.log makes the column names safe keys
    if folder is not None and report is not None and not node.output_uri("report"):
        from components.contract.gates import REPORT_FILE

        result.files.append((Path(node.written_uri("report")) / REPORT_FILE, "report"))


# What a failed execution still gives its run, from the outputs it wrote before it failed
# (pipeline/mlmd/unpublished_outputs.py): the DriftGate's figures when it stopped the run.
_FAILED_STAGES: dict[str, Callable] = {
    stage_names.DRIFT_GATE: _drift_gate,
}


def failed_record(node: NodeExecution, spec: DatasetSpec, folder: Path | None) -> StageRecord:
    """What a failed stage's run gets besides its error: its parameters, and the figures of a
    stage in _FAILED_STAGES (empty for the others)."""
    result = StageRecord()
    extra = _FAILED_STAGES.get(node.node_id)
    if extra is not None and node.unpublished:
        properties = exec_properties(node)
        result.params = scalar_params(properties)
        extra(node, spec, properties, result, folder)
    return result


_STAGES: dict[str, Callable] = {
    stage_names.EXAMPLE_GEN: _example_gen,
    stage_names.STATISTICS_GEN: _statistics,
    stage_names.SCHEMA_IMPORTER: _schema,
    stage_names.SCHEMA_GEN: _schema,
    stage_names.EXAMPLE_VALIDATOR: _validator,
    stage_names.TRANSFORM: _transform,
    stage_names.TRAINER: _trainer,
    stage_names.BASELINE_RESOLVER: _resolver,
    stage_names.EVALUATOR: _evaluator,
    stage_names.PUSHER: _pusher,
    stage_names.DRIFT_GATE: _drift_gate,
}
