"""Cells float() takes that are no number, blank cells, whole decimals in an int column and
space-delimited files: read the same way by the preflight, the ingestion's survey and encoder,
and the contract's frames (csv_format.py's rules), or refused in one line naming file, column
and line."""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import tensorflow as tf
from conftest import DATA
from example_gen_runs import run_example_gen

from components.contract import example_frames, suite_draft
from components.ingest import csv_format, csv_ranges
from components.ingest import executor as ingest_executor
from components.ingest.column_types import ColumnSurvey, ColumnType
from components.ingest.example_encoding import ExampleEncoder, NotFinite
from pipeline.config.dataset_spec import load_spec
from pipeline.inputs.csv_preflight import InputError, check_csv, check_scoring_csv

PENGUINS = load_spec(DATA / "penguins" / "spec.yaml")
HEADER, *ROWS = list(csv.reader(PENGUINS.csv_path.read_text().splitlines()))
DEPTH, FLIPPER = HEADER.index("bill_depth_mm"), HEADER.index("flipper_length_mm")


def _penguins(tmp_path: Path, edits: dict[tuple[int, int], str], rows=None) -> Path:
    """The penguins CSV with cells replaced ({(data row, column): cell}); row 0 is line 2."""
    rows = [list(r) for r in (rows or ROWS)]
    for (row, column), cell in edits.items():
        rows[row][column] = cell
    path = tmp_path / "data.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([HEADER, *rows])
    return path


def _spec(path: Path):
    return PENGUINS.with_csv(path)


# --- 1: NaN is missing in a column of numbers, an infinite number is refused ---------------

@pytest.mark.parametrize("cell", ["nan", "NaN", " -nan "])
def test_nan_in_a_number_column_is_a_missing_cell_for_the_preflight(tmp_path, cell):
    check_csv(_spec(_penguins(tmp_path, {(3, DEPTH): cell})))


@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity", "1e999", "1e39"])
def test_an_infinite_number_is_refused_by_the_preflight_naming_its_line(tmp_path, cell):
    path = _penguins(tmp_path, {(3, DEPTH): cell})
    with pytest.raises(InputError) as error:
        check_csv(_spec(path))
    assert str(error.value) == (
        f"{path}: line 5: column 'bill_depth_mm' holds {cell!r}: not a finite number (the model "
        "reads numbers up to ±3.4e+38); write the value, or leave the cell empty when it is "
        "missing")


def test_the_survey_types_nan_as_missing_and_refuses_inf_by_line(tmp_path):
    path = _penguins(tmp_path, {(3, DEPTH): "nan", (5, FLIPPER): "NaN"})
    found = csv_ranges.survey(csv_format.inspect(path))
    assert found.types[DEPTH] == ColumnType.FLOAT and found.types[FLIPPER] == ColumnType.INT
    path = _penguins(tmp_path, {(3, DEPTH): "7", (9, FLIPPER): "-inf"})
    with pytest.raises(csv_format.CsvFormatError, match=(
            r"data.csv: line 11: column 'flipper_length_mm' holds '-inf': not a finite number")):
        csv_ranges.survey(csv_format.inspect(path))


def test_init_refuses_an_infinite_number_by_its_line_before_drafting(tmp_path):
    # init read the file into its sample, then the suite draft met inf: OverflowError, exit 1.
    from pipeline.dataset_init import table_sample

    path = _penguins(tmp_path, {(9, FLIPPER): "inf"})
    with pytest.raises(csv_format.CsvFormatError, match=(
            r"data.csv: line 11: column 'flipper_length_mm' holds 'inf': not a finite number")):
        table_sample.read(path)


def test_nan_and_inf_in_a_text_column_are_text():
    survey = ColumnSurvey()
    survey.add(pa.array(["inf", "nan", "Adelie"], pa.string()))
    assert survey.type == ColumnType.STRING
    survey = ColumnSurvey()
    survey.add(pa.array(["nan", ""], pa.string()))
    assert survey.type == ColumnType.UNKNOWN  # NaN only: an empty column


def test_the_encoder_writes_nan_as_an_empty_cell_and_refuses_inf():
    encoder = ExampleEncoder(["x", "n"], [ColumnType.FLOAT, ColumnType.INT])
    batch = pa.RecordBatch.from_arrays(
        [pa.array(["nan", "", "1.5"]), pa.array(["NaN", "", "181.0"])], ["x", "n"])
    nan, empty, number = encoder.encode(batch)
    assert nan == empty
    parsed = tf.train.Example.FromString(number).features.feature
    assert parsed["x"].float_list.value == [1.5] and parsed["n"].int64_list.value == [181]
    with pytest.raises(NotFinite) as error:
        encoder.encode(pa.RecordBatch.from_arrays([pa.array(["1e39"]), pa.array([""])],
                                                  ["x", "n"]))
    assert error.value.column == "x" and error.value.cell == "1e39"


def test_the_contract_frames_read_nan_as_missing_and_inf_as_not_a_number(tmp_path):
    path = _penguins(tmp_path, {(0, DEPTH): "nan", (1, DEPTH): "inf", (2, DEPTH): " ",
                                (3, DEPTH): " 18.5 ", (4, 1): " "})
    frame = next(example_frames.csv_frames(path, _spec(path)))
    depth = frame["bill_depth_mm"].tolist()
    assert pd.isna(depth[0]) and depth[1] == "inf" and pd.isna(depth[2]) and depth[3] == 18.5
    assert frame["island"][4] is None


