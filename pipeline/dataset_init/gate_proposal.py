"""Gates init proposes, from trivial baselines measured on the pipeline's own split.

On the sample's rows, split as the pipeline will split them (hash_split.py), two baselines are
fitted on the train rows and scored on the eval rows:

- the majority class: AUC 0.5, accuracy the eval share of the train rows' commonest class;
- a linear model: scikit-learn's LogisticRegression on the feature columns the spec keeps
  (numbers with missing values imputed by the train median, standardized; categories one-hot,
  values seen fewer than 5 times in train pooled), at most LINEAR_ROWS train rows. Columns
  flagged as possible leakage (leakage.py) are left out: a gate measured with a column that
  turns out to be known only after the label would be one no honest model reaches, and its
  change gate, one standard error of a near-perfect figure, would then refuse every model
  trained without it. Measured without them, the gates hold whether the user keeps or ignores
  them.

The proposed minimum (`min_auc` for binary, `min_accuracy` for multiclass) is the majority
figure plus GATE_SHARE (80%) of the linear model's lift over it, rounded down to 0.01 (to 0.001
where 0.01 would reach down to the majority figure, and never at or below it): a model
that is clearly better than guessing and not far behind a straight line is pushed, and any
model at least as good as the linear baseline always is, unless that baseline is within 0.001
of guessing (then only a model that beats guessing is). `max_metric_drop` is one standard
error of the gated figure on the whole file's eval split (rounded up to 0.001, Hanley and
McNeil's formula for AUC; a perfect figure counted as one error in 2n rows, as n rows cannot
tell more): a retrained model that is worse than the champion only by noise is
still blessed; a real drop is not.

Regression (issue 24's gates): the trivial baseline predicts the train rows' mean, the linear
one is a ridge regression on the same design; `min_improvement_over_mean` is 80% of the ridge's
RMSE improvement over the mean (1 - its RMSE / the mean's), rounded as above (above 0, the
mean's own improvement), and
`max_rmse_increase` the relative standard error of an RMSE on the whole file's eval split,
1 / sqrt(2 n), rounded up to 0.001.

A ridge regression that predicts the label almost exactly (an RMSE improvement over the mean of
EXACT_FIT or more: R² above 0.9999) says the label is likely computed from some of the columns,
a leak no one column shows: randhie's `meddol` is the sum of five spending columns, each of
which alone scores far below leakage.py's flag, while the ridge read 1.000. Init flags the label
for review and names the columns the fit needs: of the EXACT_FIT_CANDIDATES with the largest
weights, each without which a refit is no longer near-exact (Proposal.exact_fit). The gates are
then measured without those columns, as without flagged ones: they hold whether the user
ignores them or keeps them.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from pipeline.config import dataset_spec as ds
from pipeline.dataset_init.column_roles import ColumnDraft
from pipeline.dataset_init.hash_split import EVAL, TRAIN
from pipeline.dataset_init.table_sample import TableSample

GATE_SHARE = 0.8
# A linear fit this close (1 - RMSE / the mean's RMSE) is a computed label (module docstring).
EXACT_FIT = 0.99
# The columns named for it: of this many with the largest standardized weights, those without
# any one of which the fit is no longer near-exact (each refit: a ridge on <= LINEAR_ROWS rows).
EXACT_FIT_CANDIDATES = 12
LINEAR_ROWS = 20_000
MIN_CATEGORY_ROWS = 5
SEED = 0
# The change gate's value for one run that must not be compared with the champion (a champion
# trained with a column since ignored as leakage): a drop of 1 admits any AUC or accuracy; an
# RMSE has no upper bound, so 100 times the champion's.
CHAMPION_OVERRIDE = {"max_metric_drop": "1", "max_rmse_increase": "100"}


@dataclasses.dataclass(frozen=True)
class Proposal:
    metric: str  # "AUC", "accuracy" or "RMSE improvement over the mean"
    key: str  # min_auc, min_accuracy or min_improvement_over_mean
    minimum: float
    max_drop: float
    majority: float  # the trivial baseline's figure (the mean's improvement over itself: 0)
    linear: float | None  # None when it could not be fitted
    eval_rows: int  # eval rows of the sample the baselines were scored on
    change_key: str = "max_metric_drop"  # regression: max_rmse_increase (a fraction)
    trivial: str = "the majority class"
    linear_name: str = "a logistic regression"
    left_out: tuple[str, ...] = ()  # flagged feature columns the linear baseline leaves out
    # Regression with a near-exact linear fit (EXACT_FIT): the columns it needs (each one
    # without which it is no longer near-exact; may be empty). None: no such fit.
    exact_fit: tuple[str, ...] | None = None
    exact_figure: float | None = None  # that fit's figure, with every column

    def gates(self) -> dict[str, float]:
        return {self.key: self.minimum, self.change_key: self.max_drop}

    def no_lift(self) -> bool:
        """Whether the linear baseline did no better than the trivial one (or could not be
        fitted): the gate then sits just above the trivial figure, which keeps out a model that
        guesses but passes one barely better (R's breaches: ridge -0.316, gate 0.001, a model
        with R² -0.003 on eval pushed)."""
        return self.linear is None or self.linear <= self.majority

    def computed_label_note(self) -> str:
        """Why the label is flagged for review when a linear fit predicts it almost exactly
        (exact_fit), else ''."""
        if self.exact_fit is None:
            return ""
        needed = (f"Without any one of {', '.join(self.exact_fit)} the fit is no longer that "
                  "close" if self.exact_fit else "No single column is needed for it")
        return (f"{self.linear_name} on the features predicts it almost exactly ({self.metric} "
                f"{self.exact_figure:.3f} on held-out rows, >= {EXACT_FIT}): is it computed from "
                f"some of them? {needed}; ignore the columns it is made of (role: ignore) "
                "unless they are known before it is")

    @property
    def override(self) -> str:
        """The flag for one run gated by the minimum alone, not by the champion."""
        return f"--{self.change_key.replace('_', '-')} {CHAMPION_OVERRIDE[self.change_key]}"


def baseline_columns(columns: Sequence[ColumnDraft]) -> list[ColumnDraft]:
    """The feature columns the linear baseline uses: not the flagged ones (module docstring)."""
    return [c for c in columns if c.role == ds.FEATURE and not c.flagged]


def _left_out(columns: Sequence[ColumnDraft]) -> tuple[str, ...]:
    return tuple(c.name for c in columns if c.role == ds.FEATURE and c.flagged)


def _design(table: TableSample, columns: Sequence[ColumnDraft], train: np.ndarray):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    kept = baseline_columns(columns)
    # Two-valued whole numbers (drafted `int`, column_roles.py) one-hot as codes are: standardized,
    # a rare indicator's 1 sits tens of deviations out, and on modeldata's grants (582 of them,
    # 373 training rows) the baseline's AUC fell from 0.871 to 0.727 by that alone.
    two_valued = {c.name for c in kept if c.type == ds.INT and not c.time and
                  len({v for v in table.column(c.name) if v != ""}) == 2}
    numeric = [c.name for c in kept if c.type in ds.NUMERIC_TYPES and c.name not in two_valued]
    categorical = [c.name for c in kept
                   if c.type in (ds.CATEGORICAL, ds.CATEGORICAL_INT) or c.name in two_valued]
    columns_ = {c: pd.to_numeric(pd.Series(table.column(c), dtype=object).replace("", None),
                                 errors="coerce") for c in numeric}
    columns_.update({c: pd.Series(table.column(c), dtype=object) for c in categorical})
    frame = pd.DataFrame(columns_)
    parts = []
    if numeric:
        parts.append(("numbers", make_pipeline(SimpleImputer(strategy="median",
                                                             keep_empty_features=True),
                                               StandardScaler()), numeric))
    if categorical:
        parts.append(("categories", OneHotEncoder(handle_unknown="infrequent_if_exist",
                                                  min_frequency=MIN_CATEGORY_ROWS),
                      categorical))
    return frame, ColumnTransformer(parts)


def linear_figure(table: TableSample, columns: Sequence[ColumnDraft], y: np.ndarray,
                  split: np.ndarray, classes: int) -> float | None:
    """The linear model's eval AUC (binary) or accuracy (multiclass); None if it cannot fit."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline

    train_rows = np.flatnonzero(split == TRAIN)
    eval_rows = np.flatnonzero(split == EVAL)
    if len(np.unique(y[train_rows])) < 2 or len(eval_rows) == 0 or \
            not baseline_columns(columns):
        return None
    if len(train_rows) > LINEAR_ROWS:
        train_rows = np.sort(np.random.default_rng(SEED).choice(train_rows, LINEAR_ROWS,
                                                                replace=False))
    frame, design = _design(table, columns, split == TRAIN)
    model = make_pipeline(design, LogisticRegression(max_iter=500))
    try:
        model.fit(frame.iloc[train_rows], y[train_rows])
    except ValueError:  # no usable feature column
        return None
    probabilities = np.zeros((len(eval_rows), classes))
    probabilities[:, model.classes_] = model.predict_proba(frame.iloc[eval_rows])
    truth = y[eval_rows]
    if classes == 2:
        return float(roc_auc_score(truth, probabilities[:, 1])) if len(set(truth)) == 2 else None
    return float((probabilities.argmax(axis=1) == truth).mean())


