"""The CSV ExampleGen executor (components/ingest) gives CsvExampleGen's examples and splits.

Both executors run for real (Beam DirectRunner) on the same files; their outputs are compared
example by example after a canonical (deterministic) serialization, split by split: same
features, same types, same values, same missing values, same split of every row.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pytest
import tensorflow as tf
from conftest import DATA, write_csv_sample
from example_gen_runs import EDGE_CASES, run_example_gen

# The edge cases without their 'inf', which the ingestion refuses where CsvExampleGen writes an
# infinite float (test_number_cells.py); ' 2.5 ' is a Python-only number form too.
FINITE_EDGE_CASES = EDGE_CASES.replace(",inf,", ", 2.5 ,")
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv_executor
from tfx.proto import example_gen_pb2
from tfx_bsl.coders import csv_decoder

from components.ingest import column_types, csv_format, csv_ranges, hash_partition
from components.ingest import executor as ingest_executor

TAXI_CSV = DATA / "taxi" / "data.csv"


def _features(serialized: bytes):
    return tf.train.Example.FromString(serialized).features.feature


@pytest.fixture(scope="module")
def taxi_by_csv_example_gen(tmp_path_factory):
    return run_example_gen(tfx_csv_executor.Executor, TAXI_CSV,
                           tmp_path_factory.mktemp("csv_example_gen"))


@pytest.mark.e2e  # runs the ExampleGen executors for real (Beam)
def test_taxi_gives_csv_example_gens_examples_and_splits(taxi_by_csv_example_gen, tmp_path):
    ours = run_example_gen(ingest_executor.Executor, TAXI_CSV, tmp_path)
    assert {s: len(v) for s, v in ours.items()} == {
        s: len(v) for s, v in taxi_by_csv_example_gen.items()}
    assert ours == taxi_by_csv_example_gen
    # The comparison covers empty cells and every value type.
    kinds = {(name, feature.WhichOneof("kind"), len(getattr(feature, feature.WhichOneof("kind"))
                                                    .value))
             for example in ours["eval"][:2000] for name, feature in _features(example).items()}
    assert {kind for _, kind, _ in kinds} == {"int64_list", "float_list", "bytes_list"}
    assert any(values == 0 for _, _, values in kinds)


@pytest.mark.e2e  # runs the ExampleGen executors for real (Beam)
def test_multi_processing_with_many_ranges_gives_the_same(taxi_by_csv_example_gen, tmp_path,
                                                           monkeypatch):
    monkeypatch.setattr(csv_ranges, "RANGE_BYTES", 256 * 1024)  # ~8 ranges of the 1.9 MB
    ours = run_example_gen(ingest_executor.Executor, TAXI_CSV, tmp_path, (
        "--direct_running_mode=multi_processing", "--direct_num_workers=2"))
    assert ours == taxi_by_csv_example_gen
    assert len(list((tmp_path / "Split-train").iterdir())) > 4  # one file per range


@pytest.mark.e2e  # runs the ExampleGen executors for real (Beam)
def test_edge_cases_match_csv_example_gen(tmp_path):
    """Python-only number forms, an integer beyond int64, an all-empty column, quoted commas,
    quotes and line breaks, a blank line, non-ASCII text."""
    csv = tmp_path / "in" / "data.csv"
    csv.parent.mkdir()
    csv.write_text(FINITE_EDGE_CASES, encoding="utf-8")
    theirs = run_example_gen(tfx_csv_executor.Executor, csv, tmp_path / "theirs")
    ours = run_example_gen(ingest_executor.Executor, csv, tmp_path / "ours")
    assert ours == theirs
    examples = [_features(e) for split in ours.values() for e in split]
    assert len(examples) == 4
    assert all(e["empty"].WhichOneof("kind") is None for e in examples)  # no value list at all
    assert {e["big_int"].WhichOneof("kind") for e in examples} == {"bytes_list"}


def _dialect_variants(clean: Path, folder: Path) -> dict[str, Path]:
    text = clean.read_text(encoding="utf-8")
    header, rest = text.split("\n", 1)
    spaced = ", ".join(header.split(",")) + " \n" + rest
    variants = {
        "bom_crlf.csv": csv_format.UTF8_BOM + text.replace("\n", "\r\n").encode(),
        "cr_only.csv": text.replace("\n", "\r").encode(),
        "excel_hint_spaced_header.csv": ("sep=,\n" + spaced + "\n\n").encode(),
        "data.csv.gz": gzip.compress(text.encode()),
    }
    paths = {}
    for name, content in variants.items():
        paths[name] = folder / name.split(".")[0] / name
        paths[name].parent.mkdir(parents=True)
        paths[name].write_bytes(content)
    return paths


@pytest.mark.e2e  # runs the ExampleGen executors for real (Beam)
def test_spreadsheet_dialects_give_the_clean_files_examples(tmp_path):
    clean = write_csv_sample(TAXI_CSV, tmp_path / "clean" / "data.csv", rows=300)
    expected = run_example_gen(ingest_executor.Executor, clean, tmp_path / "out" / "clean")
    assert sum(map(len, expected.values())) == 300
    for name, path in _dialect_variants(clean, tmp_path / "variants").items():
        assert run_example_gen(ingest_executor.Executor, path, tmp_path / "out" / name) == \
            expected, name


# ---- the pieces, without Beam ----------------------------------------------------------------

def _rows(fmt: csv_format.CsvFormat, ranges) -> list[list[str]]:
    rows = []
    for byte_range in ranges:
        for batch in csv_ranges.read_batches(fmt, byte_range):
            rows.extend(zip(*(column.to_pylist() for column in batch.columns)))
    return [list(row) for row in rows]


def test_byte_ranges_cut_at_line_ends_and_cover_every_row(tmp_path):
    csv = write_csv_sample(TAXI_CSV, tmp_path / "data.csv", rows=3000)
    fmt = csv_format.inspect(csv)
    found = csv_ranges.survey(fmt, range_bytes=20_000)
    assert len(found.ranges) > 10
    assert found.ranges[-1].end == csv.stat().st_size
    assert all(a.end == b.start for a, b in zip(found.ranges, found.ranges[1:]))
    content = csv.read_bytes()
    assert all(content[r.start - 1:r.start] == b"\n" for r in found.ranges)
    whole = [csv_ranges.ByteRange(fmt.header_offset, None, skip_header=True)]
    assert _rows(fmt, found.ranges) == _rows(fmt, whole)
    assert len(_rows(fmt, whole)) == 3000


@pytest.mark.parametrize("content", [FINITE_EDGE_CASES.encode(), gzip.compress(b"a,b\n1,2\n" * 9)],
                         ids=["line-break-in-a-value", "gzip"])
def test_a_line_break_in_a_value_or_gzip_reads_the_file_as_one_range(tmp_path, content):
    csv = tmp_path / ("data.csv.gz" if content[:2] == csv_format.GZIP_MAGIC else "data.csv")
    csv.write_bytes(content)
    assert len(csv_ranges.survey(csv_format.inspect(csv), range_bytes=8).ranges) == 1


def test_a_bad_row_past_the_preflight_sample_names_the_file_and_its_line(tmp_path):
    csv = write_csv_sample(TAXI_CSV, tmp_path / "data.csv", rows=50)
    with csv.open("a") as f:
        f.write("1,2,3\n")
    with pytest.raises(ValueError, match=f"^{csv}: line 52: the row has 3 fields, the header "
                                         "has 19$"):
        csv_ranges.survey(csv_format.inspect(csv))
    latin = tmp_path / "latin" / "data.csv"
    latin.parent.mkdir()
    row = ",12.45,5,19,6,1400269500,,,,,0.0,,,Credit Card,Caf\xe9,0,,0.0,0\n"
    latin.write_bytes(csv.read_bytes().replace(b"1,2,3\n", b"") + row.encode("latin-1"))
    offset = latin.read_bytes().index(b"\xe9")
    with pytest.raises(csv_format.CsvFormatError,
                       match=f"^{latin}: line 52: not UTF-8 text \\(invalid UTF-8 byte 0xe9 "
                             f"at byte offset {offset}"):
        csv_ranges.survey(csv_format.inspect(latin))


def test_a_byte_range_read_on_its_own_names_the_line_of_a_nul_byte(tmp_path):
    """pyarrow reads a NUL byte as data; every other reader refuses it. A range that starts
    in the middle of the file still names the line as counted from the file's start."""
    csv = write_csv_sample(TAXI_CSV, tmp_path / "data.csv", rows=2000)
    ranges = csv_ranges.survey(csv_format.inspect(csv), range_bytes=16_000).ranges
    # A range past the bytes inspect() sniffs (it refuses a NUL byte there itself).
    late = next(r for r in ranges if r.start > csv_format.SNIFF_BYTES)
    data = bytearray(csv.read_bytes())
    at = data.index(b"Credit Card", late.start)  # changed in place: the ranges stay put
    data[at + 2] = 0
    csv.write_bytes(bytes(data))
    line = data[:at].count(b"\n") + 1
    fmt = csv_format.inspect(csv)
    assert list(csv_ranges.read_batches(fmt, ranges[0]))  # the ranges above it read
    with pytest.raises(ValueError, match=f"^{csv}: line {line}: not a text CSV file \\(binary "
                                         "data: a NUL byte\\)$"):
        list(csv_ranges.read_batches(fmt, late))