def test_the_suite_draft_refuses_an_infinite_number_and_rounds_safely(tmp_path):
    profile = suite_draft._Profile()
    profile.add(pd.Series([1.0, float("inf")]), numeric=True)
    assert profile.not_numbers == [float("inf")] and profile.high == 1.0
    assert suite_draft._round_out(0.0, float("inf"), integer=False) == (0, float("inf"))


# --- 2: a blank cell is missing everywhere; spaces around a number are not part of it ------

def test_a_blank_cell_is_missing_for_the_survey_and_the_preflight(tmp_path):
    path = _penguins(tmp_path, {(3, DEPTH): " ", (4, FLIPPER): "\t", (5, 1): "  "})
    check_csv(_spec(path))
    found = csv_ranges.survey(csv_format.inspect(path))
    assert found.types[DEPTH] == ColumnType.FLOAT and found.types[FLIPPER] == ColumnType.INT
    batch = next(csv_ranges.read_batches(csv_format.inspect(path), csv_ranges.ByteRange(
        0, None, skip_header=True)))
    assert [batch.column(c)[r].as_py() for r, c in ((3, DEPTH), (4, FLIPPER), (5, 1))] == \
        ["", "", ""]


def test_a_file_written_with_comma_space_types_its_number_columns_as_numbers(tmp_path):
    path = tmp_path / "spaced.csv"
    rows = [", ".join(row) for row in [HEADER, *ROWS]]
    path.write_text("\n".join(rows) + "\n")
    fmt = csv_format.inspect(path)
    assert fmt.header == tuple(HEADER)
    found = csv_ranges.survey(fmt)
    assert [t.name for t in found.types] == [
        "STRING", "STRING", "FLOAT", "FLOAT", "INT", "INT", "STRING", "INT"]
    frame = next(example_frames.csv_frames(path, _spec(path)))
    assert frame["bill_length_mm"][0] == 39.1 and pd.isna(frame["bill_length_mm"][3])


# --- 3: whole decimals in an int column are its integers; a fraction is refused -------------

def test_whole_decimals_pass_the_scoring_preflight_and_a_fraction_is_refused(tmp_path):
    rows = [r[1:] for r in ROWS]
    header = HEADER[1:]
    path = tmp_path / "new.csv"
    pd.read_csv(PENGUINS.csv_path).drop(columns=["species"]).to_csv(path, index=False)
    assert "181.0" in path.read_text()
    check_scoring_csv(_spec(path), integer_columns=["flipper_length_mm", "body_mass_g"])
    with path.open("w", newline="") as f:
        rows[6][header.index("flipper_length_mm")] = "181.5"
        csv.writer(f).writerows([header, *rows])
    with pytest.raises(InputError, match=r"column 'flipper_length_mm' holds '181.5' on line 8: "
                                         "the model reads it as whole numbers"):
        check_scoring_csv(_spec(path), integer_columns=["flipper_length_mm"])


def test_forced_types_narrow_float_to_int_only_for_whole_numbers(tmp_path):
    path = tmp_path / "new.csv"
    path.write_text("a,b\n181.0,1.5\n,2.0\n")
    fmt = csv_format.inspect(path)
    found = csv_ranges.survey(fmt)
    assert found.whole == [True, False]
    assert ingest_executor.forced_types(fmt, found.types, {"a": "INT"}, found.whole)[0] == \
        ColumnType.INT
    with pytest.raises(ValueError, match="column 'b' holds decimal numbers"):
        ingest_executor.forced_types(fmt, found.types, {"b": "INT"}, found.whole)


@pytest.mark.e2e  # runs the ExampleGen executor for real (Beam)
def test_a_pandas_written_file_is_ingested_with_its_integers(tmp_path):
    path = tmp_path / "in" / "new.csv"
    path.parent.mkdir()
    pd.read_csv(PENGUINS.csv_path).drop(columns=["species"]).to_csv(path, index=False)
    types = {"flipper_length_mm": "INT", "body_mass_g": "INT", "year": "INT",
             "bill_depth_mm": "FLOAT"}
    examples = run_example_gen(ingest_executor.Executor, path, tmp_path / "out",
                               splits=[("all", 1)], custom_config={"column_types": types})
    flippers = [tf.train.Example.FromString(e).features.feature["flipper_length_mm"]
                for e in examples["all"]]
    assert all(f.WhichOneof("kind") == "int64_list" for f in flippers)
    values = [v for f in flippers for v in f.int64_list.value]
    assert len(values) == 342 and 181 in values  # two gaps, empty


# --- 4: a space-delimited file is named as one -----------------------------------------------

@pytest.mark.parametrize("text, names", [
    ('"OBS" "GPA" "TUCE" "PSI" "GRADE"\n"1" 2.66 20 0 0\n"2" 2.89 22 0 0\n', 5),
    ("Chins Situps Jumps\n5 162 60\n2 110 60\n", 3)], ids=["spector", "linnerud"])
def test_a_space_delimited_file_is_named_as_one(tmp_path, text, names):
    path = tmp_path / "data.csv"
    path.write_text(text)
    with pytest.raises(csv_format.CsvFormatError, match=(
            rf"the file seems to be space-delimited \(its header splits into {names} names on "
            "spaces and 1 on ','\\)")):
        csv_format.inspect(path)


def test_a_one_column_file_with_a_spaced_name_is_still_read(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("full name\nJohn Ronald Tolkien\n")
    assert csv_format.inspect(path).header == ("full name",)


def test_a_semicolon_file_is_told_to_write_decimal_points_too(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a;b;c\n1,5;2;x\n")
    with pytest.raises(csv_format.CsvFormatError, match="',' as the delimiter and '.' as the "
                                                        "decimal point"):
        csv_format.inspect(path)