def _auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982)."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc)
                + (negatives - 1) * (q2 - auc * auc)) / max(positives * negatives, 1)
    return math.sqrt(max(variance, 0.0))


def gate_text(value: float) -> str:
    """A proposed minimum as written: 0.86, or 0.215 where it was rounded to 0.001."""
    return f"{round(value, 3):g}"


def above_trivial(proposed: float, trivial: float) -> float:
    """proposed rounded down to 0.01, or to 0.001 where 0.01 would reach down to the trivial
    baseline's figure; at least 0.001 above that figure. Rounding alone proposed 0.21 for R's
    Vocab table, whose commonest class is 0.214 of its eval rows: a model that always answers
    that class would have been pushed."""
    for step in (100, 1000):
        value = round(math.floor(proposed * step) / step, 3)
        if value > trivial:
            return value
    return round(math.floor(trivial * 1000) / 1000 + 0.001, 3)


def propose(table: TableSample, columns: Sequence[ColumnDraft], y: np.ndarray,
            split: np.ndarray, classes: int, class_counts: Sequence[int],
            train_ratio: float) -> Proposal:
    """The proposed gates (see the module docstring). class_counts: rows per class, whole file."""
    train, held = split == TRAIN, split == EVAL
    linear = linear_figure(table, columns, y, split, classes)
    file_eval = max(1, round(table.rows * (1 - round(train_ratio * 100) / 100)))
    if classes == 2:
        majority, metric, key = 0.5, "AUC", "min_auc"
        figure = linear if linear is not None else majority
        share = class_counts[1] / max(sum(class_counts), 1)
        positives = max(1, round(file_eval * share))
        negatives = max(1, file_eval - positives)
        # A perfect AUC on a few rows is not certain: clipped to 1 - 1/(2 x the smaller class).
        figure = min(max(figure, 0.5), 1 - 1 / (2 * min(positives, negatives)))
        error = _auc_standard_error(figure, positives, negatives)
    else:
        common = np.bincount(y[train], minlength=classes).argmax() if train.any() else 0
        majority = float((y[held] == common).mean()) if held.any() else 0.0
        metric, key = "accuracy", "min_accuracy"
        figure = linear if linear is not None else majority
        figure = min(figure, 1 - 1 / (2 * file_eval))  # perfect on n rows: as if 1 in 2n wrong
        error = math.sqrt(max(figure * (1 - figure), 0.0) / file_eval)
    lift = max((linear if linear is not None else majority) - majority, 0.0)
    minimum = above_trivial(majority + GATE_SHARE * lift, majority)
    max_drop = max(math.ceil(error * 1000) / 1000, 0.001)
    return Proposal(metric, key, minimum, max_drop, majority, linear, int(held.sum()),
                    left_out=_left_out(columns))


