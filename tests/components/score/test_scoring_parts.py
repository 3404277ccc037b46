"""The parts of `make score` and of drift between drops, each on small data (no pipeline run)."""
from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import random
import shutil

import pytest
import yaml

from conftest import DATA
from components.contract import suite_loading
from components.ingest import csv_format
from components.ingest.column_types import ColumnType
from components.score import drift, drift_draft, scoring_suite, serving_schema
from components.score.schema_types import ROW_KEY, output_column, schema_types
from pipeline.config.dataset_spec import SpecError, load_spec
from pipeline.inputs import csv_preflight

PENGUINS = DATA / "penguins"


@pytest.fixture
def spec():
    return load_spec(PENGUINS / "spec.yaml")


def _schema(spec):
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse(spec.schema_path.read_text(), schema_pb2.Schema())


def test_the_scoring_suite_leaves_out_the_label_the_row_count_and_the_columns(spec):
    raw = json.loads(suite_loading.suite_path(spec).read_text())
    kept = scoring_suite.scoring_suite(raw, spec.label)["expectations"]
    assert kept and len(kept) < len(raw["expectations"])
    assert not [e for e in kept if (e.get("kwargs") or {}).get("column") == "species"]
    assert not [e for e in kept if e["type"] in suite_loading.ROW_COUNT_TYPES
                + suite_loading.TABLE_SHAPE_TYPES]
    # Every other expectation stays, and the result is a suite the loader accepts.
    others = [e for e in raw["expectations"] if scoring_suite.applies_to_scoring(e, "species")]
    assert kept == others
    suite_loading.parse_suite(scoring_suite.scoring_suite(raw, spec.label), spec, "scoring")
    # A column the model does not read may be absent from a file to score: its checks go too.
    header = [c for c in spec.column_names if c not in ("species", "sex")]
    without = scoring_suite.scoring_suite(raw, spec.label, header)["expectations"]
    assert without == [e for e in kept if (e.get("kwargs") or {}).get("column") != "sex"]
    # Nor does a column no stage reads (role ignore), present or not.
    unread = scoring_suite.scoring_suite(raw, spec.label, None, ("island",))["expectations"]
    assert unread == [e for e in kept if (e.get("kwargs") or {}).get("column") != "island"]


def test_a_column_no_stage_reads_is_text_with_nothing_to_meet_when_scoring(spec):
    """`role: ignore` on year: the file to score may hold anything there; the ingestion
    writes it as text and the SERVING schema asks nothing of it."""
    import dataclasses

    from tensorflow_metadata.proto.v0 import schema_pb2

    ignored = dataclasses.replace(spec, features=tuple(
        dataclasses.replace(f, role="ignore") if f.name == "year" else f
        for f in spec.features))
    assert ignored.unread_columns == ("year",)
    header = [c for c in spec.column_names if c != "species"]
    derived = serving_schema.serving_schema(_schema(spec), ignored, header)
    year = next(f for f in derived.feature if f.name == "year")
    assert year.type == schema_pb2.BYTES and not year.HasField("presence")
    assert not year.HasField("value_count") and year.WhichOneof("domain_info") is None
    # Not described when scoring (its statistics were 10 of 17.5 s at 1.5M taxi rows as text),
    # hence not expected in the SERVING environment.
    assert serving_schema.SERVING in year.not_in_environment
    assert serving_schema.statistics_columns(header, ignored.unread_columns) == [
        c for c in header if c != "year"] + [ROW_KEY]
    types = serving_schema.column_types(_schema(spec), header, ignored.unread_columns)
    assert types["year"] == "STRING" and types["bill_length_mm"] == "FLOAT" and "island" in types


