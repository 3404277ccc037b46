"""The up-to-date check (pipeline/runners/last_run.py): a run whose inputs are byte-identical
to the last successful run's ends at once; any changed byte in the CSV, spec, schema or suite, a
changed module or setting, or outputs gone since, and the run goes through TFX."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, REPO, pipeline_command
from pipeline.config.settings import Settings
from pipeline.runners import last_run


@pytest.fixture
def recorded(tmp_path):
    """A copy of the penguins dataset, and a last-success record of its current inputs."""
    data_root = tmp_path / "data"
    shutil.copytree(DATA / "penguins", data_root / "penguins")
    settings = Settings(dataset="penguins", data_root=data_root, output_root=tmp_path / "out")
    settings.output_dir.mkdir(parents=True)
    settings.metadata_path.write_bytes(b"")  # the run's ML Metadata is there
    pushed = settings.serving_dir / "123"
    pushed.mkdir(parents=True)
    spec = settings.load_spec()
    last_run.record(settings, last_run.LastRun(
        fingerprint=last_run.fingerprint(settings, spec), tfx_run_id="run-1", finished=0.0,
        mlflow_run_id="abc", model="csv2model-penguins version 1", champion=True, blessed=True,
        pushed_to=str(pushed)))
    return settings


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] = ord(" ") if data[-1] != ord(" ") else ord("\n")
    path.write_bytes(bytes(data))


def test_identical_inputs_are_up_to_date(recorded):
    last = last_run.up_to_date(recorded, recorded.load_spec())
    assert last is not None and last.tfx_run_id == "run-1"
    assert "run run-1" in last.describe() and "version 1 (champion)" in last.describe()


@pytest.mark.parametrize("name", ["data.csv", "spec.yaml", "schema/schema.pbtxt",
                                  "expectations.json"])
def test_a_changed_byte_in_any_input_file_is_not_up_to_date(recorded, name):
    _flip_last_byte(recorded.data_root / "penguins" / name)
    assert last_run.up_to_date(recorded, recorded.load_spec()) is None


@pytest.mark.parametrize("change", [{"epochs": 7}, {"min_accuracy": 0.5},
                                    {"beam_mode": "multi_processing"}, {"train_ratio": 0.8}])
def test_a_changed_setting_is_not_up_to_date(recorded, change):
    settings = recorded.replace(**change)
    assert last_run.up_to_date(settings, settings.load_spec()) is None


def test_ports_and_force_are_not_inputs_but_force_and_until_go_through_tfx(recorded):
    served_elsewhere = recorded.replace(serve_port=6001, mlflow_ui_port=6000)
    assert last_run.up_to_date(served_elsewhere, recorded.load_spec()) is not None
    assert last_run.up_to_date(recorded.replace(force=True), recorded.load_spec()) is None
    assert last_run.up_to_date(recorded.replace(until="Transform"), recorded.load_spec()) is None


def test_another_mlflow_store_is_not_up_to_date(recorded, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9/")
    assert last_run.up_to_date(recorded, recorded.load_spec()) is None


def test_outputs_removed_since_are_not_up_to_date(recorded):
    shutil.rmtree(recorded.serving_dir)
    assert last_run.up_to_date(recorded, recorded.load_spec()) is None


def test_no_metadata_store_is_not_up_to_date(recorded):
    recorded.metadata_path.unlink()
    assert last_run.up_to_date(recorded, recorded.load_spec()) is None


def test_a_changed_module_changes_the_code_hash_but_the_benchmark_does_not(tmp_path):
    for folder in last_run.CODE_FOLDERS + ("requirements",):
        shutil.copytree(REPO / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    before = last_run.code_sha256(tmp_path)
    _flip_last_byte(tmp_path / "pipeline" / "bench" / "report.py")
    assert last_run.code_sha256(tmp_path) == before
    _flip_last_byte(tmp_path / "components" / "transform" / "preprocessing.py")
    changed = last_run.code_sha256(tmp_path)
    assert changed != before
    (tmp_path / "pipeline" / "tracking" / "new_module.py").write_text("X = 1\n")
    assert last_run.code_sha256(tmp_path) != changed
    _flip_last_byte(tmp_path / "requirements" / "lock.txt")
    assert last_run.code_sha256(tmp_path) not in (before, changed)


def test_the_cli_says_up_to_date_in_one_line_without_importing_tensorflow(recorded):
    probe = ("import sys\n"
             "sys.argv = ['pipeline'] + sys.argv[1:]\n"
             "try:\n"
             "    from pipeline.cli.main import main\n"
             "    code = main(sys.argv[1:])\n"
             "finally:\n"
             "    heavy = [m for m in ('tensorflow', 'tfx', 'great_expectations', 'mlflow',\n"
             "                         'apache_beam') if m in sys.modules]\n"
             "    print('HEAVY', heavy)\n"
             "sys.exit(code)\n")
    args = ["run", "--dataset", "penguins", "--data-root", str(recorded.data_root),
            "--output-root", str(recorded.output_root)]
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Up to date: ") and "run run-1" in lines[0]
    assert "csv2model-penguins version 1 (champion)" in lines[0]
    assert lines[1].startswith("Done in ")
    assert "HEAVY []" in lines
    # The real entry point too: exit status 0 and the same line.
    done = subprocess.run(pipeline_command(*args), capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("Up to date: ")


def test_the_contract_imports_are_warmed_when_its_data_or_suite_changed(recorded):
    """The checks' process imports Great Expectations ahead only when the contract's stage
    will run: no earlier success, or the CSV, spec, schema or suite changed. A change of a
    setting alone (an `--epochs` re-run) serves the contract from the cache: no import."""
    from pipeline.runners import local_dag

    spec = recorded.load_spec()
    inputs = last_run.fingerprint(recorded, spec)
    assert local_dag._contract_imports(recorded, inputs) == ()
    changed = recorded.replace(epochs=recorded.epochs + 1)
    assert local_dag._contract_imports(changed, last_run.fingerprint(changed, spec)) == ()
    _flip_last_byte(spec.csv_path)
    assert local_dag._contract_imports(recorded, last_run.fingerprint(recorded, spec)) == \
        local_dag.CONTRACT_IMPORTS == ("great_expectations",)
    last_run.record_path(recorded).unlink()
    assert local_dag._contract_imports(recorded, inputs) == local_dag.CONTRACT_IMPORTS
    assert local_dag._contract_imports(recorded, None) == local_dag.CONTRACT_IMPORTS  # scoring
    # A large file: not ahead (its contract stage is long, the import a small share).
    with open(spec.csv_path, "ab") as f:
        f.truncate(local_dag.WARM_IMPORT_MAX_BYTES + 1)
    assert local_dag._contract_imports(recorded, last_run.fingerprint(recorded, spec)) == ()
    assert local_dag._contract_imports(recorded, None) == ()
