"""PNG charts for the tracked run: training curves and the Evaluator's TFMA plots; for a
regression model, predicted against actual, residuals and RMSE per slice.

Figures are built with matplotlib's object API (Figure + Agg canvas), not pyplot, so nothing
global changes: no backend switch, no figure registry to leak memory in a long-lived process.

TFMA plot data arrives as the dicts `tfma.load_eval_result(...).plots` holds (protobuf JSON
names; fields equal to zero are left out, so every read has a default).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

CONFUSION_AT_THRESHOLDS = "confusionMatrixAtThresholds"
CALIBRATION = "calibrationHistogramBuckets"
MULTICLASS_CONFUSION = "multiClassConfusionMatrixAtThresholds"

ROC_FILE = "roc_curve.png"
PR_FILE = "pr_curve.png"
CALIBRATION_FILE = "calibration.png"
CONFUSION_FILE = "confusion_matrix.png"
TRAINING_FILE = "training_curves.png"
PREDICTED_FILE = "predicted_vs_actual.png"
RESIDUALS_FILE = "residuals.png"
SLICE_RMSE_FILE = "rmse_by_slice.png"


def _number(value, default: float = 0.0) -> float:
    """TFMA's JSON writes NaN and infinities as strings ("NaN", "-Infinity")."""
    return default if value is None else float(value)


def _figure(width: float = 6.0, height: float = 4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def training_curves(history: Mapping[str, Sequence[float]], path: Path) -> Path:
    """Loss and accuracy (regression: RMSE) per epoch, training next to validation (Keras
    history names)."""
    figure = _figure(10, 4)
    second = "accuracy" if "accuracy" in history or "rmse" not in history else "rmse"
    for ax, metric in zip(figure.subplots(1, 2), ("loss", second)):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            values = history.get(key) or []
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(figure, path)


def curve_points(matrices: Iterable[Mapping]) -> dict[str, list[float]]:
    """Per-threshold false-positive rate, recall and precision, in threshold order."""
    points = {"fpr": [], "recall": [], "precision": []}
    for m in matrices:
        tp, fp = _number(m.get("truePositives")), _number(m.get("falsePositives"))
        fn, tn = _number(m.get("falseNegatives")), _number(m.get("trueNegatives"))
        points["fpr"].append(fp / (fp + tn) if fp + tn else 0.0)
        points["recall"].append(tp / (tp + fn) if tp + fn else 0.0)
        # Precision is undefined once nothing is predicted positive; 1.0 closes the PR curve.
        points["precision"].append(tp / (tp + fp) if tp + fp else 1.0)
    return points


def area_under(x: Sequence[float], y: Sequence[float]) -> float:
    """Trapezoidal area, whichever direction x runs."""
    pairs = sorted(zip(x, y))
    return sum((x2 - x1) * (y1 + y2) / 2 for (x1, y1), (x2, y2) in zip(pairs, pairs[1:]))


def roc_and_pr(curves: Mapping[str, Iterable[Mapping]], roc_path: Path,
               pr_path: Path) -> list[Path]:
    """One line per class (one-vs-rest) from TFMA's confusion matrices at thresholds."""
    roc, pr = _figure(), _figure()
    roc_ax, pr_ax = roc.subplots(), pr.subplots()
    for label, matrices in curves.items():
        p = curve_points(matrices)
        roc_auc = area_under(p["fpr"], p["recall"])
        pr_area = area_under(p["recall"], p["precision"])
        roc_ax.plot(p["fpr"], p["recall"], label=f"{label} (AUC {roc_auc:.3f})")
        pr_ax.plot(p["recall"], p["precision"], label=f"{label} (area {pr_area:.3f})")
    roc_ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)",
               title="ROC curve", xlim=(0, 1), ylim=(0, 1.02))
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve",
              xlim=(0, 1), ylim=(0, 1.02))
    for ax in (roc_ax, pr_ax):
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if ax is roc_ax else "lower left")
    return [_save(roc, roc_path), _save(pr, pr_path)]


def _bin_index(mean_prediction: float, bins: int) -> int:
    """The equal-width bin of [0, 1] that a mean prediction falls in. A mean below 0 (TFMA's
    underflow bucket) joins the lowest bin and one of 1 or more (its overflow bucket, where a
    prediction of exactly 1.0 lands) the highest, so no example is dropped."""
    return min(bins - 1, max(0, int(mean_prediction * bins)))


