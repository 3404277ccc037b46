"""How well one column alone predicts the label, on rows it was not fitted on; label leakage.

The score of a column: group the rows by the column (by value for text and integer codes, by
ranges of quantiles for numbers, the empty cells a group of their own), take each group's class
shares on the train rows (smoothed toward the overall shares by one row's weight, so a group of
one row does not claim certainty), and score those shares as predictions on the eval rows:
AUC for two classes, the mean one-vs-rest AUC over the classes for more. The rows are split as
the pipeline splits them (hash_split.py), so nothing is scored on the rows it was fitted on.

Leakage rule (per feature column, on that score):

- LEAK_IGNORE (0.995) or more: the column alone restates the label (at most 1 in 200 pairs of
  rows of different classes ordered wrongly): it is a copy or a consequence of the label, so it
  is ignored, with its score in the comment. Only when the eval rows are enough to tell (at
  least MIN_EVAL_ROWS rows and MIN_CLASS_ROWS of each class); on fewer it is flagged instead.
- LEAK_FLAG (0.95) or more: kept, but flagged in the comment and in what init prints: a column
  that alone predicts the label this well is often known only after the label is (Chicago
  taxi's `tips` defines `big_tipper` and scores 0.96 alone), yet legitimate strong predictors
  also score there (the breast-cancer table's `worst perimeter` ~0.97, iris' petal width ~0.98):
  a person who knows the data decides.

Why these numbers and not taxi's: the flag line sits where single measurements of well-studied
tables already reach, so it catches suspects without removing any; the ignore line demands
near-certainty, which real predictors of a noisy outcome do not reach and a leaked label does.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.dataset_init.hash_split import EVAL, TRAIN

LEAK_IGNORE = 0.995
LEAK_FLAG = 0.95
MIN_EVAL_ROWS = 200
MIN_CLASS_ROWS = 20
RANGE_GROUPS = 32  # quantile ranges of a numeric column
_SMOOTHING = 1.0  # rows' weight of the overall class shares in each group's shares

IGNORE, FLAG = "ignore", "flag"


def groups_by_value(values: list[str]) -> np.ndarray:
    """One group per distinct value ("" included)."""
    _, ids = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    return ids


def groups_by_range(numbers: np.ndarray, split: np.ndarray, ranges: int = RANGE_GROUPS
                    ) -> np.ndarray:
    """Quantile ranges of the train rows' numbers (NaN: a group of its own)."""
    train = numbers[(split == TRAIN) & ~np.isnan(numbers)]
    if len(train) == 0:
        return np.zeros(len(numbers), dtype=np.int64)
    edges = np.unique(np.quantile(train, np.linspace(0, 1, ranges + 1)[1:-1]))
    ids = np.searchsorted(edges, numbers, side="right")
    return np.where(np.isnan(numbers), len(edges) + 1, ids)


def score(groups: np.ndarray, y: np.ndarray, split: np.ndarray, classes: int) -> float | None:
    """The held-out AUC of the groups' train class shares (see the module docstring); None when
    the eval rows hold fewer than two classes."""
    from sklearn.metrics import roc_auc_score

    train, held = split == TRAIN, split == EVAL
    if not train.any() or not held.any():
        return None
    _, ids = np.unique(groups, return_inverse=True)
    counts = np.zeros((ids.max() + 1, classes))
    np.add.at(counts, (ids[train], y[train]), 1)
    prior = counts.sum(axis=0) / counts.sum()
    shares = (counts + _SMOOTHING * prior) / (counts.sum(axis=1, keepdims=True) + _SMOOTHING)
    predicted, truth = shares[ids[held]], y[held]
    aucs = []
    for k in range(classes) if classes > 2 else (1,):
        positive = truth == k
        if positive.any() and not positive.all():
            aucs.append(roc_auc_score(positive, predicted[:, k]))
    return float(np.mean(aucs)) if aucs else None


@dataclasses.dataclass(frozen=True)
class Verdict:
    score: float | None
    action: str  # IGNORE, FLAG or ""

    def describe(self, metric: str) -> str:
        if self.action == IGNORE:
            return (f"alone predicts the label almost perfectly ({metric} {self.score:.3f} on "
                    f"held-out rows, >= {LEAK_IGNORE}): label leakage, a copy or consequence of "
                    "the label")
        if self.action == FLAG:
            return (f"REVIEW: alone predicts the label suspiciously well ({metric} "
                    f"{self.score:.3f} on held-out rows, >= {LEAK_FLAG}); ignore it if it is "
                    "known only after the label is")
        return ""


def judge(value: float | None, y: np.ndarray, split: np.ndarray, classes: int) -> Verdict:
    """The leakage rule on one column's score."""
    if value is None or value < LEAK_FLAG:
        return Verdict(value, "")
    held = y[split == EVAL]
    enough = len(held) >= MIN_EVAL_ROWS and all(
        (held == k).sum() >= MIN_CLASS_ROWS for k in range(classes))
    return Verdict(value, IGNORE if value >= LEAK_IGNORE and enough else FLAG)