CELLS = ["", "0", "-0", "+7", " 12", "12 ", "1_000", "007", "9223372036854775807",
         "9223372036854775808", "-9223372036854775809", "123456789012345678", "1.5", ".5", "5.",
         "1e5", "1E-3", "+1.5", "inf", "-Infinity", "nan", "nan(1)", "0x10", "1.5f", "abc",
         "12\n", "١٢", "1,5"]


def test_a_cells_type_is_tfx_bsls(tmp_path):
    for cell in CELLS:
        assert column_types.value_type(cell.encode()) == csv_decoder._InferValueType(
            cell.encode()), cell


@pytest.mark.parametrize("start", range(0, len(CELLS), 3))
def test_a_columns_type_is_the_highest_of_its_cells(start):
    batches = [CELLS[start:start + 2], CELLS[start + 2:start + 5]]
    survey = column_types.ColumnSurvey()
    for batch in batches:
        survey.add(pa.array(batch, pa.string()))
    cells = [c for batch in batches for c in batch]
    assert survey.type == max(column_types.value_type(c.encode()) for c in cells)
    assert survey.line_breaks == any("\n" in c for c in cells)


def test_an_all_empty_column_is_unknown():
    survey = column_types.ColumnSurvey()
    survey.add(pa.array(["", ""], pa.string()))
    assert survey.type == column_types.ColumnType.UNKNOWN


