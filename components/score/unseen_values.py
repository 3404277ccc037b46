"""The share of a text column's values that the baseline never had, from TFDV's statistics.

L-infinity (drift.py) reads the largest change in one value's share. In a column of many values
each of which is rare (a city, a store code: more than the schema's value list holds, so no
schema check sees new ones), a file of values the model never saw moves no one share far: 300
cities at a third of a percent each, all replaced by new ones, read an L-infinity of 0.01. Yet
every such row reaches the model as an out-of-vocabulary value. So drift also measures the share
of the compared side's values that are missing from the baseline's, from TFDV's rank
histograms (StatisticsGen keeps up to 1,000 values per column, with their counts).

It is measured only when the baseline's histogram holds every value it saw (its `unique` count
fits in the histogram): past that, a value outside it may be one of the baseline's rarer ones.
The compared side's values beyond its own histogram are counted as seen, so the share is a lower
bound there. Reading protos only: no TFDV or TensorFlow import (the gate's task does without).
"""
from __future__ import annotations

from typing import Optional

UNSEEN = "unseen"


def _text_stats(statistics, column: str):
    """The column's StringStatistics in one split's DatasetFeatureStatisticsList, or None."""
    for feature in statistics.datasets[0].features:
        if ".".join(feature.path.step) == column or feature.name == column:
            return feature.string_stats if feature.HasField("string_stats") else None
    return None


def unseen_share(baseline, compared, column: str) -> Optional[float]:
    """The share of `compared`'s values of `column` that `baseline` never had (both: one
    split's statistics); None when it cannot be told (see the module docstring)."""
    known, new = _text_stats(baseline, column), _text_stats(compared, column)
    if known is None or new is None:
        return None
    known_values = {b.label for b in known.rank_histogram.buckets}
    if not known_values or known.unique > len(known_values):
        return None
    buckets = new.rank_histogram.buckets
    total = max(sum(b.sample_count for b in buckets), new.common_stats.tot_num_values)
    if total <= 0:
        return None
    return sum(b.sample_count for b in buckets if b.label not in known_values) / total
