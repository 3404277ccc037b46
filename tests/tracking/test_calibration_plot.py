"""Calibration points from TFMA's CalibrationPlot buckets (issue 14, item 4).

TFMA 0.47 writes 1,002 buckets: an underflow bucket [-inf, 0), 1,000 buckets of width 0.001 over
[0, 1) and an overflow bucket [1, +inf), in the JSON form `tfma.load_eval_result` gives (protobuf
JSON names, thresholds of 0 left out, infinities as strings). Each point must be the mean
prediction and observed positive rate of the examples in one bin; empty bins give no point.
"""
from __future__ import annotations

import math

import pytest

from pipeline.tracking import plots

PNG = b"\x89PNG\r\n\x1a\n"


def tfma_buckets(examples: list[tuple[float, float]]) -> list[dict]:
    """The buckets TFMA's CalibrationPlot writes for (prediction, label) pairs of weight 1, in
    the dict form the plots read: every one of the 1,002 buckets, most of them empty."""
    thresholds = [-math.inf] + [i / 1000 for i in range(1001)] + [math.inf]
    sums = [[0.0, 0.0, 0.0] for _ in range(len(thresholds) - 1)]
    for prediction, label in examples:
        if prediction < 0:
            index = 0
        elif prediction >= 1:
            index = len(sums) - 1
        else:
            index = 1 + int(prediction * 1000)
        sums[index][0] += 1.0
        sums[index][1] += label
        sums[index][2] += prediction
    buckets = []
    for (lower, upper), (n, labels, predictions) in zip(zip(thresholds, thresholds[1:]), sums):
        bucket = {"numWeightedExamples": n, "totalWeightedLabel": labels,
                  "totalWeightedRefinedPrediction": predictions}
        for name, value in (("lowerThresholdInclusive", lower),
                            ("upperThresholdExclusive", upper)):
            if value:  # proto3 JSON leaves out fields equal to zero
                bucket[name] = value if math.isfinite(value) else (
                    "Infinity" if value > 0 else "-Infinity")
        buckets.append(bucket)
    return buckets


# Most rows scored low but above zero, as in the taxi eval set (4 in TFMA's first bucket
# [0, 0.001), whose lower threshold is left out of the JSON); nothing in 0.1-0.3 or 0.5-0.9.
EXAMPLES = [(0.0004, 0.0)] * 4 + [(0.0025, 0.0)] * 3 + [(0.0047, 0.0)] * 2 + [(0.0061, 1.0)] + \
           [(0.35, 0.0), (0.45, 1.0)] + [(0.95, 1.0), (1.0, 1.0)]


def test_lowest_bin_point_is_at_its_mean_prediction_not_at_zero():
    points = plots.calibration_points(tfma_buckets(EXAMPLES))
    mean, rate, n = points[0]
    assert mean == pytest.approx((4 * 0.0004 + 3 * 0.0025 + 2 * 0.0047 + 0.0061) / 10)
    assert mean > 0
    assert rate == pytest.approx(0.1)
    assert n == 10


def test_empty_bins_and_empty_edge_buckets_give_no_point():
    buckets = tfma_buckets(EXAMPLES)
    assert buckets[0]["lowerThresholdInclusive"] == "-Infinity"  # TFMA's underflow bucket
    assert "upperThresholdExclusive" not in buckets[0]  # its upper threshold, 0, left out
    assert buckets[1].keys() >= {"upperThresholdExclusive"} and \
        "lowerThresholdInclusive" not in buckets[1]
    points = plots.calibration_points(buckets)
    assert [round(p[0], 6) for p in points] == [0.00246, 0.35, 0.45, 0.975]
    assert [(p[1], p[2]) for p in points] == [(0.1, 10.0), (0.0, 1.0), (1.0, 1.0), (1.0, 2.0)]
    assert (0.0, 0.0) not in [(p[0], p[1]) for p in points]


def test_only_empty_buckets_give_no_points():
    assert plots.calibration_points(tfma_buckets([])) == []


def test_overflow_bucket_joins_the_top_bin_and_underflow_the_lowest():
    # A prediction of exactly 1.0 lands in TFMA's overflow bucket [1, inf); a negative one
    # (a model whose output is not a probability) in its underflow bucket [-inf, 0).
    points = plots.calibration_points(tfma_buckets([(1.0, 1.0), (-0.5, 0.0), (0.05, 1.0)]))
    assert points == [(pytest.approx(-0.225), 0.5, 2.0), (1.0, 1.0, 1.0)]


