"""A dataset drafted from its CSV: every rule of this package applied in order.

read the file once (table_sample; a second time when columns of numbers write missing values as
markers such as NA, or text columns write them unlike any of their values: declared as the
spec's missing_values, then read as the pipeline will read them, column_roles.missing_markers
and text_missing_markers) -> the task from the label's whole-file counts (task) -> the
pipeline's split of the sampled rows (hash_split) -> each column's type and role, leakage
included (column_roles, leakage) -> the slicing column (slicing) -> the proposed gates
(gate_proposal) -> the classes that split leaves in one split only (one_split_warnings).
Pure: nothing is written here (spec_writer renders the spec; the `init` command writes the
folder). Imports neither TensorFlow nor TFX.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from components.ingest import csv_format
from components.ingest.column_types import ColumnType
from pipeline.config import dataset_spec as ds
from pipeline.dataset_init import column_roles, gate_proposal, hash_split, slicing, table_sample
from pipeline.dataset_init import task as task_rules
from pipeline.dataset_init.column_roles import ColumnDraft
from pipeline.dataset_init.gate_proposal import Proposal
from pipeline.dataset_init.table_sample import TableSample
from pipeline.dataset_init.task import LabelRefused, Task

REGRESSION_GROUPS = 5


@dataclasses.dataclass(frozen=True)
class OneSplitClass:
    """A class whose rows all land in one split: "train", "eval", or "" when init cannot say
    which (a class of one row that the sample of a larger file does not hold)."""
    name: str
    rows: int  # in the whole file
    split: str


@dataclasses.dataclass(frozen=True)
class DatasetDraft:
    name: str
    label: str
    task: Task
    columns: tuple[ColumnDraft, ...]  # every CSV column, in CSV order, the label included
    slice_by: str
    slice_reason: str
    gates: Proposal | None
    table: TableSample
    # Cells read as missing besides empty ones (the spec's missing_values), and why.
    missing_values: tuple[str, ...] = ()
    missing_reason: str = ""
    # Classes that cannot be both trained on and evaluated: init warns (one_split_warnings).
    one_split: tuple[OneSplitClass, ...] = ()
    # The sample's rows in the train and the eval split, as the pipeline splits them.
    split_rows: tuple[int, int] = (0, 0)

    @property
    def ignored(self) -> list[ColumnDraft]:
        return [c for c in self.columns if c.role == ds.IGNORE]

    @property
    def flagged(self) -> list[ColumnDraft]:
        return [c for c in self.columns if c.flagged]


_QUOTES = "'\"`"


def _bare(name: str) -> str:
    return name.strip().strip(_QUOTES).strip().lower()


def _not_a_column(label: str, header: list[str], path) -> str:
    """The refusal of a label the header lacks, with the name it likely meant. A header that
    wraps its names in single quotes ('vote', statsmodels' anes96) keeps them in the names: CSV
    quotes with double quotes only."""
    quoted = any(h != h.strip(_QUOTES) for h in header)
    names = ", ".join(repr(h) if quoted else h for h in header)
    message = f"the label '{label}' is not a column of {path} (columns: {names})"
    close = [h for h in header if _bare(h) == _bare(label)]
    if not close:
        return message
    if close[0].strip() != close[0].strip().strip(_QUOTES):
        return (f"{message}; did you mean {close[0]!r}? The header writes that name inside "
                "quotes that CSV keeps as part of it (it quotes with double quotes only): pass "
                f"--label \"{close[0]}\", or remove them from the header line")
    return f"{message}; did you mean '{close[0]}'?"


def infer(path: str | Path, label: str, name: str, train_ratio: float = 0.7,
          sample_rows: int = table_sample.SAMPLE_ROWS) -> DatasetDraft:
    """Draft the dataset `name` from the CSV at path with `label` as the label (LabelRefused,
    or the CSV reader's errors, when it cannot be done)."""
    fmt = csv_format.inspect(path)
    fmt_header = fmt.header
    _check_names(path, fmt)
    if label not in fmt_header:
        raise LabelRefused(_not_a_column(label, fmt_header, path))
    table = table_sample.read(path, count=label, sample_rows=sample_rows)
    if table.rows == 0:
        raise LabelRefused(f"{path} has a header but no data rows")
    table, missing_values, marked, missing_reason = _declare_markers(path, label, table,
                                                                     sample_rows)
    try:
        task = task_rules.infer(label, table.type_of(label), table.counts)
    except LabelRefused as e:  # named by file, and by line where cells are empty
        in_label = tuple(csv_format.marked_numbers(table.counts))  # NA in a label of numbers
        lines = _empty_lines(fmt, label, (*missing_values, *in_label)) \
            if table.counts.get("") or in_label else []
        where = f" (line {', '.join(map(str, lines))}{', ...' if len(lines) == 3 else ''})" \
            if lines else ""
        raise LabelRefused(f"{path}: {e}{where}") from None
    split = hash_split.splits(table.sample, table.header, table.types, train_ratio)
    columns = []
    if task.task == "regression":
        # Leakage and code checks score against the label's quintiles: a column that predicts
        # which fifth of the range the label falls in is judged like one that predicts a class.
        y, classes = _quantile_classes(table.column(label), REGRESSION_GROUPS)
        metric = "AUC on the label's quintiles"
    else:
        raw_to_class = _class_ids(task, table, table.type_of(label))
        y = np.array([raw_to_class[v] for v in table.column(label)], dtype=np.int64)
        classes, metric = len(task.classes), "AUC"
    # A label's tf.Example values decide the split like any column's: the sample's rows are
    # split as the ExampleGen will split them.
    for column in table.header:
        if column == label:
            columns.append(ColumnDraft(column, task.label_type, ds.LABEL,
                                       f"the label: {task.task}, {task.reason}"))
        else:
            drafted = column_roles.infer_column(table, column, y, split, classes, metric)
            if column in marked:
                drafted = dataclasses.replace(drafted, reason=f"{drafted.reason}; {marked[column]}")
            columns.append(drafted)
    if not any(c.role == ds.FEATURE for c in columns):
        reasons = "; ".join(f"{c.name}: {c.reason}" for c in columns if c.role == ds.IGNORE)
        raise LabelRefused(f"no column is left to learn from ({reasons})")
    slice_by, slice_reason = slicing.choose(table, columns)
    if task.task == "regression":
        gates = gate_proposal.propose_regression(table, columns, label, split, train_ratio)
    else:
        gates = gate_proposal.propose(table, columns, y, split, len(task.classes),
                                      list(task.counts.values()), train_ratio)
    columns = [dataclasses.replace(c, reason=f"{c.reason}; {_leak_advice(gates)}")
               if c.role == ds.FEATURE and c.flagged else c for c in columns]
    one_split = _one_split_classes(task, y, split) if task.classes else ()
    split_rows = (int(np.sum(split == hash_split.TRAIN)), int(np.sum(split == hash_split.EVAL)))
    return DatasetDraft(name, label, task, tuple(columns), slice_by, slice_reason, gates, table,
                        missing_values, missing_reason, one_split, split_rows)


def _one_split_classes(task: Task, y: np.ndarray, split: np.ndarray
                       ) -> tuple[OneSplitClass, ...]:
    """The classes whose rows the pipeline's split puts in one split only. Judged on the sample's
    rows, split as the ExampleGen splits them (hash_split), for the classes the sample holds
    whole; a class of one row is in one split wherever it is."""
    found = []
    for i, name in enumerate(task.classes):
        rows = task.counts[name]
        in_train = int(np.sum((y == i) & (split == hash_split.TRAIN)))
        in_eval = int(np.sum((y == i) & (split == hash_split.EVAL)))
        if in_train + in_eval < rows:  # some of its rows are not in the sample
            if rows == 1:
                found.append(OneSplitClass(name, rows, ""))
        elif not in_train or not in_eval:
            found.append(OneSplitClass(name, rows, "eval" if in_eval else "train"))
    return tuple(found)


# What the pipeline does with a class of one split (the contract does not require a class of
# so few rows in each split: init_command._rare_classes_not_required_per_split).
_ONE_SPLIT_EFFECT = {
    "eval": "in the eval split only: the model never trains on such a class, so cannot learn to "
            "predict it, and its eval rows count as errors",
    "train": "in the train split only: the model trains on such a class, but no eval row "
             "measures it",
    "": "in one split only (which is not known: its row is not in init's sample): the model "
        "either never trains on such a class or no eval row measures it",
}


def one_split_warnings(draft: DatasetDraft) -> list[str]:
    """One line per split for the classes all of whose rows fall in it: the classes with their
    row counts, what the pipeline will do with them and what to do about it."""
    lines = []
    for split, effect in _ONE_SPLIT_EFFECT.items():
        group = [c for c in draft.one_split if c.split == split]
        if not group:
            continue
        names = ", ".join(f"{c.name!r} ({c.rows:,} row{'' if c.rows == 1 else 's'})"
                          for c in group)
        binary = " (a binary AUC needs eval rows of both classes)" \
            if split != "eval" and draft.task.task == ds.BINARY else ""
        lines.append(f"{'class' if len(group) == 1 else 'classes'} {names} "
                     f"{'is' if len(group) == 1 else 'are'} {effect}{binary}; add rows of it, "
                     "merge it into another class, or drop its rows, then run init again")
    return lines


def _leak_advice(gates: Proposal) -> str:
    """What a flagged feature's comment adds: the gates do not depend on it, and how to replace
    a champion that was trained with it once it is ignored (its figure is one no model without
    the column reaches, and the change gate compares every later model with it)."""
    return (f"the gates leave it out, so they hold whether it is kept or not; if a champion "
            f"trained with it was pushed before you ignore it, run once with {gates.override} "
            f"(in make pipeline's ARGS): gated by {gates.key} alone, its model replaces that "
            "champion (docs/init.md, Leakage)")


def _declare_markers(path, label: str, table: TableSample, sample_rows: int):
    """Columns of numbers that write missing values as markers (NA, ?, ...), and text columns
    that write them unlike any of their values (column_roles.text_missing_markers): the markers
    the spec declares as missing_values, and the file read again as the pipeline will then read
    it. A marker the label holds is not declared (it would empty label cells). Returns the
    table, the markers, {column: its note} and the spec line's comment."""
    found = column_roles.missing_markers(table, label)
    in_text = column_roles.text_missing_markers(table, label)
    in_label = set(table.counts)
    from_text = {m for counts in in_text.values() for m in counts} - in_label
    markers = tuple(sorted(({m for counts in found.values() for m in counts} | from_text)
                           - in_label))
    while markers:
        again = table_sample.read(path, count=label, sample_rows=sample_rows,
                                  missing_values=markers)
        numeric = {name: counts for name, counts in found.items()
                   if again.type_of(name) != ColumnType.STRING
                   and set(counts) <= set(markers)}
        # A text column's marker needs no type change: it is missing there whatever the rest.
        kept = tuple(sorted({m for counts in numeric.values() for m in counts} | from_text))
        if kept != markers:  # a column had text beyond the sample: declare only what works
            markers = kept
            continue
        text = {name: counts for name, counts in in_text.items() if set(counts) & from_text}
        return again, markers, *_marker_notes(table, again, markers, numeric, text)
    return table, (), {}, ""


def _marker_notes(before: TableSample, after: TableSample, markers: tuple[str, ...],
                  numeric: dict[str, dict[str, int]], text: dict[str, dict[str, int]]
                  ) -> tuple[dict[str, str], str]:
    shown = ", ".join(repr(m) for m in markers)
    marked = {}
    others = []
    for i, name in enumerate(after.header):
        cells = after.empty[i] - before.empty[i]
        if not cells:
            continue
        if name in numeric or name in text:
            marked[name] = f"{cells:,} cells of {shown} read as missing (missing_values)"
        else:
            others.append(f"{name} ({cells:,})")
    why = []
    if numeric:
        why.append(f"numbers written with them in {len(numeric)} column(s) "
                   f"({', '.join(numeric)})")
    if text:
        why.append(f"text written with them in {len(text)} column(s) ({', '.join(text)}), "
                   "where no other value is written like them")
    reason = "cells read as missing, as an empty cell is, in every column: " + "; ".join(why)
    if others:
        reason += (f"; also read as missing in text column(s) {', '.join(others)}: if it is "
                   "a value there, remove it from this list")
    return marked, reason


def _quantile_classes(values: list[str], groups: int) -> tuple[np.ndarray, int]:
    numbers = np.array([float(v) for v in values])
    edges = np.unique(np.quantile(numbers, np.linspace(0, 1, groups + 1)[1:-1]))
    return np.searchsorted(edges, numbers, side="right"), len(edges) + 1


def _empty_lines(fmt, column: str, missing_values, limit: int = 3) -> list[int]:
    """The first `limit` lines whose cell in `column` is empty (or a declared missing marker)."""
    import csv

    index, lines = fmt.header.index(column), []
    with fmt.open_text() as f:
        rows = csv.reader(f)
        next(rows, None)
        for row in rows:
            if row and (index >= len(row) or row[index] in ("", *missing_values)):
                lines.append(rows.line_num + fmt.header_line - 1)
                if len(lines) == limit:
                    break
    return lines


def _check_names(path, fmt) -> None:
    """What the pipeline's preflight refuses in a header, refused before anything is drafted."""
    problem = csv_format.header_problem(fmt)
    if problem:
        raise LabelRefused(f"{path}: {problem}")


def _class_ids(task: Task, table: TableSample, column_type) -> dict[str, int]:
    """The label's raw CSV text -> its class id (numbers are spelled as the Transform spells
    them: task.class_text)."""
    ids = {c: i for i, c in enumerate(task.classes)}
    return {raw: ids[task_rules.class_text(raw, column_type)] for raw in table.counts}
