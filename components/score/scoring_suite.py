"""The data contract's expectations that apply to a file to score.

A file to score is new rows, not a training set: the label may be absent (and where present, its
class mix is the new data's, not something to gate on), the row count is whatever the file holds,
and its header is checked, column by column, before the run starts (pipeline/inputs/
csv_preflight.py, check_scoring_csv). So the committed suite is kept except for expectations on
the label, on the row count, on the table's columns, and those judged per split (the label's
checks on train and eval).
"""
from __future__ import annotations

import copy

from components.contract.suite_loading import ROW_COUNT_TYPES, TABLE_SHAPE_TYPES


def applies_to_scoring(expectation: dict, label: str) -> bool:
    kwargs = expectation.get("kwargs") or {}
    meta = expectation.get("meta") or {}
    return not (kwargs.get("column") == label or meta.get("per_split")
                or expectation.get("type") in ROW_COUNT_TYPES + TABLE_SHAPE_TYPES)


def scoring_suite(raw_suite: dict, label: str) -> dict:
    """The suite without what does not apply to a file to score (see the module docstring)."""
    suite = copy.deepcopy(raw_suite)
    suite["expectations"] = [e for e in suite.get("expectations", [])
                             if applies_to_scoring(e, label)]
    suite["name"] = f"{suite.get('name') or 'suite'} (scoring)"
    return suite