@pytest.mark.parametrize("with_label", [False, True])
def test_the_serving_schema_requires_the_label_only_where_the_file_has_it(spec, with_label):
    import pandas as pd
    import tensorflow_data_validation as tfdv

    from components.score.serving_schema import SERVING, TRAINING, serving_schema

    frame = pd.read_csv(spec.csv_path, dtype={c: str for c in ("year",)})
    frame["year"] = frame["year"].astype(int)
    for name in ("flipper_length_mm", "body_mass_g"):  # INT in the schema, as ExampleGen types
        frame[name] = frame[name].astype("Int64")
    if not with_label:
        frame = frame.drop(columns=["species"])
    frame[ROW_KEY] = range(len(frame))
    schema = serving_schema(_schema(spec), spec, list(frame.columns))
    assert list(schema.default_environment) == [TRAINING, SERVING]
    label = tfdv.get_feature(schema, "species")
    assert (SERVING in label.not_in_environment) == (not with_label)
    assert list(tfdv.get_feature(schema, ROW_KEY).not_in_environment) == [TRAINING]
    anomalies = tfdv.validate_statistics(tfdv.generate_statistics_from_dataframe(frame),
                                         schema, environment=SERVING)
    assert "species" not in anomalies.anomaly_info
    assert ROW_KEY not in anomalies.anomaly_info


def test_drift_compares_text_columns_by_l_infinity_and_numbers_by_quantile_js(spec, tmp_path):
    from tensorflow_metadata.proto.v0 import schema_pb2

    text = (PENGUINS / "spec.yaml").read_text() + (
        "drift:\n  jensen_shannon: 0.2\n  critical: [island]\n  columns: {body_mass_g: 0.3}\n")
    shutil.copytree(PENGUINS, tmp_path / "penguins")
    (tmp_path / "penguins" / "spec.yaml").write_text(text)
    spec = load_spec(tmp_path / "penguins" / "spec.yaml")
    columns = drift.checked_columns(spec, _schema(spec))
    assert columns == {"island": "l_infinity", "bill_length_mm": "jensen_shannon",
                       "bill_depth_mm": "jensen_shannon", "flipper_length_mm": "jensen_shannon",
                       "body_mass_g": "jensen_shannon", "sex": "l_infinity",
                       "year": "jensen_shannon",  # an integer code: its statistics are numeric
                       "species": "l_infinity"}  # the label: its class mix
    # A time (`time: true`: a year, a timestamp) moves with every new drop: not compared.
    timed = dataclasses.replace(spec, features=tuple(
        dataclasses.replace(f, type="int", time=True) if f.name == "year" else f
        for f in spec.features))
    assert set(drift.checked_columns(timed, _schema(spec))) == set(columns) - {"year"}
    config = drift.distribution_config(spec, columns, row_count_change=0.5)
    by_name = {f.path.step[0]: f.distribution_comparator for f in
               config.default_slice_config.feature}
    assert by_name["island"].infinity_norm.threshold == pytest.approx(0.1)
    assert by_name["bill_length_mm"].jensen_shannon_divergence.threshold == pytest.approx(0.2)
    assert by_name["body_mass_g"].jensen_shannon_divergence.threshold == pytest.approx(0.3)
    assert by_name["year"].jensen_shannon_divergence.source.type == \
        schema_pb2.HistogramSelection.QUANTILES
    bounds = config.default_slice_config.num_examples_comparator
    assert (bounds.min_fraction_threshold, bounds.max_fraction_threshold) == (0.5, 1.5)
    assert spec.drift.critical == ("island",)
    # The label is compared where the file has it (a training drop always does).
    header = [name for name in spec.column_names if name != "species"]
    assert "species" not in drift.checked_columns(spec, _schema(spec), header)


@pytest.mark.parametrize("block, message", [
    ({"jensen_shannon": 1.5}, "drift.jensen_shannon must be a number from 0 to 1"),
    ({"critical": ["tips"]}, "'tips' is not a feature column or the label"),
    ({"columns": {"colour": 0.2}}, "'colour' is not a feature column or the label"),
    ({"threshold": 0.1}, "drift: unknown key(s) ['threshold']"),
])
def test_a_bad_drift_block_is_refused_naming_the_field(tmp_path, block, message):
    raw = yaml.safe_load((PENGUINS / "spec.yaml").read_text())
    raw["drift"] = block
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError) as error:
        load_spec(path, check_csv=False)
    assert message in str(error.value)


