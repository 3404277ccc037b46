"""The task and the classes, from the label's values in the whole file.

Rules, in order:

1. The label must be a column of the header, never empty, and hold at least two values;
   otherwise init refuses (LabelRefused), writing nothing.
2. Two distinct values: `binary`.
3. Text: `multiclass` when it has at most MAX_CLASSES (50) distinct values; more is refused (a
   classifier over that many text classes is not what a first model on a table needs: group
   them, or pick another label).
4. Numbers: whole numbers (INT, or decimals that are all whole) with at most MAX_NUMERIC_CLASSES
   (20, as Ludwig) distinct values are class codes: `multiclass`, unless most of those values
   are on one row each (classes must repeat: a class of one row is in one split only, never
   both trained on and evaluated; statsmodels' longley, 16 employment figures on 16 rows, was
   16 classes of one row and reached accuracy 0). Anything else, decimals, many distinct whole
   numbers or whole numbers that do not repeat, is a quantity: `regression`, written only if
   the spec format accepts the task (pipeline/config/dataset_spec.py TASKS), else refused with
   a one-line message.

Class order (the model's output ids; the binary task's AUC is for the second class):

- numbers in numeric order (0 before 1, 2 before 10);
- two text values that name a negative and a positive (no/yes, false/true, n/y, f/t,
  negative/positive, 0/1 spelled out) in that order; any other two: the rarer one second (the
  event a binary model is usually asked to find), ties in text order;
- more text values in text (code point) order.
"""
from __future__ import annotations

import collections
import dataclasses
import math

from components.ingest import csv_format
from components.ingest.column_types import ColumnType
from pipeline.config import dataset_spec

MAX_CLASSES = 50
MAX_NUMERIC_CLASSES = 20
_NEGATIVE_FIRST = [("no", "yes"), ("false", "true"), ("n", "y"), ("f", "t"),
                   ("negative", "positive"), ("neg", "pos"), ("0", "1"), ("absent", "present"),
                   ("fail", "pass"), ("failure", "success"),
                   # no/yes in French, German, Dutch, Scandinavian, Spanish, Italian, Portuguese
                   ("non", "oui"), ("nein", "ja"), ("nee", "ja"), ("nej", "ja"), ("nei", "ja"),
                   ("no", "sí"), ("no", "si"), ("não", "sim"), ("nao", "sim")]


class LabelRefused(ValueError):
    """The label cannot be trained on as it is; the message says why in one line."""


@dataclasses.dataclass(frozen=True)
class Task:
    task: str  # binary, multiclass or regression
    classes: tuple[str, ...]  # as the spec lists them (() for regression)
    label_type: str  # the label column's spec type
    reason: str  # why this task, for the spec comment and the printout
    counts: dict[str, int]  # rows per class, whole file


def class_text(raw: str, column_type: ColumnType) -> str:
    """A label cell's class as the pipeline's Transform spells it: text as it is, a whole
    number as int() reads it, a decimal with six decimals (tf.strings.as_string of a float)."""
    if column_type == ColumnType.INT:
        return str(int(raw))
    if column_type == ColumnType.FLOAT:
        return f"{float(raw):.6f}"
    return raw


