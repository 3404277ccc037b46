"""Bad input stops the pipeline with a clear error and loses nothing.

The CSV preflight is tested directly, then every corrupted variant of the shipped taxi data goes
through the real command (`python -m pipeline run`) against the output root of an earlier good
run: each must exit non-zero with an error naming the problem, push nothing, and leave the model
the good run pushed byte for byte as it was.

What the preflight refuses costs a second per case. What only the data contract catches needs a
pipeline run (about a minute on this sample, stopped before the Trainer); those four corruptions
touch four different columns and each breaks its own expectation, so they share one run and
each case checks its own line of the error.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import subprocess
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from components.contract.data_errors import DataValidationError
from conftest import DATA, pipeline_command, write_csv_sample
from pipeline.config.dataset_spec import load_spec
from pipeline.config.settings import Settings
from pipeline.definition import builder
from pipeline.inputs.csv_preflight import InputError, check_csv, check_scoring_csv
from pipeline.mlmd import queries

TAXI = load_spec(DATA / "taxi" / "spec.yaml")
SAMPLE_ROWS = 300


# ---- the preflight, called directly ---------------------------------------------------------

def _taxi_csv(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "data.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _check(path: Path) -> str:
    with pytest.raises(InputError) as error:
        check_csv(TAXI.with_csv(path))
    assert isinstance(error.value, DataValidationError)
    assert str(error.value).startswith(f"{path.resolve()}: ")
    return str(error.value)[len(str(path.resolve())) + 2:]


HEADER = ",".join(TAXI.column_names)
ROW = ",12.45,5,19,6,1400269500,,,,,0.0,,,Credit Card,Flash Cab,0,,0.0,0"


@pytest.mark.parametrize("dataset", ["taxi", "penguins"])
def test_shipped_csvs_pass_the_preflight(dataset):
    check_csv(load_spec(DATA / dataset / "spec.yaml"))


UNREADABLE = {
    "empty": ("", "the file is empty; expected a header line and data rows"),
    "blank lines": ("\n \n", "the file is empty; expected a header line and data rows"),
    "header only": (HEADER + "\n", "the file has a header but no data rows"),
    "header and blank lines": (HEADER + "\n\n\n", "the file has a header but no data rows"),
    "blank first line": ("\n" + HEADER + "\n" + ROW + "\n",
                         "the first line is empty; expected the header"),
    "unnamed column": (HEADER + ",\n" + ROW + ",\n",
                       "column 20 of the header has no name (a trailing ',' on the header "
                       "line?); name or drop it"),
    "a row index first, as R's write.csv writes": (
        '"",' + HEADER + '\n"1",' + ROW + '\n"2",' + ROW + "\n",
        "column 1 of the header has no name and holds 1, 2, 3, ...: a row index, as R's "
        "write.csv and pandas' to_csv write one; write the file without it (R: row.names = "
        "FALSE, pandas: index=False) or give the column a name"),
    "an unnamed first column of other values": (
        "," + HEADER + "\n7," + ROW + "\n3," + ROW + "\n",
        "column 1 of the header has no name; name or drop it"),
    "a count line above the header": (
        "15002,19" + "," * 17 + "\n" + HEADER + "\n" + ROW + "\n",
        "line 1 (15002,19) looks like a count or title line, not a header, and the header "
        "seems to be on line 2 (pickup_community_area, fare, "),
    "duplicated header": (HEADER.replace("tips", "fare") + "\n" + ROW + "\n",
                          "the header names column 'fare' 2 times (columns 2 and 18); rename them"),
    "missing column": (HEADER.replace(",fare", "") + "\n" + ROW.replace(",12.45", "") + "\n",
                       "the header lacks column(s) the spec needs: fare (spec: "),
    "extra column": (HEADER + ",extra\n" + ROW + ",1\n",
                     "the header has column(s) the spec does not list: extra; add them to "),
    "ragged row": (HEADER + "\n" + ROW + "\n" + ROW + ",7\n",
                   "line 3: the row has 20 fields, the header has 19"),
    "text in a float column": (
        HEADER + "\n" + ROW + "\n" + ROW.replace("12.45", "twelve") + "\n" + ROW + "\n",
        "column 'fare' (float in the spec) holds text that is not a number: 'twelve' on "
        "line 3"),
    "text in an int column, several rows": (
        HEADER + "\n" + "\n".join([ROW.replace(",0,,0.0,0", ",n/a,,0.0,0")] * 3) + "\n",
        "column 'trip_seconds' (int in the spec) holds text that is not a number: 'n/a' on "
        "line 2 and 2 more in the first 3 rows"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
               "line 3: not a text CSV file (binary data: a NUL byte at byte 8)"),
    "not UTF-8": (
        (HEADER + "\n" + ROW.replace("Flash Cab", "Caf\xe9") + "\n").encode("latin-1"),
        "line 2: not UTF-8 text (invalid UTF-8 byte 0xe9 at byte offset "
        f"{len(HEADER) + 1 + ROW.index('Flash Cab') + 3}: 'é' in Windows-1252, the encoding "
        "of Excel's plain CSV on Windows); the pipeline reads UTF-8: save it as CSV UTF-8, or "
        "convert it (iconv -f WINDOWS-1252 -t UTF-8 "),
}


@pytest.mark.parametrize("text, message", UNREADABLE.values(), ids=UNREADABLE)
def test_preflight_names_the_problem(tmp_path, text, message):
    assert message in _check(_taxi_csv(tmp_path, text))


def test_preflight_names_a_missing_file(tmp_path):
    assert _check(tmp_path / "nowhere.csv") == "file not found"


def test_preflight_only_reads_a_sample_of_the_rows(tmp_path):
    rows = [ROW] * 5 + [ROW.replace("12.45", "twelve")]
    path = _taxi_csv(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n")
    check_csv(TAXI.with_csv(path), rows=5)  # the data contract checks every row
    with pytest.raises(InputError, match="'twelve' on line 7"):
        check_csv(TAXI.with_csv(path), rows=6)


def test_a_column_to_score_the_spec_does_not_list_is_refused_saying_how_to_keep_it(tmp_path):
    """An id column to join the predictions on was refused with only `drop it from the file`.
    The refusal says how to keep it, and the spec line it gives lets the same file through
    (`make score` then scores it and copies the column to the predictions: docs/scoring.md)."""
    import shutil

    penguins = load_spec(DATA / "penguins" / "spec.yaml")
    header, *rows = penguins.csv_path.read_text().splitlines()
    path = tmp_path / "new.csv"
    path.write_text("\n".join([f"penguin_id,{header}",
                               *(f"P{i:03d},{row}" for i, row in enumerate(rows))]) + "\n")
    with pytest.raises(InputError) as refused:
        check_scoring_csv(penguins.with_csv(path))
    message = str(refused.value)
    assert message == (
        f"{path}: column 'penguin_id' is not in the spec ({penguins.spec_path}): the model was "
        "not trained on it; drop it from the file, or keep it (an id to join the predictions on) "
        "by listing it in the spec as `penguin_id: {type: categorical, role: ignore}` (the "
        "model does not read it; the training CSV then needs the column too)")
    folder = tmp_path / "penguins"
    shutil.copytree(penguins.directory, folder)
    spec = folder / "spec.yaml"
    line = message.split("`")[1]
    spec.write_text(spec.read_text().replace("\nfeatures:\n", f"\nfeatures:\n  {line}\n"))
    declared = load_spec(spec)
    assert declared.feature("penguin_id").role == "ignore"
    check_scoring_csv(declared.with_csv(path))


def test_a_column_name_scoring_keeps_for_itself_is_not_offered_role_ignore(tmp_path):
    """Declaring a reserved name would not help: the refusal says to rename it."""
    header, *rows = TAXI.csv_path.read_text().splitlines()[:3]
    path = tmp_path / "new.csv"
    path.write_text("\n".join([f"{header},__csv2model_row__", *(f"{r},1" for r in rows)]))
    with pytest.raises(InputError) as refused:
        check_scoring_csv(TAXI.with_csv(path), reserved=("__csv2model_row__",))
    assert str(refused.value) == (
        f"{path}: column '__csv2model_row__' has a name scoring keeps for its own columns (the "
        "row key, the prediction); rename it or drop it")

# ---- through the real command, after a good run ---------------------------------------------

def _run(csv_path: Path, output_root: Path) -> subprocess.CompletedProcess:
    # --min-auc 0: these tests are about data; any model the good run trains must be pushed.
    # in_memory Beam: on a few hundred rows, worker processes cost more than they save.
    return subprocess.run(
        pipeline_command("run", "--dataset", "taxi", "--csv", str(csv_path), "--output-root",
                         str(output_root), "--epochs", "1", "--min-auc", "0",
                         "--beam-mode", "in_memory"),
        capture_output=True, text=True, timeout=900)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class GoodRun:
    def __init__(self, tmp: Path):
        self.sample = write_csv_sample(DATA / "taxi" / "data.csv", tmp / "good" / "data.csv",
                                       rows=SAMPLE_ROWS)
        self.settings = Settings(dataset="taxi", output_root=tmp / "outputs")
        self.result = _run(self.sample, self.settings.output_root)
        assert self.result.returncode == 0, self.result.stderr[-3000:]
        self.pushed = _digest(self.settings.serving_dir)
        assert self.pushed, "the good run pushed no model"
        self.registry = self._registry()
        assert self.registry[0] == "1", "the good run's model is not champion"

    def _registry(self) -> tuple[str | None, list[str]]:
        """The `champion` version and every registered version, from the run's MLflow store."""
        from mlflow import MlflowClient

        from pipeline.tracking import mlflow_store, registry

        client = MlflowClient(mlflow_store.tracking_uri(self.settings))
        name = self.settings.registered_model_name
        return (registry.champion_version(client, name),
                sorted(str(v.version) for v in client.search_model_versions(f"name = '{name}'")))

    def variant(self, name: str, change: Callable[[list[str], list[list[str]]], None]) -> Path:
        """The good sample with `change(header, rows)` applied, in a folder of its own."""
        with self.sample.open(newline="") as f:
            header, *rows = list(csv.reader(f))
        change(header, rows)
        path = self.sample.parent.parent / name / "data.csv"
        path.parent.mkdir(parents=True)
        with path.open("w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows([header] + rows)
        return path

    def assert_nothing_lost(self) -> None:
        assert _digest(self.settings.serving_dir) == self.pushed
        assert self._registry() == self.registry  # no new version, `champion` where it was


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    return GoodRun(tmp_path_factory.mktemp("bad_input"))


def _set(column: str, value: Callable[[int], str], every: int):
    def change(header, rows):
        for i, row in enumerate(rows):
            if i % every == 0:
                row[header.index(column)] = value(i)
    return change


def _drop(column: str):
    def change(header, rows):
        index = header.index(column)
        for row in [header, *rows]:
            del row[index]
    return change


def _rename(column: str, to: str):
    def change(header, rows):
        header[header.index(column)] = to
    return change


@pytest.mark.e2e
def test_a_failed_warning_lets_the_run_go_on_and_shows_in_the_summary(good_run):
    # The suite was drafted on all 15,002 rows; its row-count bound (a warning) fails on the
    # sample, and nothing else does: the shipped data passes the contract.
    lines = good_run.result.stdout.splitlines()
    validator = next(line for line in lines if builder.EXPECTATIONS_VALIDATOR in line)
    assert validator.split()[1] == "ran"
    passed, total = validator.split("expectations passed ")[1].split(",")[0].split("/")
    assert int(passed) == int(total) - 1
    assert ", 1 warning: table: expect_table_row_count_to_be_between(" in validator, validator
    gate = next(line for line in lines if builder.EXPECTATIONS_GATE in line)
    assert gate.split()[1:2] == ["ran"] and gate.endswith("passed")
    assert "blessed yes" in good_run.result.stdout and "pushed to" in good_run.result.stdout
    log = good_run.settings.log_path.read_text()
    assert "data contract warning: table: expect_table_row_count_to_be_between" in log


PREFLIGHT_CASES = {
    "missing column": (_drop("fare"), "the header lacks column(s) the spec needs: fare"),
    "numeric column holding text": (
        _set("trip_miles", lambda i: "unknown", every=7),
        "column 'trip_miles' (float in the spec) holds text that is not a number: 'unknown' "
        "on line 2"),
    "duplicated header": (_rename("tips", "fare"),
                          "the header names column 'fare' 2 times (columns 2 and 18); rename them"),
}
RAW_CASES = {
    "empty file": (b"", "the file is empty; expected a header line and data rows"),
    "header only": ((HEADER + "\n").encode(), "the file has a header but no data rows"),
    "binary garbage": (np.random.default_rng(0).bytes(4096),
                       "line 2: not a text CSV file (binary data: a NUL byte at byte 82)"),
    "gzip named .csv": (gzip.compress((HEADER + "\n" + ROW + "\n").encode()),
                        "the file is gzip-compressed but named .csv; name it data.csv.gz"),
    "semicolon-delimited": ((HEADER + "\n" + ROW + "\n").replace(",", ";").encode(),
                            "the file seems to be semicolon-delimited (its header splits into "
                            "19 names on ';' and 1 on ',')"),
}


@pytest.mark.e2e
@pytest.mark.parametrize("case", [*PREFLIGHT_CASES, *RAW_CASES, "missing file"])
def test_unreadable_input_is_refused_in_one_line_before_tfx_starts(good_run, case, tmp_path):
    if case in PREFLIGHT_CASES:
        change, message = PREFLIGHT_CASES[case]
        path = good_run.variant(case.replace(" ", "_"), change)
    elif case in RAW_CASES:
        content, message = RAW_CASES[case]
        path = tmp_path / "data.csv"
        path.write_bytes(content)
    else:
        path, message = tmp_path / "absent" / "data.csv", "file not found"
    result = _run(path, good_run.settings.output_root)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith(f"error: {path.resolve()}: {message}")
    assert "Traceback" not in result.stderr and result.stdout == ""
    good_run.assert_nothing_lost()


CONTRACT_CASES = {
    "nulls far above the bound": (
        _set("pickup_latitude", lambda i: "", every=2),
        # 150 rows emptied, and one of the sample's odd rows was empty already.
        "pickup_latitude: expect_column_values_to_not_be_null(mostly=0.949): 50.3% of rows are "
        "empty (the suite allows 5.1%)"),
    "values out of range": (
        _set("fare", lambda i: "-12.5", every=10),
        "fare: expect_column_values_to_be_between(0, 771, mostly=0.99): 10.0% of values out of "
        "range (the suite allows 1.0%), e.g. -12.5"),
    "a flood of unseen categories": (
        _set("payment_type", lambda i: f"Token {i}", every=3),
        "payment_type: expect_column_values_to_be_in_set(['Cash', 'Credit Card', 'Dispute', "
        "'No Charge', 'Pcard', ... 7 values], mostly=0.95): 33.3% of values outside the set "
        "(the suite allows 5.0%), e.g. 'Token "),
    "the label holding an unknown class": (
        _set("big_tipper", lambda i: "2", every=20),
        "big_tipper: expect_column_values_to_be_in_set([0, 1]): 5.0% of values outside the set, "
        "e.g. 2"),
}


@pytest.fixture(scope="module")
def contract_run(good_run):
    def change(header, rows):
        for change_one, _ in CONTRACT_CASES.values():
            change_one(header, rows)

    return _run(good_run.variant("contract", change), good_run.settings.output_root)


@pytest.mark.e2e
@pytest.mark.parametrize("case", CONTRACT_CASES)
def test_data_breaking_the_contract_stops_before_transform(good_run, contract_run, case):
    assert contract_run.returncode == 1
    error = contract_run.stderr[contract_run.stderr.index("error: "):].splitlines()
    # One line per case, and the label's class shares: in the eval split the unknown class
    # pushes class 1 below its floor, which the label guard reports on a line of its own.
    csv_path = contract_run.args[contract_run.args.index("--csv") + 1]  # the file is named
    assert error[0] == f"error: {csv_path}: data contract broken: {len(CONTRACT_CASES) + 1} " \
                       "critical expectations failed:"
    assert error[1].startswith("  label 'big_tipper' has class shares outside the suite's "
                               "bounds: train 0 ")
    assert any(line.strip().startswith(CONTRACT_CASES[case][1]) for line in error), error
    good_run.assert_nothing_lost()


@pytest.mark.e2e
def test_contract_stop_leaves_a_data_docs_page_and_runs_nothing_downstream(good_run,
                                                                           contract_run):
    docs = next(line for line in contract_run.stderr.splitlines() if "Data Docs: " in line)
    page = Path(docs.split("Data Docs: ")[1]).read_text()
    assert all(column in page for column in ("pickup_latitude", "fare", "payment_type"))
    settings = good_run.settings
    with queries.open_store_context(settings.metadata_path) as store:
        last_run = queries.run_ids(store, settings.full_pipeline_name)[-1]
        executed = {e.node_id: e.state for e in
                    queries.run_executions(store, settings.full_pipeline_name, last_run)}
    assert executed[builder.EXPECTATIONS_GATE] == "failed"
    # The Transform runs beside the checks (pipeline/runners/check_branch.py); nothing that
    # waits for the gates runs.
    assert not {builder.TRAINER, builder.EVALUATOR, builder.PUSHER} & set(executed)
    summary = contract_run.stdout
    assert ", 1 warning, 5 critical" in summary  # the four cases and the label's shares


@pytest.mark.e2e
def test_a_file_to_score_may_hold_anything_in_the_columns_no_stage_reads(good_run):
    """taxi's `tips` and `pickup_census_tract` are role ignore: text, empty cells and values the
    contract would refuse there do not stop scoring (a user's tour: `customer_id` holding
    'C-100' was refused), and the file is scored as given."""
    def change(header, rows):
        for i, row in enumerate(rows):
            row[header.index("tips")] = ["n/a", "", "-12345"][i % 3]
            row[header.index("pickup_census_tract")] = "tract C-100" if i % 2 else ""

    path = good_run.variant("unread", change)
    done = subprocess.run(
        pipeline_command("score", "--dataset", "taxi", "--csv", str(path), "--output-root",
                         str(good_run.settings.output_root)),
        capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    scored = next(line for line in done.stdout.splitlines() if line.startswith("Scored "))
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert scored.startswith(f"Scored {len(rows) - 1:,} rows")
    written = Path(scored.split(": ", 1)[1])
    with written.open(newline="") as f:
        out = list(csv.reader(f))
    assert [r[:len(rows[0])] for r in out] == rows  # the cells as the file has them