def test_the_drafted_drift_block_loads_and_sits_above_the_sampling_noise(spec, tmp_path):
    noise = {"fare": ("jensen_shannon", 0.05), "trip_miles": ("jensen_shannon", 0.01),
             "company": ("l_infinity", 0.4)}
    lines = drift_draft.block_lines(noise, "data.csv")
    block = yaml.safe_load("\n".join(lines))["drift"]
    assert block["columns"] == {"fare": 0.15, "company": 1.0}  # 3x the noise, at most 1
    assert block["jensen_shannon"] == 0.1 and block["critical"] == []
    # Measured on the data, and accepted by the spec loader.
    measured = drift_draft.measure_noise(spec)
    assert set(measured) == set(drift.checked_columns(spec, _schema(spec)))
    text = (PENGUINS / "spec.yaml").read_text() + "\n".join(
        drift_draft.block_lines(measured)) + "\n"
    shutil.copytree(PENGUINS, tmp_path / "penguins")
    (tmp_path / "penguins" / "spec.yaml").write_text(text)
    loaded = load_spec(tmp_path / "penguins" / "spec.yaml").drift
    for column, (comparator, value) in measured.items():
        assert loaded.threshold(column, comparator) >= min(1.0, value * 3) - 0.01


def test_the_ingestion_widens_a_column_to_the_schema_type_and_refuses_to_narrow(tmp_path):
    from components.ingest.executor import forced_types

    path = tmp_path / "new.csv"
    path.write_text("a,b,c\n1,2,x\n")
    fmt = csv_format.inspect(path)
    found = [ColumnType.INT, ColumnType.INT, ColumnType.STRING]
    assert forced_types(fmt, found, {"a": "FLOAT", "b": "STRING"}) == [
        ColumnType.FLOAT, ColumnType.STRING, ColumnType.STRING]
    with pytest.raises(ValueError) as error:
        forced_types(fmt, found, {"c": "FLOAT"})
    assert str(path) in str(error.value) and "column 'c' holds text" in str(error.value)


def test_predictions_join_back_to_the_rows_in_file_order(tmp_path):
    import numpy as np
    import tensorflow as tf

    from components.ingest.range_writer import ROW_KEY_RANGE
    from components.score import writer

    source = tmp_path / "new.csv"
    rows = [["a, quoted", "1.50", ""], ['say "hi"', "2", "x"], ["plain", "", "y"]]
    with open(source, "w", newline="") as f:
        csv.writer(f).writerows([["name", "value", "note"], *rows])
    probabilities = {0: [0.9, 0.1], 1: [0.2, 0.8], 2: [0.6, 0.4]}
    keys = {0: 0, 1: 1, 2: ROW_KEY_RANGE}  # the third row is the first of a second range
    order = [2, 0, 1]  # BulkInferrer writes in no particular order
    random.Random(0).shuffle(order)
    record_file = tmp_path / "examples.gz"
    with tf.io.TFRecordWriter(str(record_file), "GZIP") as out:
        for i in order:
            example = tf.train.Example()
            example.features.feature[ROW_KEY].int64_list.value.append(keys[i])
            example.features.feature[output_column("binary")].float_list.value.extend(
                probabilities[i])
            out.write(example.SerializeToString())
    target = tmp_path / "predictions.csv"
    written = writer.write_predictions(str(source), [str(record_file)], str(target),
                                       ["no", "yes"], "binary")
    assert written == 3
    with open(target, newline="") as f:
        got = list(csv.reader(f))
    assert got[0] == ["name", "value", "note", "prediction", "probability_no", "probability_yes"]
    assert [r[:3] for r in got[1:]] == rows  # cells as the file had them, quoting kept valid
    assert [r[3] for r in got[1:]] == ["no", "yes", "no"]
    np.testing.assert_allclose([[float(r[4]), float(r[5])] for r in got[1:]],
                               [probabilities[i] for i in range(3)], atol=1e-7)


def test_prediction_columns_never_take_a_name_the_file_uses():
    from components.score.writer import prediction_columns

    assert prediction_columns(["prediction", "x"], ["a", "b"]) == [
        "prediction_", "probability_a", "probability_b"]