def test_split_of_a_record_is_tfxs_partition():
    from tfx.components.example_gen.base_example_gen_executor import _PartitionFn

    config = example_gen_pb2.SplitConfig()
    records = [f"record {i}".encode() * (i % 7 + 1) for i in range(200)]
    theirs = [_PartitionFn(record, 2, [7, 10], config) for record in records]
    assert [hash_partition.split_of(record, [7, 10]) for record in records] == theirs
    # Distinct records: the partition is TFX's, record for record.
    assert hash_partition.Partition([7, 10]).splits(records) == theirs


def test_copies_of_a_row_are_spread_over_the_splits_and_the_first_is_tfxs():
    rows = [f"row {i}: class {i % 4}, sex {i % 2}".encode() for i in range(20)]  # distinct
    partition = hash_partition.Partition([70, 100])
    first = partition.splits(rows)
    assert first == [hash_partition.split_of(row, [70, 100]) for row in rows]
    copies = partition.splits(rows * 200)  # later copies, in file order
    for i in range(len(rows)):
        of_row = copies[i::len(rows)]
        assert 0.55 < of_row.count(0) / len(of_row) < 0.85  # each row in both splits
    assert hash_partition.Partition([70, 100]).splits(rows * 3) == first + copies[:40]


@pytest.mark.e2e  # runs the ExampleGen executor for real (Beam)
def test_a_table_of_repeated_rows_has_each_row_in_both_splits(tmp_path):
    """R's Titanic table: 1,316 rows, 20 distinct. TFX's CsvExampleGen puts every copy of a row
    in one split, so train and eval share no row; ours spreads the copies."""
    csv = tmp_path / "in" / "data.csv"
    csv.parent.mkdir()
    distinct = [f"{c},{a},{s},{v}" for c in ("1st", "2nd", "3rd") for a in ("adult", "child")
                for s in ("man", "woman") for v in ("yes", "no")]
    csv.write_text("class,age,sex,survived\n" + "\n".join(distinct * 40) + "\n")
    theirs = run_example_gen(tfx_csv_executor.Executor, csv, tmp_path / "theirs")
    assert not set(theirs["train"]) & set(theirs["eval"])
    ours = run_example_gen(ingest_executor.Executor, csv, tmp_path / "ours")
    assert sorted(ours["train"] + ours["eval"]) == sorted(theirs["train"] + theirs["eval"])
    assert len(set(ours["train"]) & set(ours["eval"])) == len(distinct)
    assert 0.6 < len(ours["train"]) / len(distinct * 40) < 0.8