@pytest.mark.parametrize("bins", [1, 2, 5, 10, 20])
def test_regrouping_drops_no_example(bins):
    examples = [((i * 37 % 1000) / 1000, float(i % 3 == 0)) for i in range(400)]
    examples += [(1.0, 1.0), (-0.01, 0.0), (0.0, 0.0)]
    points = plots.calibration_points(tfma_buckets(examples), bins)
    assert sum(n for _, _, n in points) == len(examples)
    assert sum(rate * n for _, rate, n in points) == pytest.approx(
        sum(label for _, label in examples))
    assert sum(mean * n for mean, _, n in points) == pytest.approx(
        sum(prediction for prediction, _ in examples))
    assert len(points) <= bins


def test_each_point_lies_inside_its_bin():
    examples = [(p / 1000, float(p > 500)) for p in range(0, 1000, 7)]
    for mean, _, _ in plots.calibration_points(tfma_buckets(examples), bins=10):
        assert 0 <= mean < 1
    means = [p[0] for p in plots.calibration_points(tfma_buckets(examples), bins=10)]
    assert [int(m * 10) for m in means] == list(range(10))


def test_weighted_buckets_and_fields_left_out_read_as_zero():
    buckets = [{"lowerThresholdInclusive": "-Infinity"},  # empty: every value left out
               {"upperThresholdExclusive": 0.001, "numWeightedExamples": 4.0},  # predictions 0
               {"lowerThresholdInclusive": 0.25, "upperThresholdExclusive": 0.251,
                "numWeightedExamples": 2.5, "totalWeightedLabel": 1.0,
                "totalWeightedRefinedPrediction": 0.625}]
    assert plots.calibration_points(buckets, bins=4) == [(0.0, 0.0, 4.0), (0.25, 0.4, 2.5)]


def test_points_match_tfmas_own_buckets():
    """The same (prediction, label) pairs through TFMA's histogram combiner, its rebinning
    to the plot's 1,000 buckets and its proto, read back as load_eval_result does."""
    np = pytest.importorskip("numpy")
    json_format = pytest.importorskip("google.protobuf.json_format")
    histogram_lib = pytest.importorskip("tensorflow_model_analysis.metrics.calibration_histogram")
    plot_lib = pytest.importorskip("tensorflow_model_analysis.metrics.calibration_plot")
    metric_types = pytest.importorskip("tensorflow_model_analysis.metrics.metric_types")

    key = metric_types.PlotKey(name="histogram")
    combiner = histogram_lib._CalibrationHistogramCombiner(
        key, None, None, None, False, histogram_lib.DEFAULT_NUM_BUCKETS, 0.0, 1.0, True, True)
    accumulator = combiner.create_accumulator()
    for prediction, label in EXAMPLES:
        accumulator = combiner.add_input(accumulator, metric_types.StandardMetricInputs(
            labels=np.array([label]), predictions=np.array([prediction]),
            example_weights=np.array([1.0])))
    histogram = combiner.extract_output(accumulator)[key]
    computations = plot_lib._calibration_plot()
    plot_key = computations[-1].keys[0]
    (proto,) = computations[-1].result({computations[0].keys[-1]: histogram}).values()
    assert plot_key.name == plot_lib.CALIBRATION_PLOT_NAME
    buckets = json_format.MessageToDict(proto)["buckets"]

    assert len(buckets) == 1002
    assert buckets[0]["lowerThresholdInclusive"] == "-Infinity"
    assert buckets[-1]["upperThresholdExclusive"] == "Infinity"
    expected = plots.calibration_points(tfma_buckets(EXAMPLES))
    got = plots.calibration_points(buckets)
    assert [tuple(pytest.approx(v) for v in p) for p in expected] == got


def test_chart_is_written_for_one_class_and_for_several(tmp_path):
    one = plots.calibration({"1": tfma_buckets(EXAMPLES)}, tmp_path / "one.png")
    several = plots.calibration({name: tfma_buckets(EXAMPLES) for name in ("a", "b", "c")},
                                tmp_path / "several.png")
    assert one.read_bytes().startswith(PNG) and several.read_bytes().startswith(PNG)


def test_point_near_the_frame_is_labelled_with_its_coordinates():
    assert plots._point_note(0.0036, 0.1, 10) == "10 at (0.0036, 0.1)"
    assert plots._point_note(0.45, 0.5, 94) == "94"
