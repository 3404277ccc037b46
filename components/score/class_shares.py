"""The L-infinity distance between two class mixes of a label whose classes are integers (taxi's
`big_tipper`: 0 and 1), from TFDV's statistics.

Drift compares a classification label by L-infinity, the largest change in one class's share
(drift.py). TFDV computes it from a column's text statistics (its rank histogram); an integer
column has numeric statistics, where TFDV's L-infinity always reads 0 (data-validation#147), and
the Jensen-Shannon divergence over its quantile histograms reads 0.08 for a 0/1 label going
from 3% to 20% ones (under the default threshold 0.1). Its standard histogram (10 equal-width
buckets from the smallest value to the largest) holds each class in a bucket of its own when the
classes span fewer than 10 (a bucket narrower than 1 holds at most one integer, the one nearest
its middle): the classes' counts are then exact. Past that the mix cannot be told, and the
measurement is None. Reading protos only: no TFDV or TensorFlow import (the gate's task does
without).
"""
from __future__ import annotations

from typing import Optional


def _numeric_stats(statistics, column: str):
    """The column's NumericStatistics in one split's DatasetFeatureStatisticsList, or None."""
    for feature in statistics.datasets[0].features:
        if ".".join(feature.path.step) == column or feature.name == column:
            return feature.num_stats if feature.HasField("num_stats") else None
    return None


def class_shares(statistics, column: str) -> Optional[dict[int, float]]:
    """{class: share of the column's values} of an integer column, None when the statistics
    cannot tell (not numeric, no values, or classes spanning 10 or more)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = _numeric_stats(statistics, column)
    if stats is None:
        return None
    standard = statistics_pb2.Histogram.STANDARD
    histogram = next((h for h in stats.histograms if h.type == standard), None)
    buckets = [b for b in (histogram.buckets if histogram else []) if b.sample_count > 0]
    total = sum(b.sample_count for b in buckets)
    if not buckets or total <= 0 or any(b.high_value - b.low_value >= 1 for b in buckets):
        return None
    shares: dict[int, float] = {}
    for b in buckets:
        value = round((b.low_value + b.high_value) / 2)
        shares[value] = shares.get(value, 0.0) + b.sample_count / total
    return shares


def class_l_infinity(baseline, compared, column: str) -> Optional[float]:
    """The largest change in one class's share of an integer column between `baseline` and
    `compared` (one split's statistics each); None when either side cannot tell."""
    before, now = class_shares(baseline, column), class_shares(compared, column)
    if before is None or now is None:
        return None
    return max(abs(now.get(c, 0.0) - before.get(c, 0.0)) for c in {*before, *now})


def is_numeric(statistics, column: str) -> bool:
    """The column has numeric statistics (an integer or float column) in these statistics."""
    return _numeric_stats(statistics, column) is not None
