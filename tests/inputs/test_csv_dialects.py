"""Spreadsheet exports of a CSV: the variants read as if the difference were not there give every
reader the clean file's header and rows (the preflight, the contract's frames, the model's
input rows, pandas), and through the real pipeline (up to Transform) the clean file's examples;
the variants refused are refused in one line naming the file and what it seems to be."""
from __future__ import annotations

import codecs
import gzip
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import DATA, pipeline_command

from components.contract import example_frames
from components.ingest import csv_format
from pipeline.config.dataset_spec import load_spec
from pipeline.inputs.csv_preflight import InputError, check_csv
from pipeline.tracking import registry

PENGUINS = load_spec(DATA / "penguins" / "spec.yaml")
ROWS = 115  # 344 rows, every third


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """Every third row of the shipped penguins CSV: the file is sorted by species, and the data
    contract wants every species in every split."""
    header, *rows = PENGUINS.csv_path.read_text().splitlines()
    path = tmp_path_factory.mktemp("clean") / "data.csv"
    path.write_text("\n".join([header, *rows[::3]]) + "\n")
    return path


def _quoted_text(text: str) -> str:
    """Every island value in quotes: as read, the same values."""
    header, *rows = text.splitlines()
    island = header.split(",").index("island")
    out = [header]
    for row in rows:
        cells = row.split(",")
        cells[island] = f'"{cells[island]}"'
        out.append(",".join(cells))
    return "\n".join(out) + "\n"


# name -> (file name, content from the clean text)
READ_AS_CLEAN = {
    "BOM and CRLF": ("data.csv", lambda t: codecs.BOM_UTF8 + t.replace("\n", "\r\n").encode()),
    "gzip .csv.gz": ("data.csv.gz", lambda t: gzip.compress(t.encode())),
    "old Mac CR": ("data.csv", lambda t: t.replace("\n", "\r").encode()),
    "Excel sep= line": ("data.csv", lambda t: ("sep=,\n" + t).encode()),
    "spaces around header names": (
        "data.csv", lambda t: (" , ".join(t.split("\n", 1)[0].split(",")) + " \n"
                               + t.split("\n", 1)[1]).encode()),
    "trailing blank lines": ("data.csv", lambda t: (t + "\n\n").encode()),
    "quoted values": ("data.csv", lambda t: _quoted_text(t).encode()),
}


def _variant(clean: Path, folder: Path, name: str) -> Path:
    file_name, make = READ_AS_CLEAN[name]
    path = folder / name.replace(" ", "_") / file_name
    path.parent.mkdir(parents=True)
    path.write_bytes(make(clean.read_text()))
    return path


@pytest.mark.parametrize("name", READ_AS_CLEAN)
def test_every_reader_sees_the_clean_files_rows(clean, tmp_path, name):
    path = _variant(clean, tmp_path, name)
    spec = PENGUINS.with_csv(path)
    check_csv(spec)
    assert csv_format.inspect(path).header == csv_format.inspect(clean).header
    pd.testing.assert_frame_equal(csv_format.read_frame(path, dtype=str),
                                  csv_format.read_frame(clean, dtype=str))
    ours, theirs = (pd.concat(list(example_frames.csv_frames(p, spec))) for p in (path, clean))
    pd.testing.assert_frame_equal(ours, theirs)
    names = [f.name for f in spec.model_features]
    numeric = {f.name for f in spec.model_features if f.is_numeric}
    pd.testing.assert_frame_equal(registry.feature_rows(path, names, numeric),
                                  registry.feature_rows(clean, names, numeric))
    assert len(theirs) == ROWS


HEADER = ",".join(PENGUINS.column_names)
ROW = "Adelie,Torgersen,39.1,18.7,181,3750,male,2007"
REFUSED = {
    "semicolon": ("data.csv", (HEADER + "\n" + ROW + "\n").replace(",", ";").encode(),
                  "the file seems to be semicolon-delimited (its header splits into 8 names on "
                  "';' and 1 on ','); the pipeline reads comma-separated values"),
    "tab": ("data.csv", (HEADER + "\n" + ROW + "\n").replace(",", "\t").encode(),
            "the file seems to be tab-delimited (its header splits into 8 names on '\\t'"),
    "Excel sep=; line": ("data.csv", ("sep=;\n" + HEADER + "\n").replace(",", ";").encode(),
                         "the file seems to be semicolon-delimited (its first line is 'sep=;')"),
    "gzip named .csv": ("data.csv", gzip.compress((HEADER + "\n" + ROW + "\n").encode()),
                        "the file is gzip-compressed but named .csv; name it data.csv.gz"),
    ".gz that is not gzip": ("data.csv.gz", (HEADER + "\n" + ROW + "\n").encode(),
                             "the name ends in .gz but the file is not gzip-compressed; rename "
                             "it to data.csv"),
    "xlsx saved as csv": ("data.csv", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40,
                          "not a text CSV file (a ZIP archive (an .xlsx workbook is one)"),
    "UTF-16": ("data.csv", (HEADER + "\n" + ROW + "\n").encode("utf-16"),
               "the file is UTF-16 text (byte order mark FF FE); the pipeline reads UTF-8"),
    "Latin-1 in the header": ("data.csv", ("caf\xe9," + HEADER + "\n").encode("latin-1"),
                              "line 1: not UTF-8 text (invalid UTF-8 byte 0xe9 at byte "
                              "offset 3"),
    "Latin-1 in a row": ("data.csv", (HEADER + "\n" + ROW + "\n" + ROW.replace(
        "Torgersen", "Torg\xe9rsen") + "\n").encode("latin-1"),
        f"line 3: not UTF-8 text (invalid UTF-8 byte 0xe9 at byte offset "
        f"{len(HEADER) + 2 + len(ROW) + len('Adelie,Torg')}"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_refused_variants_name_the_file_and_what_it_seems_to_be(tmp_path, name):
    file_name, content, message = REFUSED[name]
    path = tmp_path / file_name
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        check_csv(PENGUINS.with_csv(path))
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def _run_until_transform(csv: Path, output_root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        pipeline_command("run", "--dataset", "penguins", "--csv", str(csv), "--output-root",
                         str(output_root), "--until", "Transform", "--beam-mode", "in_memory"),
        capture_output=True, text=True, timeout=900)


@pytest.mark.e2e
def test_bom_crlf_and_gzip_copies_run_through_transform_with_the_clean_examples(clean,
                                                                                 tmp_path):
    runs = {}
    for name in ("BOM and CRLF", "gzip .csv.gz"):
        path = _variant(clean, tmp_path / "inputs", name)
        runs[name] = tmp_path / name.replace(" ", "_")
        result = _run_until_transform(path, runs[name])
        assert result.returncode == 0, result.stderr[-3000:]
        transform = next(line for line in result.stdout.splitlines() if "Transform " in line)
        assert transform.split()[1] == "ran"
    # The clean file's examples, from the same executor, as the reference.
    from example_gen_runs import read_examples, run_example_gen

    from components.ingest.executor import Executor

    expected = run_example_gen(Executor, clean, tmp_path / "clean_examples")
    for name, root in runs.items():
        (run,) = (root / "penguins" / "pipeline_root" / "CsvExampleGen" / "examples").iterdir()
        assert {split: read_examples(run / f"Split-{split}") for split in expected} == \
            expected, name