def calibration_points(buckets: Iterable[Mapping],
                       bins: int = 10) -> list[tuple[float, float, float]]:
    """(mean prediction, observed positive rate, examples) per equal-width prediction bin.

    TFMA's CalibrationPlot writes 1,000 buckets of width 0.001 over [0, 1) (rebinned from its
    10,000-bucket histogram) between an underflow bucket [-inf, 0) and an overflow bucket
    [1, +inf); regrouping them into a few bins gives each point enough examples to mean
    something. A bucket joins a bin by its own mean prediction, never by its thresholds (the
    underflow bucket's lower one is -inf, and thresholds of 0 are left out of the JSON), so a
    point sits at the mean prediction of the examples it holds: rows scored 0.002 make a point
    at 0.002, not at 0. Empty buckets and bins make no point, and the points' counts add up to
    every example TFMA counted."""
    sums = [[0.0, 0.0, 0.0] for _ in range(bins)]
    for b in buckets:
        n = _number(b.get("numWeightedExamples"))
        if not n:
            continue
        predicted = _number(b.get("totalWeightedRefinedPrediction"))
        index = _bin_index(predicted / n, bins)
        sums[index][0] += predicted
        sums[index][1] += _number(b.get("totalWeightedLabel"))
        sums[index][2] += n
    return [(p / n, label / n, n) for p, label, n in sums if n]


def _point_note(mean_prediction: float, rate: float, n: float) -> str:
    """A point's example count, and its coordinates when it lies too near the frame to read."""
    if min(mean_prediction, 1 - mean_prediction, rate, 1 - rate) < 0.03:
        return f"{n:g} at ({mean_prediction:.2g}, {rate:.2g})"
    return f"{n:g}"


def calibration(curves: Mapping[str, Iterable[Mapping]], path: Path, bins: int = 10) -> Path:
    """Reliability diagram over a log-scale count of the examples in each bin.

    Predictions often crowd near 0 (64% of the taxi eval rows score below 0.01): that
    bin's point lies next to the origin, and only its count tells it apart from a line drawn
    from (0, 0). Points are not clipped at the frame, so a point on the edge shows whole."""
    figure = _figure(6, 6.5)
    ax, counts_ax = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    edges = [i / bins for i in range(bins + 1)]
    fewest = 1.0  # the count axis starts below one example: it always spans a decade or more
    for label, buckets in curves.items():
        points = calibration_points(buckets, bins)
        total = sum(n for _, _, n in points)
        line, = ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                        clip_on=False, zorder=3, label=f"{label} ({total:g} examples)")
        counts = [0.0] * bins
        for mean_prediction, rate, n in points:
            counts[_bin_index(mean_prediction, bins)] += n
            if len(curves) == 1:  # one label per point stays readable; several would overlap
                ax.annotate(_point_note(mean_prediction, rate, n), (mean_prediction, rate),
                            xytext=(6, 5 if rate < 0.05 else -12), textcoords="offset points",
                            fontsize=7, color=line.get_color())
        counts_ax.stairs(counts, edges, color=line.get_color(), linewidth=1.5)
        fewest = min([fewest] + [n for _, _, n in points])
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
    ax.set(ylabel="observed positive rate", xlim=(0, 1), ylim=(0, 1),
           title=f"Calibration ({bins} equal-width bins of predicted probability)")
    ax.legend(loc="upper left")
    counts_ax.set(xlabel="mean predicted probability", ylabel="examples per bin", yscale="log")
    counts_ax.set_ylim(bottom=fewest * 0.7)
    for a in (ax, counts_ax):
        a.grid(alpha=0.3)
    return _save(figure, path)


def confusion_counts(matrix: Mapping, num_classes: int) -> list[list[float]]:
    """counts[actual][predicted] from one TFMA multi-class confusion matrix."""
    counts = [[0.0] * num_classes for _ in range(num_classes)]
    for entry in matrix.get("entries", []):
        actual = int(_number(entry.get("actualClassId")))
        predicted = int(_number(entry.get("predictedClassId")))
        if 0 <= actual < num_classes and 0 <= predicted < num_classes:
            counts[actual][predicted] += _number(entry.get("numWeightedExamples"))
    return counts


def confusion_matrix(counts: Sequence[Sequence[float]], class_names: Sequence[str],
                     path: Path) -> Path:
    size = max(4.0, 1.2 * len(class_names) + 2)
    figure = _figure(size, size * 0.85)
    ax = figure.subplots()
    image = ax.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=ax, fraction=0.046)
    peak = max((max(row) for row in counts), default=0) or 1
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            ax.text(j, i, f"{value:g}", ha="center", va="center",
                    color="white" if value > peak / 2 else "black")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45 if len(class_names) > 4 else 0)
    ax.set_yticks(ticks, class_names)
    ax.set(xlabel="predicted class", ylabel="actual class", title="Confusion matrix")
    return _save(figure, path)


