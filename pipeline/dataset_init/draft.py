"""A dataset drafted from its CSV: every rule of this package applied in order.

read the file once (table_sample) -> the task from the label's whole-file counts (task) ->
the pipeline's split of the sampled rows (hash_split) -> each column's type and role, leakage
included (column_roles, leakage) -> the slicing column (slicing) -> the proposed gates
(gate_proposal). Pure: nothing is written here (spec_writer renders the spec; the `init`
command writes the folder). Imports neither TensorFlow nor TFX.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from pipeline.config import dataset_spec as ds
from pipeline.dataset_init import column_roles, gate_proposal, hash_split, slicing, table_sample
from pipeline.dataset_init import task as task_rules
from pipeline.dataset_init.column_roles import ColumnDraft
from pipeline.dataset_init.gate_proposal import Proposal
from pipeline.dataset_init.table_sample import TableSample
from pipeline.dataset_init.task import LabelRefused, Task

REGRESSION_GROUPS = 5


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

    @property
    def ignored(self) -> list[ColumnDraft]:
        return [c for c in self.columns if c.role == ds.IGNORE]

    @property
    def flagged(self) -> list[ColumnDraft]:
        return [c for c in self.columns if c.flagged]


def infer(path: str | Path, label: str, name: str, train_ratio: float = 0.7,
          sample_rows: int = table_sample.SAMPLE_ROWS) -> DatasetDraft:
    """Draft the dataset `name` from the CSV at path with `label` as the label (LabelRefused,
    or the CSV reader's errors, when it cannot be done)."""
    fmt_header = _header(path)
    _check_names(path, fmt_header)
    if label not in fmt_header:
        close = [h for h in fmt_header if h.strip().lower() == label.strip().lower()]
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise LabelRefused(f"the label '{label}' is not a column of {path} (columns: "
                           f"{', '.join(fmt_header)}){hint}")
    table = table_sample.read(path, count=label, sample_rows=sample_rows)
    if table.rows == 0:
        raise LabelRefused(f"{path} has a header but no data rows")
    task = task_rules.infer(label, table.type_of(label), table.counts)
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
            columns.append(column_roles.infer_column(table, column, y, split, classes, metric))
    if not any(c.role == ds.FEATURE for c in columns):
        reasons = "; ".join(f"{c.name}: {c.reason}" for c in columns if c.role == ds.IGNORE)
        raise LabelRefused(f"no column is left to learn from ({reasons})")
    slice_by, slice_reason = slicing.choose(table, columns)
    if task.task == "regression":
        gates = gate_proposal.propose_regression(table, columns, label, split, train_ratio)
    else:
        gates = gate_proposal.propose(table, columns, y, split, len(task.classes),
                                      list(task.counts.values()), train_ratio)
    return DatasetDraft(name, label, task, tuple(columns), slice_by, slice_reason, gates, table)


def _quantile_classes(values: list[str], groups: int) -> tuple[np.ndarray, int]:
    numbers = np.array([float(v) for v in values])
    edges = np.unique(np.quantile(numbers, np.linspace(0, 1, groups + 1)[1:-1]))
    return np.searchsorted(edges, numbers, side="right"), len(edges) + 1


def _check_names(path, header: tuple[str, ...]) -> None:
    """What the pipeline's preflight refuses in a header, refused before anything is drafted."""
    unnamed = [str(i) for i, name in enumerate(header, start=1) if not name]
    if unnamed:
        raise LabelRefused(f"{path}: column(s) {', '.join(unnamed)} of the header have no name "
                           "(a trailing ',' on the header line?); name them or drop them")
    seen: dict[str, int] = {}
    for name in header:
        seen[name] = seen.get(name, 0) + 1
    twice = [name for name, n in seen.items() if n > 1]
    if twice:
        raise LabelRefused(f"{path}: the header names column(s) {', '.join(twice)} more than "
                           "once; rename them")


def _header(path: str | Path) -> tuple[str, ...]:
    from components.ingest import csv_format

    return csv_format.inspect(path).header


def _class_ids(task: Task, table: TableSample, column_type) -> dict[str, int]:
    """The label's raw CSV text -> its class id (numbers are spelled as the Transform spells
    them: task.class_text)."""
    ids = {c: i for i, c in enumerate(task.classes)}
    return {raw: ids[task_rules.class_text(raw, column_type)] for raw in table.counts}
