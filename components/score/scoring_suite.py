"""The data contract's expectations that apply to a file to score.

A file to score is new rows, not a training set: the label may be absent (and where present, its
class mix is the new data's, not something to gate on), the row count is whatever the file holds,
and its header is checked, column by column, before the run starts (pipeline/inputs/
csv_preflight.py, check_scoring_csv). So the committed suite is kept except for expectations on
the label, on the row count, on the table's columns, those judged per split (the label's
checks on train and eval), those on a column the file does not have (columns the model does
not read may be left out of a file to score), and those on a column no stage reads (role
ignore): a file to score may hold anything there.
"""
from __future__ import annotations

import copy

from components.contract.suite_loading import ROW_COUNT_TYPES, TABLE_SHAPE_TYPES


def applies_to_scoring(expectation: dict, label: str, header=None, unread=()) -> bool:
    kwargs = expectation.get("kwargs") or {}
    meta = expectation.get("meta") or {}
    column = kwargs.get("column")
    absent = header is not None and column is not None and column not in header
    return not (column == label or absent or column in unread or meta.get("per_split")
                or expectation.get("type") in ROW_COUNT_TYPES + TABLE_SHAPE_TYPES)


def scoring_suite(raw_suite: dict, label: str, header=None, unread=()) -> dict:
    """The suite without what does not apply to a file to score with this header (see the
    module docstring; header None: every column present), nor to a column no stage reads
    (`unread`: DatasetSpec.unread_columns)."""
    suite = copy.deepcopy(raw_suite)
    suite["expectations"] = [e for e in suite.get("expectations", [])
                             if applies_to_scoring(e, label, header, unread)]
    suite["name"] = f"{suite.get('name') or 'suite'} (scoring)"
    return suite


IN_SET = "expect_column_values_to_be_in_set"


def in_set_mostly(suite: dict) -> dict[str, float]:
    """{column: mostly} of the suite's value-set expectations: the share of a column's values
    the contract wants among the values it lists (serving_schema lets TFDV allow as many
    unseen ones)."""
    found = {}
    for e in suite.get("expectations", []):
        kwargs = e.get("kwargs") or {}
        if e.get("type") == IN_SET and kwargs.get("column") and kwargs.get("mostly") is not None:
            found[kwargs["column"]] = float(kwargs["mostly"])
    return found