def tfma_plots(plots: Mapping, class_names: Sequence[str], folder: Path) -> list[Path]:
    """Every chart the overall slice's plot data allows: ROC, PR, calibration, confusion.

    `plots` is one slice's {output: {sub_key: {plot name: data}}}; sub keys are '' (all classes)
    or 'classId:<n>' (one class against the rest)."""
    curves, buckets, confusion = {}, {}, None
    for by_sub_key in plots.values():
        for sub_key, by_name in by_sub_key.items():
            label = _class_label(sub_key, class_names)
            if CONFUSION_AT_THRESHOLDS in by_name:
                curves[label] = by_name[CONFUSION_AT_THRESHOLDS].get("matrices", [])
            if CALIBRATION in by_name:
                buckets[label] = by_name[CALIBRATION].get("buckets", [])
            if MULTICLASS_CONFUSION in by_name:
                matrices = by_name[MULTICLASS_CONFUSION].get("matrices", [])
                # The argmax matrix is the one at threshold 0 (left out of the JSON as a default).
                at_zero = [m for m in matrices if not _number(m.get("threshold"))]
                confusion = (at_zero or matrices or [None])[0]
    written = []
    if curves:
        written += roc_and_pr(curves, folder / ROC_FILE, folder / PR_FILE)
    if buckets:
        written.append(calibration(buckets, folder / CALIBRATION_FILE))
    if confusion is not None:
        counts = confusion_counts(confusion, len(class_names))
        written.append(confusion_matrix(counts, class_names, folder / CONFUSION_FILE))
    return written


def _class_label(sub_key: str, class_names: Sequence[str]) -> str:
    if sub_key.startswith("classId:"):
        class_id = int(sub_key.split(":", 1)[1])
        return class_names[class_id] if class_id < len(class_names) else sub_key
    return sub_key or "all"


# ---- regression ------------------------------------------------------------------------------

def sample_pairs(value: Mapping) -> list[tuple[float, float]]:
    """(actual, predicted) pairs from the Evaluator's prediction_sample metric as
    `tfma.load_eval_result` holds it: {"arrayValue": {"shape": [n, 2], "float64Values": [...]}}."""
    array = (value or {}).get("arrayValue") or {}
    values = [_number(v) for v in array.get("float64Values") or array.get("float32Values") or []]
    return list(zip(values[0::2], values[1::2]))


def predicted_vs_actual(pairs: Sequence[tuple[float, float]], path: Path) -> Path:
    """Each sampled eval row at (actual, predicted), with the diagonal a perfect model lies on."""
    figure = _figure(6, 6)
    ax = figure.subplots()
    actual, predicted = [a for a, _ in pairs], [p for _, p in pairs]
    ax.scatter(actual, predicted, s=6, alpha=0.4, linewidths=0)
    if pairs:
        low, high = min(actual + predicted), max(actual + predicted)
        ax.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1,
                label="predicted = actual")
        ax.legend(loc="upper left")
    ax.set(xlabel="actual", ylabel="predicted",
           title=f"Predicted against actual ({len(pairs):,} eval rows sampled)")
    ax.grid(alpha=0.3)
    return _save(figure, path)


def residuals(pairs: Sequence[tuple[float, float]], path: Path, bins: int = 50) -> Path:
    """Residuals (actual - predicted) against the prediction, where a pattern shows what the
    model misses, and their histogram."""
    figure = _figure(11, 4.5)
    scatter_ax, histogram_ax = figure.subplots(1, 2)
    predicted = [p for _, p in pairs]
    errors = [a - p for a, p in pairs]
    scatter_ax.scatter(predicted, errors, s=6, alpha=0.4, linewidths=0)
    scatter_ax.axhline(0, linestyle="--", color="grey", linewidth=1)
    scatter_ax.set(xlabel="predicted", ylabel="residual (actual - predicted)",
                   title="Residuals against the prediction")
    if errors:
        histogram_ax.hist(errors, bins=bins)
    histogram_ax.axvline(0, linestyle="--", color="grey", linewidth=1)
    histogram_ax.set(xlabel="residual (actual - predicted)", ylabel="rows",
                     title=f"Residuals ({len(errors):,} eval rows sampled)")
    for ax in (scatter_ax, histogram_ax):
        ax.grid(alpha=0.3)
    return _save(figure, path)


def rmse_by_slice(rmse: Mapping[str, float], counts: Mapping[str, float], path: Path) -> Path:
    """A bar per slice (overall first), labelled with its RMSE and its row count."""
    names = list(rmse)
    figure = _figure(max(6.0, 0.8 * len(names) + 3), 4.5)
    ax = figure.subplots()
    bars = ax.bar(range(len(names)), [rmse[n] for n in names],
                  color=["#555555" if n == "overall" else "#1f77b4" for n in names])
    for bar, name in zip(bars, names):
        count = counts.get(name)
        note = f"{rmse[name]:.3g}" + (f"\n{count:,.0f} rows" if count is not None else "")
        ax.annotate(note, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                    fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 4 else 0, ha="right"
                  if len(names) > 4 else "center")
    ax.set(ylabel="RMSE", title="RMSE per slice (eval split)")
    ax.margins(y=0.2)
    ax.grid(alpha=0.3, axis="y")
    return _save(figure, path)
