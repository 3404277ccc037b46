"""What `python -m pipeline` exits with, and where a failure's trace goes: 2 only for refused
input or spec, 1 for a failed run with the whole traceback in the log file the error line
names."""
from __future__ import annotations

import pytest

from components.contract.data_errors import DataValidationError
from pipeline.cli import main
from pipeline.config.dataset_spec import SpecError
from pipeline.config.settings import Settings
from pipeline.inputs.csv_preflight import InputError


def _raise(error: BaseException):
    def work():
        raise error
    return work


def _tracking_failed_after_a_good_run():
    try:
        raise ConnectionError("store unreachable")
    except ConnectionError as e:
        raise RuntimeError("MLflow tracking failed") from e


@pytest.mark.parametrize("error, code", [
    (SpecError("spec data/x/spec.yaml: no label"), 2),
    (InputError("data.csv: column 'fare' is missing"), 2),
    (KeyboardInterrupt(), 130),
])
def test_refused_input_exits_2_and_ctrl_c_130(tmp_path, capsys, error, code):
    settings = Settings(dataset="penguins", output_root=tmp_path)
    assert main._refusing_bad_input(settings, _raise(error)) == code
    assert capsys.readouterr().err.splitlines()[0] in (f"error: {error}", "interrupted")


def test_a_failed_run_exits_1_with_its_whole_trace_in_the_named_log(tmp_path, capsys):
    settings = Settings(dataset="penguins", output_root=tmp_path)
    assert main._refusing_bad_input(settings, _tracking_failed_after_a_good_run) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: MLflow tracking failed", f"  full log: {settings.log_path}"]
    log = settings.log_path.read_text()
    # Both exceptions of the chain, with the frames that raised them.
    assert "ConnectionError: store unreachable" in log
    assert "RuntimeError: MLflow tracking failed" in log
    assert "in _tracking_failed_after_a_good_run" in log


def test_data_that_failed_validation_inside_tfx_is_a_failed_run_named_by_its_cause(tmp_path,
                                                                                    capsys):
    """TFX wraps the executor's error: the line shows the data error after the file it is about,
    the exit is 1 (the run started and failed), not 2."""
    def work():
        try:
            raise DataValidationError("AnomaliesGate: column 'island' has 'Atlantis'")
        except DataValidationError as e:
            raise RuntimeError("component AnomaliesGate failed") from e

    settings = Settings(dataset="penguins", output_root=tmp_path)
    assert main._refusing_bad_input(settings, work) == 1
    assert capsys.readouterr().err.splitlines()[0] == \
        f"error: {settings.load_spec().csv_path}: AnomaliesGate: column 'island' has 'Atlantis'"


def test_a_bug_while_handling_a_refused_input_is_a_failure_not_a_refusal(tmp_path, capsys):
    """An error raised inside an `except SpecError:` block is not caused by the spec: exit 1
    with its own message, not the spec's."""
    def work():
        try:
            raise SpecError("spec data/x/spec.yaml: no label")
        except SpecError:
            raise KeyError("internal")  # noqa: B904 - the point of the test

    settings = Settings(dataset="penguins", output_root=tmp_path)
    assert main._refusing_bad_input(settings, work) == 1
    assert capsys.readouterr().err.splitlines()[0] == "error: 'internal'"

    from pipeline.runners import single_node

    try:
        work()
    except KeyError as e:
        assert single_node.exit_code(e) == single_node.EXIT_FAILED  # Airflow retries it


@pytest.mark.parametrize("command", [
    ["run"], ["score", "--csv", "data.csv"], ["compile-kfp"], ["airflow-spec"],
    ["check-inputs", "--run-id", "r1"], ["run-node", "--run-id", "r1", "--node", "CsvExampleGen"],
], ids=lambda command: command[0])
def test_a_dataset_without_its_schema_is_refused_saying_how_to_draft_one(tmp_path, capsys,
                                                                         command):
    """A dataset folder copied without schema/ failed after the run's header with
    `[Errno 2] No such file or directory: .../schema.pbtxt`; so did the commands that build the
    pipeline for Airflow and Kubeflow (check-inputs went on, and its DAG's first stage failed)."""
    import shutil

    from conftest import DATA

    data = tmp_path / "data"
    shutil.copytree(DATA / "penguins", data / "penguins",
                    ignore=shutil.ignore_patterns("schema"))
    code = main.main([command[0], "--dataset", "penguins", "--data-root", str(data),
                      "--output-root", str(tmp_path / "out"), *command[1:]])
    err = capsys.readouterr().err
    assert code == 2, err
    # The data root is not make's default: the make command says which one to use.
    line = (f"error: schema {data / 'penguins' / 'schema' / 'schema.pbtxt'}: file not found; "
            f"draft one with `make schema DATASET=penguins ARGS='--data-root {data}'`, review it "
            "and copy it there (or draft the whole dataset with `make init`)")
    if command[0] in ("check-inputs", "run-node"):
        # An Airflow task: its log keeps the trace above the line, and the error file the run's
        # tracking task reports holds the refusal (as for a missing spec).
        from pipeline.config.settings import Settings
        from pipeline.runners import single_node

        assert err.splitlines()[-1] == line, err
        task = "check_inputs" if command[0] == "check-inputs" else "CsvExampleGen"
        settings = Settings(dataset="penguins", data_root=data, output_root=tmp_path / "out")
        assert single_node.error_file(settings, "r1", task).read_text() == (
            "SpecError: " + line.removeprefix("error: ") + "\n")
    else:
        assert err.splitlines() == [line], err
    assert not (tmp_path / "out" / "penguins" / "pipeline_root").exists()


def _with_a_broken_row(tmp_path, case: str):
    """The penguins CSV with its line 5 broken: a ninth field, or a quote never closed."""
    from conftest import DATA

    lines = (DATA / "penguins" / "data.csv").read_text().splitlines()
    lines[4] = lines[4] + ",extra" if case == "extra field" else lines[4].replace(",", ',"', 1)
    path = tmp_path / "new.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, len(lines)


@pytest.mark.parametrize("case, problem", [
    ("extra field", "the row has 9 fields, the header has 8"),
    ("open quote", "a quote in this row is never closed: every line after it, to the end of the "
                   "file (line {last}), would be read as one value; close it (a quote inside a "
                   'value is written twice: "")'),
], ids=["extra field", "open quote"])
@pytest.mark.parametrize("command", ["run", "score", "init"])
def test_a_row_that_is_not_csv_is_refused_in_one_line_naming_the_file_and_its_line(
        tmp_path, capsys, command, case, problem):
    """`run` and `score` said `line 345 has 2 fields` for a quote opened on line 5 (the line
    the row ended on); `init` said `CSV parse error: Expected 8 columns, got 9: Adelie,...`."""
    path, last = _with_a_broken_row(tmp_path, case)
    given = {"run": ["run", "--dataset", "penguins", "--csv", str(path)],
             "score": ["score", "--dataset", "penguins", "--csv", str(path)],
             "init": ["init", "--csv", str(path), "--label", "species",
                      "--data-root", str(tmp_path / "data")]}[command]
    code = main.main([*given, "--output-root", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.splitlines() == [f"error: {path}: line 5: {problem.format(last=last)}"]
    assert not (tmp_path / "out" / "penguins" / "pipeline_root").exists()
    assert not (tmp_path / "data" / "new").exists()
