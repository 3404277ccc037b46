"""How far two TFDV statistics of the same columns read apart, measured by TFDV with the
comparators drift uses (drift.py: L-infinity for text columns, Jensen-Shannon over quantile
histograms for numbers) at threshold 0. Two samples of the same data already differ by some of
it: the drift draft measures that between random halves of the CSV (drift_draft.py), the drift
gate between the baseline's own train and eval splits (drift.py). TFDV and TensorFlow are
imported on the call, not with the module: `make init` imports the draft's module."""
from __future__ import annotations

L_INFINITY, JENSEN_SHANNON = "l_infinity", "jensen_shannon"


def set_comparator(comparator, kind: str, threshold: float) -> None:
    """A FeatureComparator (a schema feature's drift_comparator, or DistributionValidator's
    distribution_comparator) as drift compares: L-infinity, or Jensen-Shannon over quantile
    histograms."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    if kind == L_INFINITY:
        comparator.infinity_norm.threshold = threshold
    else:
        comparator.jensen_shannon_divergence.threshold = threshold
        comparator.jensen_shannon_divergence.source.type = \
            schema_pb2.HistogramSelection.QUANTILES


def divergences(first, second, comparators: dict[str, str]) -> dict[str, float]:
    """{column: TFDV's measurement of `second` against `first`} for each column of
    `comparators` ({column: L_INFINITY | JENSEN_SHANNON}) that both statistics hold."""
    import tensorflow_data_validation as tfdv

    schema = tfdv.infer_schema(first)
    asked = {}
    for name, comparator in comparators.items():
        try:
            feature = tfdv.get_feature(schema, name)
        except ValueError:  # empty in every row
            continue
        set_comparator(feature.drift_comparator, comparator, 0.0)
        asked[name] = comparator
    anomalies = tfdv.validate_statistics(second, schema, previous_statistics=first)
    return {".".join(info.path.step): float(info.drift_measurements[0].value)
            for info in anomalies.drift_skew_info
            if ".".join(info.path.step) in asked and info.drift_measurements}
