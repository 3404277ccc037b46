"""preprocessing_fn through tf.Transform's Beam implementation on a few in-memory rows."""
from __future__ import annotations

import json
import tempfile

import numpy as np
import pytest

from pipeline.config.dataset_spec import DatasetSpec, Feature

SPEC = DatasetSpec(
    name="toy", csv_path=None, task="multiclass", label="kind", classes=("a", "b", "c"),
    features=(
        Feature("size", "float", buckets=2),
        Feature("count", "int"),
        Feature("color", "categorical", oov_buckets=1),
        Feature("hour", "categorical_int"),
        Feature("noise", "float", role="ignore"),
        Feature("kind", "categorical", role="label"),
    ),
)
# Rows as TFX reads CSV cells: every column is a VarLen feature, an empty cell is an empty list.
TRAIN = [
    {"size": [1.0], "count": [10], "color": [b"red"], "hour": [5], "noise": [0.0], "kind": [b"a"]},
    {"size": [3.0], "count": [20], "color": [b"red"], "hour": [5], "noise": [0.0], "kind": [b"b"]},
    {"size": [], "count": [30], "color": [b"blue"], "hour": [7], "noise": [0.0], "kind": [b"c"]},
    {"size": [5.0], "count": [40], "color": [], "hour": [], "noise": [0.0], "kind": [b"a"]},
]
TEST = [
    {"size": [], "count": [25], "color": [b"green"], "hour": [5], "noise": [0.0],
     "kind": [b"zebra"]},
]


FEATURE_SPEC = {"size": "float", "count": "int", "color": "string", "hour": "int", "noise": "float",
                "kind": "string"}


def _transform(spec: DatasetSpec, feature_types: dict, train: list, test: list):
    """preprocessing_fn through tf.Transform's Beam implementation; rows sorted by `count_xf`."""
    import apache_beam as beam
    import tensorflow as tf
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    from components.transform.preprocessing import preprocessing_fn

    dtypes = {"float": tf.float32, "int": tf.int64, "string": tf.string}
    feature_spec = {name: tf.io.VarLenFeature(dtypes[kind]) for name, kind in feature_types.items()}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(feature_spec))
    config = {"spec": spec.to_config()}

    def collect(name):
        return (f"json {name}" >> beam.Map(lambda row: json.dumps(
                    {k: float(v) for k, v in row.items()}))
                | f"write {name}" >> beam.io.WriteToText(f"{tmp}/{name}", shard_name_template=""))

    def read(name):
        with open(f"{tmp}/{name}") as f:
            return [json.loads(line) for line in f]

    with tempfile.TemporaryDirectory() as tmp:
        with beam.Pipeline() as p, tft_beam.Context(temp_dir=tmp, force_tf_compat_v1=False):
            train_rows = p | "train" >> beam.Create(train)
            test_rows = p | "test" >> beam.Create(test)
            (train_out, _), transform_fn = (train_rows, metadata) | \
                tft_beam.AnalyzeAndTransformDataset(lambda inputs: preprocessing_fn(inputs, config))
            test_out, _ = ((test_rows, metadata), transform_fn) | tft_beam.TransformDataset()
            _ = train_out | collect("train")
            _ = test_out | collect("test")
        # Row order is not guaranteed after Beam; the fixtures' `count` column identifies rows.
        return (sorted(read("train"), key=lambda r: r["count_xf"]),
                sorted(read("test"), key=lambda r: r["count_xf"]))


@pytest.fixture(scope="module")
def transformed():
    return _transform(SPEC, FEATURE_SPEC, TRAIN, TEST)


def _column(rows, key):
    return np.array([row[key] for row in rows], dtype=float)


@pytest.mark.e2e  # tf.Transform's analysis in a real Beam pipeline
def test_numeric_features_are_z_scored_with_missing_imputed_by_the_mean(transformed):
    train, test = transformed
    # size: present values 1, 3, 5 -> mean 3; the missing row becomes 3, then z-scores.
    imputed = np.array([1.0, 3.0, 3.0, 5.0])
    expected = (imputed - imputed.mean()) / imputed.std()
    np.testing.assert_allclose(_column(train, "size_xf"), expected, rtol=1e-5)
    assert _column(train, "size_xf")[2] == pytest.approx(0.0, abs=1e-6)
    assert _column(test, "size_xf")[0] == pytest.approx(0.0, abs=1e-6)
    counts = np.array([10.0, 20.0, 30.0, 40.0])
    np.testing.assert_allclose(_column(train, "count_xf"),
                               (counts - counts.mean()) / counts.std(), rtol=1e-5)