def test_the_scoring_preflight_allows_a_missing_label_and_names_bad_columns(spec, tmp_path):
    header = "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year"
    good = tmp_path / "good.csv"
    good.write_text(header + "\nDream,40.1,18.0,190,3800,male,2008\n")
    integers = [n for n, t in schema_types(spec.schema_path).items() if t == "INT"]
    csv_preflight.check_scoring_csv(spec.with_csv(good), integers, reserved=(ROW_KEY,))
    for name, text, column in [
        ("reserved.csv", header + f",{ROW_KEY}\nDream,40.1,18.0,190,3800,male,2008,1\n", ROW_KEY),
        ("half.csv", header + "\nDream,40.1,18.0,190.5,3800,male,2008\n", "flipper_length_mm"),
        ("nosex.csv", header.replace(",sex", "") + "\nDream,40.1,18.0,190,3800,2008\n", "sex"),
    ]:
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(csv_preflight.InputError) as error:
            csv_preflight.check_scoring_csv(spec.with_csv(path), integers, reserved=(ROW_KEY,))
        assert str(path) in str(error.value) and f"'{column}'" in str(error.value)
    # A column named in other case: the refusal says which one to rename.
    path = tmp_path / "case.csv"
    path.write_text(header.replace(",sex", ",Sex") + "\nDream,40.1,18.0,190,3800,male,2008\n")
    with pytest.raises(csv_preflight.InputError, match="column 'sex' is missing: the model "
                       "reads it; the file has 'Sex': rename it 'sex'"):
        csv_preflight.check_scoring_csv(spec.with_csv(path), integers, reserved=(ROW_KEY,))


def test_a_scored_file_is_published_whole_under_a_new_timestamp(tmp_path):
    from pipeline.config.settings import Settings
    from pipeline.runners import scores_folder

    settings = Settings(dataset="penguins", output_root=tmp_path)
    scored = tmp_path / "scored.csv"
    scored.write_text("a,prediction\n1,x\n")
    now = datetime.datetime(2026, 1, 2, 3, 4, 5)
    first = scores_folder.publish(settings, scored, now)
    second = scores_folder.publish(settings, scored, now)
    assert first == settings.output_dir / "scores" / "2026-01-02T03-04-05" / "predictions.csv"
    assert second.parent.name == "2026-01-02T03-04-05-2"
    assert first.read_text() == second.read_text() == scored.read_text()
    assert sorted(p.name for p in (settings.output_dir / "scores").iterdir()) == [
        "2026-01-02T03-04-05", "2026-01-02T03-04-05-2"]  # no staging folder left
    with first.open("a") as edited:  # a user's edit changes that file alone
        edited.write("tampered,row\n")
    assert second.read_text() == scored.read_text() == "a,prediction\n1,x\n"
    assert scored.stat().st_nlink == 1


def test_a_regression_prediction_is_one_number_per_row(tmp_path):
    import tensorflow as tf

    from components.score import writer

    source = tmp_path / "trips.csv"
    source.write_text("trip_miles,company\n1.5,A\n,B\n")
    record_file = tmp_path / "examples.gz"
    with tf.io.TFRecordWriter(str(record_file), "GZIP") as out:
        for key, value in ((1, 7.25), (0, 12.5)):
            example = tf.train.Example()
            example.features.feature[ROW_KEY].int64_list.value.append(key)
            example.features.feature[output_column("regression")].float_list.value.append(value)
            out.write(example.SerializeToString())
    target = tmp_path / "predictions.csv"
    assert writer.write_predictions(str(source), [str(record_file)], str(target), [],
                                    "regression") == 2
    assert target.read_text().splitlines() == [
        "trip_miles,company,prediction", "1.5,A,12.5", ",B,7.25"]


def test_a_drift_line_names_the_column_the_measure_and_the_threshold():
    line = drift.drift_line({"column": "fare", "comparator": "jensen_shannon", "value": 0.3123,
                             "threshold": 0.1})
    assert line == "drift: fare Jensen–Shannon 0.31 > 0.10"
    # Never a value printed equal to its threshold, nor below it.
    close = drift.drift_line({"column": "island", "comparator": "l_infinity", "value": 0.1004,
                              "threshold": 0.1}, critical=True)
    assert close == "drift: island L-infinity 0.1004 > 0.1000 (critical)"


