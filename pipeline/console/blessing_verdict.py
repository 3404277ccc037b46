"""Why a model was not blessed, in one line, from the validation result TFMA wrote.

The Evaluator writes `validations` next to its metrics: a ValidationResult whose failures name
the metric, its value and the threshold it missed. That is read here, not recomputed, so the
line says exactly what decided the blessing:

    AUC 0.820 is below the gate 0.930 (gates.min_auc in spec.yaml, or --min-auc)
    accuracy 0.812 is 0.012 below the champion (allowed drop 0.005: gates.max_metric_drop in
    spec.yaml, or --max-metric-drop)
    RMSE 4.31 is 3.2% above the champion's 4.17 (allowed 1.0%: gates.max_rmse_increase in
    spec.yaml, or --max-rmse-increase)
    RMSE 9.87 is not below predicting the training mean (RMSE 9.80; the gate asks 0.0% lower: ...)

The console's summary line and the MLflow run's `not_blessed_because` tag both show it.
"""
from __future__ import annotations

from typing import Mapping

from pipeline.config.settings import Gate

# TFMA metric name -> how a message names it, and the gate key of its lower bound.
GATED_METRICS = {"auc": ("AUC", "min_auc"),
                 "sparse_categorical_accuracy": ("accuracy", "min_accuracy"),
                 # regression (docs/regression.md)
                 "root_mean_squared_error": ("RMSE", "max_rmse"),
                 "rmse_improvement_over_mean": ("RMSE", "min_improvement_over_mean")}
CHANGE_GATE = "max_metric_drop"
RELATIVE_CHANGE_GATE = "max_rmse_increase"  # regression: lower is better, as a fraction
TAG = "not_blessed_because"
# TFMA's change threshold is "candidate - baseline >= -drop - epsilon" (eval_config._EPSILON).
_SLACK = 1e-9


def _where(key: str) -> str:
    return Gate(key, 0.0, "").where


def _apart(value: float, bound: float) -> tuple[str, str]:
    """The gate as set (0.93 -> 0.930, 0.99999 as is); the figure to 3 decimals, or as many as
    the gate's when 3 would round it up to the gate (0.9991 below 0.9995)."""
    decimals = max(3, len(f"{bound:.6f}".rstrip("0").split(".")[1]))
    figure = f"{value:.3f}"
    if float(figure) >= bound:
        figure = f"{value:.{decimals}f}"
    return figure, f"{bound:.{decimals}f}"


def _name(metric: str) -> tuple[str, str]:
    return GATED_METRICS.get(metric, (metric, ""))


def reasons(result, candidate: Mapping[str, float], champion: str = "the champion") -> list[str]:
    """One phrase per failed gate of a tfma ValidationResult. candidate: the evaluated model's
    overall metrics by name (for the figure beside a failed change threshold)."""
    out = []
    for per_slice in result.metric_validations_per_slice:
        overall = not per_slice.slice_key.single_slice_keys
        where_slice = "" if overall else " on slice " + ", ".join(
            f"{k.column}={k.bytes_value.decode(errors='replace') or k.int64_value or k.float_value}"
            for k in per_slice.slice_key.single_slice_keys)
        for failure in per_slice.failures:
            metric = failure.metric_key.name
            shown, gate = _name(metric)
            value = failure.metric_value.double_value.value
            threshold = failure.metric_threshold
            if failure.metric_key.is_diff and threshold.change_threshold.HasField("relative"):
                out.append(_rise(shown, value, candidate.get(metric), threshold, champion,
                                 where_slice))
            elif metric == "rmse_improvement_over_mean":
                out.append(_over_mean(value, candidate.get("root_mean_squared_error"),
                                      threshold.value_threshold.lower_bound.value, where_slice))
            elif failure.metric_key.is_diff:
                drop = -float(threshold.change_threshold.absolute.value) - _SLACK
                figure = candidate.get(metric)
                now = f"{shown} {figure:.3f}" if figure is not None else shown
                out.append(f"{now} is {-value:.3f} below {champion}{where_slice} (allowed drop "
                           f"{max(drop, 0.0):.3f}: {_where(CHANGE_GATE)})")
            elif threshold.value_threshold.HasField("lower_bound"):
                bound = threshold.value_threshold.lower_bound.value
                hint = f" ({_where(gate)})" if gate else ""
                figure, gate_text = _apart(value, bound)
                out.append(f"{shown} {figure} is below the gate {gate_text}{where_slice}{hint}")
            elif threshold.value_threshold.HasField("upper_bound"):
                bound = threshold.value_threshold.upper_bound.value
                hint = f" ({_where(gate)})" if gate else ""
                out.append(f"{shown} {value:.4g} is above the gate {bound:.4g}{where_slice}{hint}")
            else:  # pragma: no cover - a threshold kind the eval config does not set
                out.append(failure.message or f"{shown} failed its threshold")
    if result.missing_thresholds:  # a gated metric TFMA had no value for
        out.append("a gated metric has no value (see validation_result.txt in the Evaluator's "
                   "MLflow run)")
    return out


