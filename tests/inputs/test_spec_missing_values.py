"""The spec's `missing_values:` (cells read as missing besides the empty one): parsed and checked,
part of the spec's config and of the ExampleGen's cache key when set, and honoured the same way by
every reader of the CSV: the preflight, the contract's frames, `make predict`'s rows, the
ExampleGen's batches. Without it nothing changes: `NA` is text."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from components.contract import example_frames
from components.ingest import csv_format, csv_ranges
from pipeline.config.dataset_spec import SpecError, load_spec
from pipeline.inputs.csv_preflight import InputError, check_csv, check_scoring_csv
from pipeline.tracking import registry

ROWS = ("size,count,colour,label\n"
        "1.5,3,red,1\n"
        "NA,NA,NA,0\n"
        '"NA",7,blue,1\n'
        "2.25,,NA,0\n"
        "?,4,green,1\n")


def _dataset(tmp_path: Path, missing_values=None, rows: str = ROWS, colour="categorical",
             count="int") -> Path:
    folder = tmp_path / "toy"
    folder.mkdir(exist_ok=True)
    (folder / "data.csv").write_text(rows, encoding="utf-8")
    spec = {"name": "toy", "csv": "data.csv", "task": "binary", "label": "label",
            "classes": [0, 1],
            "features": {"size": {"type": "float"}, "count": {"type": count},
                         "colour": {"type": colour}, "label": {"type": "int", "role": "label"}}}
    if missing_values is not None:
        spec["missing_values"] = missing_values
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder / "spec.yaml"


# ---- the spec --------------------------------------------------------------------------------

def test_the_list_loads_and_goes_into_the_config_only_when_set(tmp_path):
    plain = load_spec(_dataset(tmp_path))
    assert plain.missing_values == () and "missing_values" not in plain.to_config()
    declared = load_spec(_dataset(tmp_path, ["NA", "?"]))
    assert declared.missing_values == ("NA", "?")
    assert declared.to_config()["missing_values"] == ["NA", "?"]
    assert declared.fingerprint() != plain.fingerprint()
    assert type(declared).from_config(declared.to_config()).missing_values == ("NA", "?")
    assert declared.with_csv(tmp_path / "other.csv").missing_values == ("NA", "?")


def test_yaml_written_markers_read_back_as_strings(tmp_path):
    path = _dataset(tmp_path)
    text = path.read_text() + 'missing_values: [NA, "null", "?", "-", N/A, -999]\n'
    path.write_text(text)
    assert load_spec(path).missing_values == ("NA", "null", "?", "-", "N/A", "-999")


@pytest.mark.parametrize("raw, message", [
    ("missing_values: [null]", "missing_values: None is not a cell string; quote it"),
    ('missing_values: [""]', "an empty cell is always missing"),
    ("missing_values: [NA, NA]", "'NA' is listed twice"),
    ("missing_values: {NA: 1}", "'missing_values' must be a list of cell strings"),
    ("missing_values: [NA, 1]", "'1' is a class of the label"),
])
def test_a_bad_list_is_refused_naming_the_field(tmp_path, raw, message):
    path = _dataset(tmp_path)
    path.write_text(path.read_text() + raw + "\n")
    with pytest.raises(SpecError, match=re.escape(message)):
        load_spec(path)


def test_the_example_gens_cache_key_holds_the_list(tmp_path):
    from google.protobuf import any_pb2, json_format, struct_pb2
    from tfx.proto import example_gen_pb2

    from pipeline.config.settings import Settings
    from pipeline.definition import builder

    def options(spec, scoring=False):
        node = (builder._scoring_example_gen(spec, {"count": "INT"}) if scoring else
                builder._example_gen(spec, Settings()))
        config = example_gen_pb2.CustomConfig()
        json_format.Parse(node.exec_properties["custom_config"], config)
        fields = struct_pb2.Struct()
        assert isinstance(config.custom_config, any_pb2.Any) and \
            config.custom_config.Unpack(fields)
        return json_format.MessageToDict(fields)

    plain = options(load_spec(_dataset(tmp_path)))
    assert set(plain) == {"code_fingerprint"}  # unchanged for a spec without the list
    declared = options(load_spec(_dataset(tmp_path, ["NA"])))
    assert declared == {**plain, "missing_values": ["NA"]}
    # make score's ingestion reads the file to score the same way.
    assert options(load_spec(_dataset(tmp_path, ["NA"])), scoring=True)["missing_values"] == \
        ["NA"]
    assert "missing_values" not in options(load_spec(_dataset(tmp_path)), scoring=True)


def test_the_drift_drafts_noise_reads_declared_markers_as_missing(tmp_path):
    from components.score import drift_draft

    rows = "size,count,colour,label\n" + "".join(
        f"{'NA' if i % 5 == 0 else i * 0.5},{i % 7},{'NA' if i % 4 == 0 else 'red'},{i % 2}\n"
        for i in range(200))
    noise = drift_draft.measure_noise(load_spec(_dataset(tmp_path, ["NA"], rows=rows)))
    assert noise["size"][0] == "jensen_shannon" and noise["colour"][0] == "l_infinity"


# ---- the readers -----------------------------------------------------------------------------

def test_undeclared_markers_in_a_number_column_stop_the_preflight_with_a_hint(tmp_path):
    with pytest.raises(InputError, match=r"column 'size' \(float in the spec\) holds text that is "
                       r"not a number: 'NA' on line 3.*list it under missing_values"):
        check_csv(load_spec(_dataset(tmp_path)))


def test_declared_markers_pass_the_preflight_and_others_do_not(tmp_path):
    check_csv(load_spec(_dataset(tmp_path, ["NA", "?"])))
    with pytest.raises(InputError, match=r"'\?' on line 6"):
        check_csv(load_spec(_dataset(tmp_path, ["NA"])))


def test_a_file_to_score_honours_the_list_too(tmp_path):
    spec = load_spec(_dataset(tmp_path, ["NA", "?"]))
    check_scoring_csv(spec, integer_columns=["count"])
    with pytest.raises(InputError, match="holds text that is not a number: 'NA'"):
        check_scoring_csv(load_spec(_dataset(tmp_path)), integer_columns=["count"])


def test_frames_read_declared_markers_as_missing_and_keep_undeclared_ones_as_text(tmp_path):
    declared = load_spec(_dataset(tmp_path, ["NA", "?"]))
    frame = next(example_frames.csv_frames(declared.csv_path, declared))
    assert frame["size"].dtype == np.float64
    assert frame["size"].isna().tolist() == [False, True, True, False, True]
    assert frame["colour"].tolist() == ["red", None, "blue", None, "green"]
    # Not declared: NA in a text column is a category, as the ExampleGen reads it.
    plain = load_spec(_dataset(tmp_path))
    frame = next(example_frames.csv_frames(plain.csv_path, plain))
    assert frame["colour"].tolist() == ["red", "NA", "blue", "NA", "green"]
    assert frame["size"].tolist()[1] == "NA"  # shown as the text it is, for the contract


def test_predict_rows_read_declared_markers_as_missing(tmp_path):
    spec = load_spec(_dataset(tmp_path, ["NA", "?"]))
    rows = registry.feature_rows(spec.csv_path, ["size", "count", "colour"], {"size", "count"},
                                 missing_values=spec.missing_values)
    assert rows["size"].isna().tolist() == [False, True, True, False, True]
    assert rows["colour"].tolist() == ["red", None, "blue", None, "green"]


def test_every_reader_finds_the_same_missing_cells(tmp_path):
    """The preflight's (csv module + is_missing), the ExampleGen's batches and the contract's
    frames agree cell by cell on a file with markers, quoted markers and look-alikes."""
    rows = ROWS + 'N/A,5,"NA",1\n -,6, NA,0\n'
    spec = load_spec(_dataset(tmp_path, ["NA", "?", "N/A"], rows=rows))
    fmt = csv_format.inspect(spec.csv_path, spec.missing_values)
    with fmt.open_text() as f:
        reader = csv.reader(f)
        next(reader)
        preflight = [[fmt.is_missing(cell) for cell in row] for row in reader]
    batches = [[cell == "" for cell in row]
               for batch in csv_ranges.read_batches(fmt, csv_ranges.survey(fmt).ranges[0])
               for row in zip(*(c.to_pylist() for c in batch.columns))]
    frame = next(example_frames.csv_frames(spec.csv_path, spec))
    frames = frame[list(fmt.header)].isna().values.tolist()
    assert preflight == batches == frames
    assert sum(map(sum, preflight)) == 9  # " -" and " NA" are not markers
    # The contract's frames take the numbers the ExampleGen types the columns as.
    assert csv_ranges.survey(fmt).types[:2] != csv_ranges.survey(
        csv_format.inspect(spec.csv_path)).types[:2]
    assert json.dumps(spec.to_config()["missing_values"]) == '["NA", "?", "N/A"]'
