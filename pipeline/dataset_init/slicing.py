"""The slicing column: TFMA reports every metric per value of it beside the overall figure.

Rule: among the feature columns (not ignored, not flagged for review) that are text with
2 to MAX_SLICES (12) distinct values, the one whose rows spread most evenly over its values
(the largest exp(entropy), "effective number of slices": a column that is one value on 90% of
the rows gives one big slice and crumbs), ties to the first in the file; if there is none, the
same among whole-number codes (categorical_int, and two-valued whole numbers, which init drafts
as `int`: column_roles.py; not other `int` columns, amounts); else no slicing. Text first
because its values name their groups (`Credit Card`, `Biscoe`) where codes need a legend.
Mostly-empty columns (half the rows or more) are left out: their biggest slice would be
"missing".
"""
from __future__ import annotations

import collections
from typing import Sequence

import numpy as np

from pipeline.config import dataset_spec as ds
from pipeline.dataset_init.column_roles import ColumnDraft
from pipeline.dataset_init.table_sample import TableSample

MAX_SLICES = 12
MAX_EMPTY = 0.5


def choose(table: TableSample, columns: Sequence[ColumnDraft]) -> tuple[str, str]:
    """(column, reason); ("", reason) when no column fits."""
    for kinds in ((ds.CATEGORICAL,), (ds.CATEGORICAL_INT, ds.INT)):
        best, best_count, best_spread = "", 0, 0.0
        for c in columns:
            if c.role != ds.FEATURE or c.flagged or c.time or c.type not in kinds or \
                    table.empty_share(c.name) >= MAX_EMPTY:
                continue
            counts = collections.Counter(v for v in table.column(c.name) if v != "")
            shares = np.array(list(counts.values())) / max(sum(counts.values()), 1)
            spread = float(np.exp(-(shares * np.log(shares)).sum()))
            # An `int` of more values is an amount (too few rows a value to be codes), not
            # groups: linnerud's Chins (12 values on 20 rows) sliced its 7 eval rows 7 ways.
            amount = c.type == ds.INT and len(counts) != 2
            if 2 <= len(counts) <= MAX_SLICES and not amount and spread > best_spread + 1e-9:
                best, best_count, best_spread = c.name, len(counts), spread
        if best:
            what = "text" if kinds == (ds.CATEGORICAL,) else "whole-number codes"
            return best, (f"metrics per value of this column: {what} with {best_count} values "
                          f"spread as evenly as {best_spread:.1f} equal slices, the most of any "
                          f"such column with 2 to {MAX_SLICES} values")
    return "", (f"no text or code column with 2 to {MAX_SLICES} values: metrics for the whole "
                "eval split only")
