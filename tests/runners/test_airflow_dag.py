"""The pipeline as an Airflow DAG: what Airflow loads from the DAG folder, and a whole DAG run.

Airflow runs in its own venv (.venv-airflow, `make airflow-venv`); these tests ask it through
tests/runners/airflow_probe.py and the `airflow` command, with a temp Airflow home and SQLite DB."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import DATA, pipeline_command, write_csv_sample
from pipeline.config.settings import Settings, from_args
from pipeline.definition import builder
from pipeline.mlmd import queries
from pipeline.runners import single_node
from pipeline.runners.airflow import scheduler

PROBE = Path(__file__).resolve().parent / "airflow_probe.py"
AIRFLOW_PY = scheduler.AIRFLOW_VENV / "bin" / "python"
AIRFLOW = scheduler.AIRFLOW_VENV / "bin" / "airflow"


def probe(settings: Settings, *args: str) -> dict:
    env = scheduler.airflow_env(settings, scheduler.airflow_home(settings))
    done = subprocess.run([str(AIRFLOW_PY), str(PROBE), *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def topology(settings: Settings) -> dict[str, list[str]]:
    """Stage -> upstream stages, straight from create_pipeline."""
    pipeline = builder.create_pipeline(settings, settings.load_spec())
    return {c.id: sorted(u.id for u in c.upstream_nodes) for c in pipeline.components}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    root = tmp_path_factory.mktemp("airflow_dag")
    settings = Settings(dataset="penguins", output_root=root, schedule="15 4 * * 1",
                        schedule_start="2025-03-01", catchup=True, retries=2, retry_delay_s=60)
    scheduler.write_dag_spec(settings)
    return settings, probe(settings)


def test_dag_loads_without_import_errors_and_without_the_pipeline_stack(loaded):
    _, seen = loaded
    assert seen["import_errors"] == {}
    assert list(seen["dags"]) == ["csv2model-penguins"]
    # The Airflow venv only describes the DAG; TFX and MLflow run in the pipeline's venv.
    assert seen["heavy_modules_loaded"] == []


def test_one_task_per_stage_with_the_pipeline_dependencies(loaded):
    settings, seen = loaded
    tasks = seen["dags"][settings.full_pipeline_name]["tasks"]
    expected = topology(settings)
    stages = {k: v for k, v in tasks.items() if k != scheduler.TRACK_TASK}
    assert {k: v["upstream"] for k, v in stages.items()} == expected
    assert builder.EXPECTATIONS_GATE in tasks[builder.TRANSFORM]["upstream"]
    for stage, task in stages.items():
        assert task["command"][3:8] == ["run-node", "--node", stage, "--run-id", "RUN-ID"]
        assert str(settings.output_root) in task["command"]


def test_tracking_runs_last_whatever_happened(loaded):
    settings, seen = loaded
    track = seen["dags"][settings.full_pipeline_name]["tasks"][scheduler.TRACK_TASK]
    assert track["upstream"] == sorted(topology(settings))
    assert track["trigger_rule"] == "all_done"
    assert track["command"][3:6] == ["track-run", "--run-id", "RUN-ID"]


def test_schedule_and_retries_come_from_the_settings(loaded):
    settings, seen = loaded
    dag = seen["dags"][settings.full_pipeline_name]
    assert dag["schedule"] == "15 4 * * 1"
    assert dag["catchup"] is True
    assert dag["start_date"].startswith("2025-03-01T00:00:00")
    assert dag["is_paused_upon_creation"] is False
    assert dag["max_active_runs"] == 1
    assert {(t["retries"], t["retry_delay_s"]) for t in dag["tasks"].values()} == {(2, 60.0)}


def test_schedule_none_means_manual_runs_only():
    assert scheduler.airflow_schedule(Settings(schedule="none")) is None
    assert scheduler.airflow_schedule(Settings(schedule="*/5 * * * *")) == "*/5 * * * *"


def test_task_commands_rebuild_the_same_settings(tmp_path):
    settings = Settings(dataset="penguins", csv=tmp_path / "x.csv", output_root=tmp_path,
                        epochs=3, learning_rate=0.01, catchup=True, schedule="0 * * * *",
                        beam_args=("--a=1", "--b=2"), beam_runner="FlinkRunner")
    assert from_args(scheduler.settings_args(settings)) == settings
    assert from_args(scheduler.settings_args(Settings())) == Settings()


def test_exit_codes_tell_airflow_what_not_to_retry():
    from components.contract.data_errors import DataValidationError
    from pipeline.config.dataset_spec import SpecError
    from pipeline.inputs.csv_preflight import InputError

    wrapped = RuntimeError("executor failed")
    wrapped.__cause__ = DataValidationError("3 expectations failed")
    assert single_node.exit_code(wrapped) == single_node.EXIT_DATA_INVALID
    assert single_node.exit_code(InputError("bad csv")) == single_node.EXIT_INPUT_REFUSED
    assert single_node.exit_code(SpecError("bad spec")) == single_node.EXIT_INPUT_REFUSED
    assert single_node.exit_code(MemoryError()) == single_node.EXIT_FAILED
    assert set(single_node.NO_RETRY_EXIT_CODES) == {2, 3}


def test_a_stage_whose_inputs_are_missing_fails_instead_of_passing(tmp_path):
    """A task run out of order (or after its upstream failed) must not report success."""
    done = subprocess.run(
        pipeline_command("run-node", "--node", builder.TRAINER, "--run-id", "no-such-run",
                         "--dataset", "penguins", "--output-root", str(tmp_path)),
        capture_output=True, text=True, timeout=600)
    assert done.returncode == single_node.EXIT_FAILED, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Trainer did not run in pipeline run 'no-such-run'"), last
    settings = Settings(dataset="penguins", output_root=tmp_path)
    # The tracking task reports this reason for the run.
    assert "did not run" in single_node.error_file(settings, "no-such-run", "Trainer").read_text()


def test_unknown_stage_is_refused(tmp_path):
    done = subprocess.run(
        pipeline_command("run-node", "--node", "Trainerr", "--run-id", "r",
                         "--dataset", "penguins", "--output-root", str(tmp_path)),
        capture_output=True, text=True, timeout=600)
    assert done.returncode == single_node.EXIT_INPUT_REFUSED
    assert "no stage 'Trainerr'" in done.stderr


# ---- a whole DAG run ---------------------------------------------------------------------

def dags_test(settings: Settings) -> tuple[str, dict]:
    """`airflow dags test` in a fresh Airflow home; (run id, states) of the one run it made."""
    env = scheduler.airflow_env(settings, scheduler.airflow_home(settings))
    scheduler.write_dag_spec(settings)
    subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    done = subprocess.run([str(AIRFLOW), "dags", "test", settings.full_pipeline_name,
                           "2025-06-01"], env=env, capture_output=True, text=True, timeout=1800)
    runs = probe(settings, "--runs", settings.full_pipeline_name)
    assert len(runs) == 1, done.stdout[-3000:] + done.stderr[-3000:]
    [(run_id, run)] = runs.items()
    return run_id, run


def mlflow_runs(settings: Settings, run_id: str) -> tuple[list, list]:
    """(parent runs, stage runs) that MLflow has for one pipeline run."""
    import mlflow

    from pipeline.tracking import pipeline_runs

    client = mlflow.MlflowClient(pipeline_runs.tracking_uri(settings))
    experiment = client.get_experiment_by_name(settings.full_pipeline_name)
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.`{pipeline_runs.TAG_PIPELINE_RUN}` = '{run_id}'")
    parents = [r for r in runs if pipeline_runs.TAG_PARENT not in r.data.tags]
    return parents, [r for r in runs if r not in parents]


@pytest.mark.e2e
def test_refused_input_fails_the_run_at_once_and_is_tracked(tmp_path):
    """A refused input is not retried, the stages after it do not run, and MLflow still gets
    the run, FAILED, with the reason."""
    from pipeline.tracking import pipeline_runs

    sample = write_csv_sample(DATA / "taxi" / "data.csv", tmp_path / "input" / "data.csv", 50)
    lines = sample.read_text().splitlines()
    sample.write_text("\n".join([lines[0].replace("fare", "fair")] + lines[1:]) + "\n")
    settings = Settings(dataset="taxi", csv=sample, output_root=tmp_path / "outputs",
                        retries=3, retry_delay_s=1)
    run_id, run = dags_test(settings)
    assert run["state"] == "failed"
    assert run["tasks"][builder.EXAMPLE_GEN] == "failed"
    assert run["tries"][builder.EXAMPLE_GEN] == 1  # not retried, though retries=3
    assert run["tasks"][builder.TRANSFORM] == "upstream_failed"
    assert run["tasks"][scheduler.TRACK_TASK] == "failed"  # tracked, then failed the run
    parents, stages = mlflow_runs(settings, run_id)
    [parent] = parents
    assert parent.info.status == "FAILED"
    # ImportSchemaGen does not need the CSV: it ran, and is tracked as a stage of the run.
    assert run["tasks"][builder.SCHEMA_IMPORTER] == "success"
    assert [r.data.tags["tfx.node_id"] for r in stages] == [builder.SCHEMA_IMPORTER]
    assert "CsvExampleGen: InputError" in parent.data.tags[pipeline_runs.TAG_ERROR]
    assert "fare" in parent.data.tags[pipeline_runs.TAG_ERROR]


@pytest.mark.e2e
def test_dag_run_on_a_taxi_sample_runs_every_stage_pushes_and_tracks(tmp_path):
    sample = write_csv_sample(DATA / "taxi" / "data.csv", tmp_path / "input" / "data.csv", 500)
    # As in test_pipeline_e2e: 500 rows reach AUC ~0.93, short of the production bar. Beam
    # in_memory: this test is about the orchestration; Beam's worker processes would only add
    # their start-up to every Beam task (test_pipeline_e2e runs the default mode).
    settings = Settings(dataset="taxi", csv=sample, output_root=tmp_path / "outputs",
                        min_auc=0.8, retries=0, beam_mode="in_memory")
    run_id, run = dags_test(settings)
    assert run["state"] == "success"
    assert set(run["tasks"].values()) == {"success"}
    assert set(run["tasks"]) == set(topology(settings)) | {scheduler.TRACK_TASK}

    # Every stage ran in one TFX run, named after the Airflow run.
    with queries.open_store_context(settings.metadata_path) as store:
        executions = queries.run_executions(store, settings.full_pipeline_name, run_id)
    states = {e.node_id: e.state for e in executions}
    assert states == {node: "ran" for node in topology(settings)}

    pushed = [p for p in settings.serving_dir.iterdir() if p.is_dir()]
    assert len(pushed) == 1 and (pushed[0] / "saved_model.pb").exists()

    parents, stages = mlflow_runs(settings, run_id)
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert {r.data.tags["tfx.node_id"] for r in stages} == set(topology(settings))