@pytest.mark.e2e  # tf.Transform's analysis in a real Beam pipeline
def test_categorical_features_get_vocabulary_ids_and_unseen_values_an_oov_id(transformed):
    train, test = transformed
    # Vocabulary ordered by frequency: red (2 rows) 0, blue 1. tf.Transform leaves the empty
    # string out of vocabularies, so a missing value shares the OOV bucket (id 2) with 'green',
    # which was never seen in training.
    assert list(_column(train, "color_xf").astype(int)) == [0, 0, 1, 2]
    assert _column(test, "color_xf")[0] == 2
    # An integer category code gets the same treatment: 5 (2 rows) 0, 7 1, missing the OOV id.
    assert list(_column(train, "hour_xf").astype(int)) == [0, 0, 1, 2]
    assert _column(test, "hour_xf")[0] == 0


@pytest.mark.e2e  # tf.Transform's analysis in a real Beam pipeline
def test_bucketized_output_and_ignored_columns(transformed):
    train, test = transformed
    # Two quantile buckets over 1, 3, 3 (the imputed mean), 5: the boundary is 3, and a value at
    # the boundary goes up. The missing size (row 3, and the test row) is bucketed as the mean.
    assert list(_column(train, "size_bucket_xf").astype(int)) == [0, 1, 1, 1]
    assert _column(test, "size_bucket_xf")[0] == 1
    assert "noise_xf" not in train[0]


@pytest.mark.e2e  # tf.Transform's analysis in a real Beam pipeline
def test_label_is_encoded_by_the_spec_class_order_and_unknown_is_minus_one(transformed):
    train, test = transformed
    assert list(_column(train, "kind_xf").astype(int)) == [0, 1, 2, 0]
    assert _column(test, "kind_xf")[0] == -1


@pytest.mark.e2e  # tf.Transform's analysis in a real Beam pipeline
def test_z_scores_stay_exact_for_large_values_with_a_small_spread():
    # Unix timestamps: the one-pass moments (sums of x and x^2 in float64) must not lose the
    # spread to cancellation; NumPy's two-pass z-score of the mean-imputed column is the truth.
    spec = DatasetSpec(name="ts", csv_path=None, task="binary", label="kind", classes=("a", "b"),
                       features=(Feature("stamp", "int"), Feature("count", "int"),
                                 Feature("kind", "categorical", role="label")))
    stamps = [1_400_000_000 + 37 * i for i in range(40)]
    train = [{"stamp": [s] if i % 7 else [], "count": [i], "kind": [b"a" if i % 2 else b"b"]}
             for i, s in enumerate(stamps)]
    rows, _ = _transform(spec, {"stamp": "int", "count": "int", "kind": "string"}, train,
                         train[:1])
    present = np.array([s for i, s in enumerate(stamps) if i % 7], dtype=np.float64)
    imputed = np.array([s if i % 7 else present.mean() for i, s in enumerate(stamps)])
    expected = (imputed - imputed.mean()) / imputed.std()
    np.testing.assert_allclose(_column(rows, "stamp_xf"), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.e2e
def test_a_two_valued_column_is_scaled_to_0_and_1_not_z_scored():
    """An indicator whose 1 is rare would z-score tens of deviations out; a column of two values
    is scaled as its one-hot would be (min 0, max 1; a missing cell at the share of the max),
    float or int, whatever its two values. Three values, or one, keep the z-score."""
    spec = DatasetSpec(
        name="flags", csv_path=None, task="binary", label="kind", classes=("a", "b"),
        features=(Feature("flag", "int"), Feature("code", "float"), Feature("count", "int"),
                  Feature("same", "int"), Feature("kind", "categorical", role="label")))
    flags = [1] + [0] * 18 + [None]
    codes = [2.5 if i % 4 == 0 else -1.5 for i in range(20)]
    three = [i % 3 for i in range(20)]
    rows = [{"flag": [] if f is None else [f], "code": [c], "count": [t], "same": [7],
             "kind": [b"ab"[i % 2:i % 2 + 1]]}
            for i, (f, c, t) in enumerate(zip(flags, codes, three))]
    types = {"flag": "int", "code": "float", "count": "int", "same": "int", "kind": "string"}
    train, _ = _transform(spec, types, rows, rows[:1])
    assert {round(r["code_xf"], 6) for r in train} == {0.0, 1.0}  # -1.5 -> 0, 2.5 -> 1
    flag = sorted(r["flag_xf"] for r in train)
    assert flag[-1] == pytest.approx(1.0) and flag[0] == pytest.approx(0.0)
    assert flag[-2] == pytest.approx(1 / 19, rel=1e-5)  # the missing cell: the mean
    three_xf = np.array(sorted(r["count_xf"] for r in train))
    values = np.array(sorted(three))
    np.testing.assert_allclose(three_xf, (values - values.mean()) / values.std(), rtol=1e-5)
    assert {r["same_xf"] for r in train} == {0.0}  # constant: centred, as before