def infer(label: str, column_type: ColumnType, counts: dict[str, int]) -> Task:
    """The task of a label column of the given ExampleGen type and whole-file value counts."""
    empty = counts.get("", 0)
    values = {v: n for v, n in counts.items() if v != ""}
    if not values:
        raise LabelRefused(f"the label column '{label}' is empty on every row")
    if empty:
        raise LabelRefused(
            f"the label column '{label}' is empty on {empty:,} of {empty + sum(values.values()):,}"
            " rows; the pipeline trains on labelled rows only: drop those rows (or fill them) "
            "and run init again")
    if len(values) == 1:
        (only,) = values
        raise LabelRefused(f"the label column '{label}' has one value ({only!r}) on every row: "
                           "there is nothing to predict")
    if column_type == ColumnType.STRING:
        _refuse_marked_numbers(label, values)
        return _text_task(label, values)
    # Classes as the Transform spells the label's values (preprocessing.label_ids compares
    # tf.strings.as_string of the number): "7" for an INT 007, "1.000000" for a FLOAT 1.0.
    spelled: dict[str, int] = {}
    number_of: dict[str, float] = {}
    for raw, n in values.items():
        key = class_text(raw, column_type)
        spelled[key] = spelled.get(key, 0) + n
        number_of[key] = float(raw)
    whole = all(math.isfinite(x) and x.is_integer() for x in number_of.values())
    label_type = dataset_spec.INT if column_type == ColumnType.INT else dataset_spec.FLOAT
    if len(spelled) == 1:
        raise LabelRefused(f"the label column '{label}' has one value ({next(iter(values))!r})"
                           " on every row: there is nothing to predict")
    once = _values_on_one_row(spelled)
    if len(spelled) == 2 or (whole and len(spelled) <= MAX_NUMERIC_CLASSES and
                             once <= len(spelled) / 2):
        classes = tuple(sorted(spelled, key=number_of.__getitem__))
        task = dataset_spec.BINARY if len(classes) == 2 else dataset_spec.MULTICLASS
        what = "two values" if len(classes) == 2 else (
            f"{len(classes)} distinct whole numbers (at most {MAX_NUMERIC_CLASSES}: class codes)")
        return Task(task, classes, label_type, f"{what}, in numeric order",
                    {c: spelled[c] for c in classes})
    why = (f"{len(values):,} distinct numbers" + ("" if whole else ", with decimals"))
    if whole and len(spelled) <= MAX_NUMERIC_CLASSES:
        why = (f"{len(spelled):,} distinct whole numbers, {once:,} of them on one row only (a "
               "class must repeat to be both trained on and evaluated)")
    if "regression" not in dataset_spec.TASKS:
        raise LabelRefused(
            f"the label column '{label}' holds {why}: a regression task, which this version "
            "of the pipeline does not support yet (issue 24); pick a class label")
    return Task("regression", (), label_type,
                f"{why}: a quantity to predict", {})


def _values_on_one_row(counts: dict[str, int]) -> int:
    """How many of the label's values are on one row only."""
    return sum(1 for n in counts.values() if n == 1)


def _refuse_marked_numbers(label: str, values: dict[str, int]) -> None:
    """A label of numbers with missing values written as markers (R's airquality writes NA for
    37 of its 153 Ozone readings) is refused as an empty label is, not read as text (it was
    refused as '68 distinct text values: more than 50 classes')."""
    markers = csv_format.marked_numbers(values)
    if not markers:
        return
    shown = ", ".join(repr(m) for m in markers)
    raise LabelRefused(
        f"the label column '{label}' is missing ({shown}) on {sum(markers.values()):,} of "
        f"{sum(values.values()):,} rows; the pipeline trains on labelled rows only: drop those "
        "rows (or fill them) and run init again")


def _text_task(label: str, values: dict[str, int]) -> Task:
    spelled = collections.defaultdict(list)  # one class written several ways: 'Yes', 'yes '
    for value in values:
        spelled[" ".join(value.split()).casefold()].append(value)
    twins = sorted(sorted(group) for group in spelled.values() if len(group) > 1)
    if twins:
        shown = "; ".join(" and ".join(repr(v) for v in group) for group in twins[:3])
        raise LabelRefused(
            f"the label column '{label}' writes a class in more than one way ({shown}"
            f"{'; ...' if len(twins) > 3 else ''}): they would be different classes; write "
            "each class one way and run init again")
    if len(values) > MAX_CLASSES:
        raise LabelRefused(
            f"the label column '{label}' holds {len(values):,} distinct text values: more than "
            f"{MAX_CLASSES} classes; group them into fewer classes or pick another label")
    if len(values) == 2:
        first, second = sorted(values)
        pair = (first.strip().lower(), second.strip().lower())
        if pair in _NEGATIVE_FIRST:
            classes, why = (first, second), "two values, negative first"
        elif pair[::-1] in _NEGATIVE_FIRST:
            classes, why = (second, first), "two values, negative first"
        else:
            classes = tuple(sorted(values, key=lambda v: (-values[v], v)))
            why = "two values, the rarer one second (the positive class)"
        return Task(dataset_spec.BINARY, classes, dataset_spec.CATEGORICAL, why,
                    {c: values[c] for c in classes})
    classes = tuple(sorted(values))
    return Task(dataset_spec.MULTICLASS, classes, dataset_spec.CATEGORICAL,
                f"{len(values)} distinct text values, in text order",
                {c: values[c] for c in classes})
