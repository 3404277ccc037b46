"""The spec's missing_values in the CSV ExampleGen (components/ingest): a declared marker cell is
read exactly as an empty cell is (an empty value list), before the columns are typed; without a
declaration nothing changes (a cell such as NA is text, as in CsvExampleGen)."""
from __future__ import annotations

import pytest
import tensorflow as tf
from example_gen_runs import run_example_gen

from components.ingest import csv_format, csv_ranges
from components.ingest import executor as ingest_executor
from components.ingest.column_types import ColumnType
from components.ingest.example_encoding import ExampleEncoder

# Numbers with NA for missing (also quoted), a text column where NA is a value, a cell that
# only looks like a marker (" NA", "na": exact match only).
MARKED = ('size,count,colour,note\n'
          '1.5,3,red,NA\n'
          'NA,NA,NA,x\n'
          '"NA",7,blue, NA\n'
          '2.25,,red,na\n')
EMPTIED = MARKED.replace("1.5,3,red,NA\n", "1.5,3,red,\n").replace(
    "NA,NA,NA,x", ",,,x").replace('"NA",7', ',7')


def _write(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name.split(".")[0] / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _cells(fmt: csv_format.CsvFormat) -> list[list[str]]:
    found = csv_ranges.survey(fmt)
    rows = []
    for byte_range in found.ranges:
        for batch in csv_ranges.read_batches(fmt, byte_range):
            rows.extend(list(r) for r in zip(*(c.to_pylist() for c in batch.columns)))
    return rows


def test_without_a_declaration_a_marker_is_text(tmp_path):
    fmt = csv_format.inspect(_write(tmp_path, MARKED))
    assert fmt.missing_values == ()
    assert csv_ranges.survey(fmt).types == [ColumnType.STRING] * 4
    assert _cells(fmt)[1] == ["NA", "NA", "NA", "x"]


def test_declared_markers_are_empty_cells_and_the_columns_numbers(tmp_path):
    fmt = csv_format.inspect(_write(tmp_path, MARKED), ["NA"])
    assert csv_ranges.survey(fmt).types == [ColumnType.FLOAT, ColumnType.INT,
                                            ColumnType.STRING, ColumnType.STRING]
    emptied = csv_format.inspect(_write(tmp_path, EMPTIED, "emptied.csv"))
    assert _cells(fmt) == _cells(emptied)
    # Exact strings: " NA" and "na" stay text.
    assert [row[3] for row in _cells(fmt)] == ["", "x", " NA", "na"]


def test_declared_markers_encode_as_the_empty_cells_examples(tmp_path):
    """The tf.Examples' bytes (hence the split of every row) are the emptied file's."""
    def encoded(fmt):
        found = csv_ranges.survey(fmt)
        encoder = ExampleEncoder(fmt.header, found.types)
        return [r for br in found.ranges for b in csv_ranges.read_batches(fmt, br)
                for r in encoder.encode(b)]

    marked = encoded(csv_format.inspect(_write(tmp_path, MARKED), ["NA"]))
    assert marked == encoded(csv_format.inspect(_write(tmp_path, EMPTIED, "emptied.csv")))
    size = tf.train.Example.FromString(marked[1]).features.feature["size"]
    assert size.WhichOneof("kind") == "float_list" and len(size.float_list.value) == 0


def test_several_markers_and_byte_ranges(tmp_path):
    text = "a,b\n" + "".join(f"{i},{'?' if i % 3 == 0 else '-' if i % 5 == 0 else i}\n"
                             for i in range(200))
    fmt = csv_format.inspect(_write(tmp_path, text), ["?", "-"])
    found = csv_ranges.survey(fmt, range_bytes=64)
    assert len(found.ranges) > 1 and found.types == [ColumnType.INT, ColumnType.INT]
    assert sum(row[1] == "" for row in _cells(fmt)) == len(
        [i for i in range(200) if i % 3 == 0 or i % 5 == 0])


@pytest.mark.e2e  # runs the ExampleGen executor for real (Beam)
def test_the_executor_reads_declared_markers_as_empty_cells(tmp_path):
    marked = _write(tmp_path, MARKED * 1 + "".join(f"{i}.5,{i},red,x\n" for i in range(40)))
    emptied = _write(tmp_path, EMPTIED + "".join(f"{i}.5,{i},red,x\n" for i in range(40)),
                     "emptied.csv")
    config = {ingest_executor.MISSING_VALUES_KEY: ["NA"]}
    ours = run_example_gen(ingest_executor.Executor, marked, tmp_path / "ours",
                           custom_config=config)
    assert ours == run_example_gen(ingest_executor.Executor, emptied, tmp_path / "emptied")
    assert run_example_gen(ingest_executor.Executor, marked, tmp_path / "undeclared") != ours