def _rise(shown: str, diff: float, figure: float | None, threshold, champion: str,
          where_slice: str) -> str:
    """A lower-is-better metric that rose above the champion's by more than the relative gate
    allows (TFMA: (candidate - baseline) / baseline <= allowed)."""
    allowed = max(float(threshold.change_threshold.relative.value) - _SLACK, 0.0)
    if figure is None:
        return (f"{shown} is {diff:.4g} above {champion}'s{where_slice} (allowed {allowed:.1%}: "
                f"{_where(RELATIVE_CHANGE_GATE)})")
    before = figure - diff
    rise = f"{diff / before:.1%}" if before else f"{diff:.4g}"
    return (f"{shown} {figure:.4g} is {rise} above {champion}'s {before:.4g}{where_slice} "
            f"(allowed {allowed:.1%}: {_where(RELATIVE_CHANGE_GATE)})")


def _over_mean(improvement: float, rmse: float | None, bound: float, where_slice: str) -> str:
    """The RMSE did not beat predicting the training mean by the gate's fraction."""
    if rmse is not None and improvement < 1:
        mean_rmse = rmse / (1 - improvement)
        head = (f"RMSE {rmse:.4g} is {improvement:.1%} below predicting the training mean "
                f"(RMSE {mean_rmse:.4g})" if improvement > 0 else
                f"RMSE {rmse:.4g} is not below predicting the training mean (RMSE "
                f"{mean_rmse:.4g})")
    else:
        head = f"RMSE improves {improvement:.1%} on predicting the training mean"
    return (f"{head}{where_slice}; the gate asks {max(bound, 0.0):.1%} lower "
            f"({_where('min_improvement_over_mean')})")


def naming_champion(text: str, version: str | None, is_champion: bool = True) -> str:
    """The verdict with "the champion" named by the registry version of the model it was
    compared with, once tracking knows it; `is_champion` False: that model is not the one the
    champion alias points at (it is the latest blessed model before the candidate, which is the
    champion's own model evaluated again)."""
    if not version:
        return text
    named = f"champion version {version}" if is_champion else f"blessed version {version}"
    return text.replace(" below the champion", f" below {named}").replace(
        " above the champion's", f" above {named}'s")


def verdict(evaluation_uri: str, candidate: Mapping[str, float],
            champion: str = "the champion") -> str:
    """Why the Evaluator's output at evaluation_uri is not blessed, in one line."""
    import tensorflow_model_analysis as tfma

    try:
        result = tfma.load_validation_result(evaluation_uri)
    except (AssertionError, OSError) as e:  # no validations file: an older or broken output
        return f"the Evaluator wrote no readable validation result ({type(e).__name__})"
    found = reasons(result, candidate, champion)
    if found:
        return "; ".join(found)
    if result.rubber_stamp:
        return "no model to compare with and no value gate set"
    return "the validation result lists no failed gate"