def propose_regression(table: TableSample, columns: Sequence[ColumnDraft], label: str,
                       split: np.ndarray, train_ratio: float) -> Proposal:
    """The regression gates (see the module docstring)."""
    y = np.array([float(v) for v in table.column(label)])
    train_rows, eval_rows = np.flatnonzero(split == TRAIN), np.flatnonzero(split == EVAL)
    file_eval = max(1, round(table.rows * (1 - round(train_ratio * 100) / 100)))
    change = max(math.ceil(1000 / math.sqrt(2 * file_eval)) / 1000, 0.001)
    if len(train_rows) > LINEAR_ROWS:
        train_rows = np.sort(np.random.default_rng(SEED).choice(train_rows, LINEAR_ROWS,
                                                                replace=False))
    improvement, exact, exact_figure = None, None, None
    if len(train_rows) > 1 and len(eval_rows) and baseline_columns(columns):
        frame, design = _design(table, columns, split == TRAIN)
        try:
            matrix = design.fit(frame.iloc[train_rows]).transform(frame)
        except ValueError:  # no usable feature column
            matrix = None
        if matrix is not None:
            owners = _owners(design, columns)
            fit = _RidgeFit(matrix, y, train_rows, eval_rows)
            improvement, weights = fit.improvement(range(len(owners)))
            if improvement is not None and improvement >= EXACT_FIT:
                exact, exact_figure = _needed_columns(fit, owners, weights), improvement
                # The gates without them, as without flagged columns: they hold whether the
                # user ignores those columns or keeps them.
                improvement, _ = fit.improvement(i for i, owner in enumerate(owners)
                                                 if owner not in exact)
    minimum = above_trivial(GATE_SHARE * max(improvement or 0.0, 0.0), 0.0)
    return Proposal("RMSE improvement over the mean", "min_improvement_over_mean", minimum,
                    change, 0.0, improvement, int((split == EVAL).sum()),
                    change_key="max_rmse_increase", trivial="the train mean",
                    linear_name="a ridge regression",
                    left_out=_left_out(columns) + tuple(exact or ()), exact_fit=exact,
                    exact_figure=exact_figure)