def test_the_scoring_preflight_names_the_line_of_an_empty_required_cell_or_a_bad_label(
        spec, tmp_path):
    """What TFDV would refuse later without a line (a value missing where the schema requires
    one; a label cell empty or not a class) is refused with the file, column and line; a column
    the schema lets be missing, and a file without the label, are scored."""
    from components.score.schema_types import required_columns

    required = required_columns(spec.schema_path)
    assert "island" in required and "sex" not in required  # penguins has empty sex cells
    header = "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year"
    row = "Dream,40.1,18.0,190,3800,male,2008"
    cases = {
        "island.csv": (header + f"\n{row}\n,40.1,18.0,190,3800,male,2008\n",
                       "column 'island' is empty on line 3"),
        "label_gap.csv": (header + f",species\n{row},Adelie\n{row},\n",
                          "label 'species' is empty on line 3"),
        "label_new.csv": (header + f",species\n{row},Adelie\n{row},Emperor\n",
                          "label 'species' holds 'Emperor' on line 3"),
    }
    for name, (text, said) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(csv_preflight.InputError) as error:
            csv_preflight.check_scoring_csv(spec.with_csv(path), required=required)
        assert str(error.value).startswith(f"{path}: ") and said in str(error.value), name
    scored = tmp_path / "scored.csv"  # empty where the schema allows it; a label on every row
    scored.write_text(header + f",species\n{row},Adelie\nDream,40.1,18.0,190,3800,,2008,Gentoo\n")
    csv_preflight.check_scoring_csv(spec.with_csv(scored), required=required)


def test_required_columns_are_those_the_schema_wants_in_every_row(tmp_path):
    from components.score.schema_types import ROW_KEY as KEY
    from components.score.schema_types import required_columns

    schema = tmp_path / "schema.pbtxt"
    schema.write_text(
        'feature { name: "always" type: FLOAT value_count { min: 1 max: 1 } }\n'
        'feature { name: "shaped" type: FLOAT shape { dim { size: 1 } } }\n'
        'feature { name: "present" type: BYTES presence { min_fraction: 1.0 min_count: 1 } }\n'
        'feature { name: "maybe" type: FLOAT value_count { min: 0 max: 1 } }\n'
        'feature { name: "unsaid" type: BYTES }\n'
        f'feature {{ name: "{KEY}" type: INT value_count {{ min: 1 max: 1 }} }}\n')
    assert required_columns(schema) == ["always", "shaped"]


def test_a_label_cell_is_a_class_as_text_or_as_the_same_number():
    assert csv_preflight._is_class("1.0", ("0", "1"))
    assert csv_preflight._is_class("Adelie", ("Adelie", "Gentoo"))
    assert not csv_preflight._is_class("2", ("0", "1"))
    assert not csv_preflight._is_class("adelie", ("Adelie", "Gentoo"))


def test_the_serving_schema_allows_as_many_unseen_values_as_the_contract(spec):
    """A column with a value list lets the contract's `mostly` share be new values (TFDV's
    default allows none: one new island among 500 rows stopped the file); a lower share the
    committed schema already allows is kept; other columns are untouched."""
    header = [c for c in spec.column_names if c != "species"]
    derived = serving_schema.serving_schema(_schema(spec), spec, header,
                                            {"island": 0.95, "bill_length_mm": 0.95})
    by_name = {f.name: f for f in derived.feature}
    assert by_name["island"].distribution_constraints.min_domain_mass == pytest.approx(0.95)
    assert not by_name["bill_length_mm"].HasField("distribution_constraints")  # no value list
    committed = _schema(spec)
    next(f for f in committed.feature if f.name == "island") \
        .distribution_constraints.min_domain_mass = 0.9
    relaxed = serving_schema.serving_schema(committed, spec, header, {"island": 0.95})
    assert next(f for f in relaxed.feature if f.name == "island") \
        .distribution_constraints.min_domain_mass == pytest.approx(0.9)
    raw = json.loads(suite_loading.suite_path(spec).read_text())
    mostly = scoring_suite.in_set_mostly(scoring_suite.scoring_suite(raw, spec.label))
    assert mostly.get("island") is not None and "species" not in mostly
