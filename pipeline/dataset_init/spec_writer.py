"""spec.yaml text for a drafted dataset: the format of pipeline/config/dataset_spec.py, with a
comment on every line saying why init chose it, for the person reviewing it.

Names and classes are written bare when YAML reads them back as the same text, and quoted
(JSON-style, which YAML reads) otherwise: spaces, commas, colons, quotes, non-ASCII letters,
`yes`, `null`, `007` all survive. The test loads every draft with load_spec.
"""
from __future__ import annotations

import json
import re
import time

import yaml

from components.score import drift_draft
from pipeline.config import dataset_spec as ds
from pipeline.dataset_init import gate_proposal
from pipeline.dataset_init.draft import DatasetDraft, one_split_warnings

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def scalar(text: str) -> str:
    """text as a YAML scalar that reads back as exactly that string (str() of it, for a
    class)."""
    if (_PLAIN.fullmatch(text) or _NUMBER.fullmatch(text)):
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError:
            loaded = None
        if loaded is not None and not isinstance(loaded, bool) and str(loaded) == text:
            return text
    return json.dumps(text, ensure_ascii=False)


def _comment(text: str) -> str:
    return "  # " + " ".join(text.split())


def render(draft: DatasetDraft, csv_name: str, source: str, drafted_at: float | None = None
           ) -> str:
    table = draft.table
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(drafted_at or time.time()))
    sampled = (f"types from all rows; distinct values, text, leakage and baselines judged on "
               f"a random sample of {table.sample.num_rows:,} rows" if table.sampled else
               "every rule judged on all rows")
    task = draft.task
    lines = [
        f"# Drafted by `make init` on {when} from {source}: {table.rows:,} rows ({sampled}).",
        "# Review every line: its comment says why init chose it (docs/init.md states the",
        "# rules). Change what you know better, then run `make pipeline DATASET=...`.",
        f"name: {scalar(draft.name)}",
        f"description: {json.dumps(f'Drafted from {source} by make init; predict {draft.label}.', ensure_ascii=False)}",
        f"csv: {scalar(csv_name)}",
    ]
    if draft.missing_values:
        lines.append(f"missing_values: [{', '.join(scalar(m) for m in draft.missing_values)}]"
                     + _comment(draft.missing_reason))
    lines += [
        f"task: {task.task}" + _comment(task.reason),
        f"label: {scalar(draft.label)}" + (
            _comment("REVIEW: " + draft.gates.computed_label_note())
            if draft.gates is not None and draft.gates.exact_fit is not None else ""),
    ]
    if task.classes:
        counts = ", ".join(f"{n:,}" for n in task.counts.values())
        warnings = "".join(f"; REVIEW: {w}" for w in one_split_warnings(draft))
        lines.append(f"classes: [{', '.join(scalar(c) for c in task.classes)}]"
                     + _comment(f"rows per class in the file: {counts}{warnings}"))
    if draft.slice_by:
        lines.append(f"slice_by: {scalar(draft.slice_by)}" + _comment(draft.slice_reason))
    else:
        lines.append("# slice_by: none; " + draft.slice_reason)
    gates = draft.gates
    if gates is not None:
        linear = (f"{gates.linear_name} {gates.metric} {gates.linear:.3f}"
                  if gates.linear is not None else "no linear model could be fitted")
        if gates.left_out:
            linear += (f", without the flagged column(s) {', '.join(gates.left_out)} (REVIEW "
                       "below): gates that hold whether they are kept or ignored")
        lines += [
            "gates:" + _comment(
                f"from trivial baselines on the pipeline's own eval split ({gates.eval_rows:,}"
                f" sampled eval rows): {gates.trivial} {gates.metric} {gates.majority:.3f}, "
                f"{linear}"),
            f"  {gates.key}: {gate_proposal.gate_text(gates.minimum)}" + _comment(
                f"{gates.trivial}'s figure plus 80% of the linear model's lift over it: a "
                "model clearly better than trivial is pushed"),
            f"  {gates.change_key}: {gates.max_drop:.3f}" + _comment(
                f"one standard error of the eval {gates.metric.split(' ')[0]}: a retrained "
                "model worse than the champion only by noise still passes"),
        ]
    # The drift thresholds' defaults (issue 25); `make expectations` drafts per-column ones
    # above the data's own sampling noise.
    lines += drift_draft.block_lines({})
    lines.append("features:")
    for c in draft.columns:
        fields = [f"type: {c.type}"]
        if c.role != ds.FEATURE:
            fields.append(f"role: {c.role}")
        if c.buckets:
            fields.append(f"buckets: {c.buckets}")
        if c.time:
            fields.append("time: true")
        lines.append(f"  {scalar(c.name)}: {{{', '.join(fields)}}}" + _comment(c.reason))
    return "\n".join(lines) + "\n"
