"""The spec loader: shipped specs load, and each malformed spec fails with a message naming it."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from conftest import DATA
from pipeline.config.dataset_spec import DatasetSpec, SpecError, load_spec, tf_name, transformed_name

GOOD = {
    "name": "toy",
    "csv": "toy.csv",
    "task": "binary",
    "label": "y",
    "classes": [0, 1],
    "slice_by": "color",
    "features": {"x": {"type": "float"}, "color": {"type": "categorical"},
                 "y": {"type": "int", "role": "label"}},
}


def _write(tmp_path: Path, spec: dict) -> Path:
    (tmp_path / "toy.csv").write_text("x,color,y\n1.0,red,1\n")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _with(**changes) -> dict:
    spec = {**GOOD, **changes}
    return {k: v for k, v in spec.items() if v is not None}


@pytest.mark.parametrize("dataset", ["taxi", "penguins"])
def test_shipped_specs_match_their_csv_and_schema(dataset):
    import tensorflow_data_validation as tfdv

    spec = load_spec(DATA / dataset / "spec.yaml")
    with spec.csv_path.open() as f:
        header = next(csv.reader(f))
    assert list(spec.column_names) == header
    schema = tfdv.load_schema_text(str(spec.schema_path))
    assert {f.name for f in schema.feature} == set(header)
    assert spec.label_feature.role == "label"


def test_taxi_leaves_out_the_leaking_tips_column():
    spec = load_spec(DATA / "taxi" / "spec.yaml")
    assert "tips" not in {f.name for f in spec.model_features}
    assert spec.task == "binary" and spec.classes == ("0", "1")


def test_good_spec_round_trips_through_custom_config(tmp_path):
    spec = load_spec(_write(tmp_path, GOOD))
    again = type(spec).from_config(spec.to_config())
    assert again.features == spec.features and again.classes == ("0", "1")
    assert [f.name for f in again.model_features] == ["x", "color"]


@pytest.mark.parametrize(
    "spec, message",
    [
        (_with(features={"x": {"type": "flaot"}, "y": {"type": "int", "role": "label"}}),
         "feature 'x': unknown type 'flaot' (allowed: float, int, categorical, categorical_int)"),
        (_with(label="z"), "label 'z' is missing from features"),
        (_with(csv="nowhere.csv"), "CSV path not found"),
        (_with(task="ranking"), "unknown task 'ranking'"),
        (_with(classes=[0, 1, 2]), "task 'binary' needs exactly 2 classes, got 3"),
        (_with(classes=["a", "a"]), "'classes' has duplicates"),
        (_with(slice_by="size"), "slice_by 'size' is not one of the features"),
        (_with(features={"x": {"type": "float", "role": "target"},
                         "y": {"type": "int", "role": "label"}}), "unknown role 'target'"),
        (_with(features={"x": {"type": "categorical", "buckets": 4},
                         "y": {"type": "int", "role": "label"}}),
         "buckets only apply to numeric types"),
        (_with(features={"x": {"type": "float"}, "y": {"type": "int"}}),
         "exactly the label 'y' must have role 'label'"),
        (_with(label=None), "missing required key 'label'"),
        (_with(colour="red"), "unknown key(s) ['colour']"),
        (_with(features={"": {"type": "float"}, "y": {"type": "int", "role": "label"}}),
         "a feature has an empty column name"),
        # x's buckets would be the transformed feature x_bucket_xf, which x_bucket also makes.
        (_with(features={"x": {"type": "float", "buckets": 3}, "x_bucket": {"type": "float"},
                         "y": {"type": "int", "role": "label"}}),
         "columns 'x' and 'x_bucket' would both be called 'x_bucket_xf' inside TensorFlow"),
    ],
)
def test_malformed_spec_fails_with_a_clear_message(tmp_path, spec, message):
    path = _write(tmp_path, spec)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_missing_spec_file_is_named(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "absent.yaml")


# What TensorFlow accepts as a Keras layer / name scope and keeps as a signature input name
# (tensorflow/python/framework/tensor.py sanitize_spec_name lower-cases and replaces the rest).
TF_NAME = r"[a-z][a-z0-9_]*"


@pytest.mark.parametrize("column", [
    "mean radius", "worst concave points", "a.b", "x-y", "p/q", "température", "温度", "1st",
    "Size", " padded ", "(%)", "a" * 300,
])
def test_any_column_name_gets_a_deterministic_tf_name(column):
    import re

    name = tf_name(column)
    assert re.fullmatch(TF_NAME, name) and len(name) <= 64
    assert tf_name(column) == name  # the same in every process: a hash, not a counter
    assert re.fullmatch(TF_NAME, transformed_name(column))


def test_plain_names_are_kept_and_case_or_punctuation_twins_stay_apart():
    assert tf_name("trip_miles") == "trip_miles"  # shipped datasets keep their names
    twins = ["size", "Size", "SIZE", "size ", "size.", "size/"]
    assert len({tf_name(c) for c in twins}) == len(twins)


def test_real_world_header_loads(tmp_path):
    features = {"Espèce": {"type": "categorical", "role": "label"},
                "bill length (mm)": {"type": "float", "buckets": 4},
                "Year": {"type": "categorical_int"}, "year": {"type": "float"}}
    spec = load_spec(_write(tmp_path, _with(features=features, label="Espèce",
                                            classes=["a", "b"], slice_by="Year")))
    assert spec.serving_inputs == {c: tf_name(c) for c in list(features)[1:]}


def test_time_is_a_numeric_features_flag_kept_out_of_the_config_when_unset(tmp_path):
    """`time: true` (a year, a timestamp): parsed, refused on a category, and in to_config()
    only when set, so that every spec without it keeps its fingerprint."""
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "data.csv").write_text("year,kind,y\n2001,a,1\n2002,b,0\n")
    base = "name: t\ncsv: data.csv\ntask: binary\nlabel: y\nclasses: [0, 1]\nfeatures:\n"
    (folder / "spec.yaml").write_text(base + "  year: {type: int, time: true}\n"
                                      "  kind: {type: categorical}\n  y: {type: int, role: label}\n")
    spec = load_spec(folder / "spec.yaml")
    assert [f.time for f in spec.features] == [True, False, False]
    features = spec.to_config()["features"]
    assert features[0]["time"] is True and "time" not in features[1]
    assert DatasetSpec.from_config(spec.to_config()).features == spec.features
    (folder / "spec.yaml").write_text(base + "  year: {type: int}\n"
                                      "  kind: {type: categorical, time: true}\n"
                                      "  y: {type: int, role: label}\n")
    with pytest.raises(SpecError, match="time only applies to numeric types"):
        load_spec(folder / "spec.yaml")