class _RidgeFit:
    """Ridge regressions on columns of one design matrix (the design fitted on train rows)."""

    def __init__(self, matrix, y: np.ndarray, train_rows: np.ndarray, eval_rows: np.ndarray):
        self.matrix, self.y = matrix, y
        self.train_rows, self.eval_rows = train_rows, eval_rows
        self.mean_rmse = float(np.sqrt(np.mean((y[eval_rows] - y[train_rows].mean()) ** 2)))

    def improvement(self, kept) -> tuple[float | None, np.ndarray | None]:
        """(1 - RMSE / the train mean's RMSE on the eval rows, the sizes of the weights) of a
        ridge on the `kept` columns of the matrix; (None, None) when there is nothing to fit."""
        from sklearn.linear_model import Ridge

        kept = list(kept)
        if self.mean_rmse <= 0 or not kept:
            return None, None
        model = Ridge().fit(self.matrix[self.train_rows][:, kept], self.y[self.train_rows])
        predicted = model.predict(self.matrix[self.eval_rows][:, kept])
        rmse = float(np.sqrt(np.mean((predicted - self.y[self.eval_rows]) ** 2)))
        return 1 - rmse / self.mean_rmse, np.abs(np.ravel(model.coef_))


def _owners(design, columns: Sequence[ColumnDraft]) -> list[str]:
    """The spec column each column of the fitted design's matrix comes from."""
    kept = sorted((c.name for c in baseline_columns(columns)), key=len, reverse=True)
    owners = []
    for name in design.get_feature_names_out():
        _, _, feature = name.partition("__")
        # A one-hot name is `<column>_<value>`: the longest column name it starts with.
        owners.append(next((c for c in kept if feature == c or feature.startswith(c + "_")),
                           feature))
    return owners


def _needed_columns(fit: _RidgeFit, owners: list[str], weights: np.ndarray
                    ) -> tuple[str, ...]:
    """Of the EXACT_FIT_CANDIDATES columns with the largest `weights` in the fit on every
    column (numbers standardized: the label's change per standard deviation; a category's
    largest one-hot weight), those without which the fit is no longer near-exact."""
    weight: dict[str, float] = {}
    for owner, size in zip(owners, weights):
        weight[owner] = max(weight.get(owner, 0.0), float(size))
    candidates = sorted(weight, key=weight.get, reverse=True)[:EXACT_FIT_CANDIDATES]
    return tuple(c for c in candidates if (fit.improvement(
        i for i, owner in enumerate(owners) if owner != c)[0] or 0.0) < EXACT_FIT)
