"""The pipeline as an Airflow DAG: what Airflow loads from the DAG folder, the check that skips a
run whose inputs did not change, and whole DAG runs.

Airflow runs in its own venv (.venv-airflow, `make airflow-venv`); these tests ask it through
tests/runners/airflow_probe.py and the `airflow` command, with a temp Airflow home and SQLite DB."""
from __future__ import annotations

import io
import json
import subprocess
import time
from pathlib import Path

import pytest

from conftest import DATA, pipeline_command, write_csv_sample
from pipeline.config.settings import Settings, from_args, settings_args
from pipeline.definition import builder
from pipeline.mlmd import queries
from pipeline.runners import last_run, single_node, warm_worker
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


@pytest.fixture(autouse=True)
def _no_warm_worker_left(tmp_path):
    """The DAG runs' tasks go through the warm worker (warm_worker.py): stop it after the test
    instead of leaving it to its idle time."""
    yield
    for root in (tmp_path, tmp_path / "outputs"):
        warm_worker.stop(root)


def served_by_the_warm_worker(settings: Settings) -> str:
    """What the output root's warm worker logged (its tasks), one log per worker."""
    return "".join(log.read_text(errors="replace") for log in
                   (settings.output_root / warm_worker.FOLDER).glob("*.log"))


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
    stages = {k: v for k, v in tasks.items()
              if k not in (scheduler.TRACK_TASK, scheduler.CHECK_TASK)}
    assert {k: [u for u in v["upstream"] if u != scheduler.CHECK_TASK]
            for k, v in stages.items()} == expected
    assert builder.EXPECTATIONS_GATE in tasks[builder.TRAINER]["upstream"]
    assert builder.EXPECTATIONS_GATE not in tasks[builder.TRANSFORM]["upstream"]  # in parallel
    for stage, task in stages.items():
        assert task["command"][3:8] == ["run-node", "--node", stage, "--run-id", "RUN-ID"]
        assert str(settings.output_root) in task["command"]


def test_the_input_check_runs_first_and_every_stage_after_it(loaded):
    settings, seen = loaded
    tasks = seen["dags"][settings.full_pipeline_name]["tasks"]
    check = tasks[scheduler.CHECK_TASK]
    assert check["upstream"] == []
    assert check["command"][3:6] == ["check-inputs", "--run-id", "RUN-ID"]
    assert str(settings.output_root) in check["command"]
    assert check["skip_exit_codes"] == [single_node.EXIT_UP_TO_DATE]
    # Downstream of the check, directly or through other stages: skipping it skips them all.
    downstream = {scheduler.CHECK_TASK}
    for _ in tasks:
        downstream |= {t for t, task in tasks.items() if set(task["upstream"]) & downstream}
    assert downstream == set(tasks)
    assert all(task["trigger_rule"] == "all_success" for t, task in tasks.items()
               if t != scheduler.TRACK_TASK)


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
    assert from_args(settings_args(settings)) == settings
    assert from_args(settings_args(Settings())) == Settings()


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


# ---- the input check: is there anything to run? -------------------------------------------

HEAVY = ("tensorflow", "tfx", "great_expectations", "mlflow", "apache_beam")


def check_inputs(settings: Settings, run_id: str) -> tuple[int, str, list[str]]:
    """The DAG's first task as Airflow runs it: (exit code, its last line, the heavy packages it
    imported, from `python -X importtime`)."""
    command = pipeline_command("check-inputs", "--run-id", run_id,
                               *settings_args(settings))
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True,
                          text=True, timeout=120)
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert imported, done.stderr[-2000:]  # -X importtime did report
    out = (done.stdout.strip().splitlines() or [""])[-1]
    return done.returncode, out, sorted(imported & set(HEAVY))


def test_check_inputs_skips_identical_inputs_without_importing_tensorflow(tmp_path):
    import dataclasses

    sample = write_csv_sample(DATA / "taxi" / "data.csv", tmp_path / "input" / "data.csv", 50)
    settings = Settings(dataset="taxi", csv=sample, output_root=tmp_path / "outputs")

    # Nothing recorded yet: the stages run; the inputs as the run starts are kept for the run.
    code, out, heavy = check_inputs(settings, "run-1")
    assert (code, heavy) == (0, []), out
    assert out == "Running the stages: no successful run recorded yet."
    kept = single_node.load_inputs(settings, "run-1")
    assert kept == last_run.fingerprint(settings, settings.load_spec())

    # What track-run records after that run succeeded (and the ML Metadata it ran with).
    settings.metadata_path.parent.mkdir(parents=True, exist_ok=True)
    settings.metadata_path.touch()
    last_run.record(settings, last_run.LastRun(
        fingerprint=kept, tfx_run_id="run-1", finished=time.time(), mlflow_run_id="m-1",
        model="csv2model-taxi version 3", champion=True, blessed=True))
    code, out, heavy = check_inputs(settings, "run-2")
    assert (code, heavy) == (single_node.EXIT_UP_TO_DATE, []), out
    assert out.startswith("Up to date: ") and "run run-1 of " in out and "MLflow run m-1" in out
    assert "model csv2model-taxi version 3 (champion)" in out
    assert single_node.load_inputs(settings, "run-2") is None

    # One byte of the CSV: the stages run; the same bytes back: up to date again.
    original = sample.read_bytes()
    at = original.index(b"\n") + 1
    while not original[at:at + 1].isdigit():
        at += 1
    digit = original[at:at + 1]
    sample.write_bytes(original[:at] + (b"1" if digit != b"1" else b"2") + original[at + 1:])
    code, out, heavy = check_inputs(settings, "run-3")
    assert (code, heavy) == (0, []), out
    assert out.startswith("Running the stages: csv changed since run run-1 of "), out
    sample.write_bytes(original)
    assert check_inputs(settings, "run-4")[0] == single_node.EXIT_UP_TO_DATE

    # A setting that shapes the model, and --force.
    code, out, _ = check_inputs(dataclasses.replace(settings, epochs=settings.epochs + 1), "run-5")
    assert code == 0 and out.startswith("Running the stages: settings changed since run run-1")
    code, out, _ = check_inputs(dataclasses.replace(settings, force=True), "run-6")
    assert (code, out) == (0, "Running the stages: --force.")


def test_check_inputs_refuses_a_missing_spec_without_retries(tmp_path):
    done = subprocess.run(
        pipeline_command("check-inputs", "--run-id", "r", "--dataset", "no-such-dataset",
                         "--output-root", str(tmp_path)),
        capture_output=True, text=True, timeout=120)
    assert done.returncode == single_node.EXIT_INPUT_REFUSED, done.stderr[-2000:]
    assert done.returncode in single_node.NO_RETRY_EXIT_CODES
    settings = Settings(dataset="no-such-dataset", output_root=tmp_path)
    # The tracking task reports it as the run's reason.
    assert "SpecError" in single_node.error_file(settings, "r", scheduler.CHECK_TASK).read_text()


# ---- a whole DAG run ---------------------------------------------------------------------

def dags_test(settings: Settings, date: str = "2025-06-01") -> tuple[str, dict]:
    """`airflow dags test` for one logical date; (run id, states) of the run it made. The first
    call makes the Airflow home; run["wall_s"] is how long `airflow dags test` took."""
    env = scheduler.airflow_env(settings, scheduler.airflow_home(settings))
    scheduler.write_dag_spec(settings)
    subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    started = time.monotonic()
    done = subprocess.run([str(AIRFLOW), "dags", "test", settings.full_pipeline_name, date],
                          env=env, capture_output=True, text=True, timeout=1800)
    wall_s = time.monotonic() - started
    runs = {run_id: run for run_id, run in probe(settings, "--runs", settings.full_pipeline_name)
            .items() if f"__{date}T" in run_id}
    assert len(runs) == 1, done.stdout[-3000:] + done.stderr[-3000:]
    [(run_id, run)] = runs.items()
    run["wall_s"] = wall_s
    run["log"] = done.stdout[-5000:] + done.stderr[-3000:]
    print(f"airflow dags test {date}: {wall_s:.1f} s, run {run['state']}")
    return run_id, run


def mlflow_runs(settings: Settings, run_id: str) -> tuple[list, list]:
    """(parent runs, stage runs) that MLflow has for one pipeline run."""
    import mlflow

    from pipeline.tracking import mlflow_store, run_logging

    client = mlflow.MlflowClient(mlflow_store.tracking_uri(settings))
    experiment = client.get_experiment_by_name(settings.full_pipeline_name)
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.`{run_logging.TAG_PIPELINE_RUN}` = '{run_id}'")
    parents = [r for r in runs if run_logging.TAG_PARENT not in r.data.tags]
    return parents, [r for r in runs if r not in parents]


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory):
    """One output root for this module's DAG runs and task commands, as `make airflow` serves
    every DAG from one: one Airflow database, and one warm worker whose imports (~8 s) the
    first DAG run pays for and the later runs' tasks reuse. Each test keeps to its own dataset
    folder or its own run ids there. The worker is stopped at the end."""
    root = tmp_path_factory.mktemp("airflow_runs") / "outputs"
    yield root
    warm_worker.stop(root)


@pytest.fixture(scope="module")
def taxi_dag_run(shared_root):
    """(settings, run id, run) of one whole DAG run on a taxi sample, made once for the tests
    that read it (the retry test re-runs it from TFX's cache instead of making its own run)."""
    sample = write_csv_sample(DATA / "taxi" / "data.csv",
                              shared_root.parent / "input" / "data.csv", 500)
    # As in test_pipeline_e2e: 500 rows reach AUC ~0.93, short of the production bar. Beam
    # in_memory: this test is about the orchestration; Beam's worker processes would only add
    # their start-up to every Beam task (test_pipeline_e2e runs the default mode). Three epochs:
    # the model only has to pass min_auc to be pushed (AUC 0.96 after 3, as after the 10 that
    # early stopping ran by default; the fit's seconds, not the orchestration, grow with epochs).
    settings = Settings(dataset="taxi", csv=sample, output_root=shared_root,
                        min_auc=0.8, retries=0, beam_mode="in_memory", epochs=3)
    run_id, run = dags_test(settings)
    return settings, run_id, run


@pytest.mark.e2e
def test_dag_run_on_a_taxi_sample_runs_every_stage_pushes_and_tracks(taxi_dag_run):
    settings, run_id, run = taxi_dag_run
    assert run["state"] == "success", run["log"]
    assert set(run["tasks"].values()) == {"success"}
    assert set(run["tasks"]) == set(topology(settings)) | {scheduler.CHECK_TASK,
                                                          scheduler.TRACK_TASK}
    served = served_by_the_warm_worker(settings)  # check_inputs started it for the stages
    for task in (f"run-node {builder.TRAINER}", f"run-node {builder.EVALUATOR}", "track-run"):
        assert f"task {task}: child" in served, served[-3000:]

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

    # Recorded as the last success, with the inputs as the run started, as `make pipeline` does.
    recorded = last_run.load(settings)
    assert recorded is not None
    assert recorded.tfx_run_id == run_id
    assert recorded.fingerprint == single_node.load_inputs(settings, run_id)
    assert recorded.mlflow_run_id == parents[0].info.run_id
    assert recorded.model.startswith(settings.registered_model_name + " version ")
    assert recorded.blessed and Path(recorded.pushed_to) == pushed[0]

    # The next scheduled run, nothing changed: the check skips every stage and the tracking.
    changed = [part for part, value in last_run.fingerprint(settings, settings.load_spec())
               .items() if recorded.fingerprint[part] != value]
    if changed == ["code"]:  # someone edited pipeline/ or components/ while the DAG ran
        pytest.skip("the code changed during the first DAG run: the second would rightly run")
    assert changed == []
    again_id, again = dags_test(settings, "2025-06-02")
    seen = single_node.load_inputs(settings, again_id)  # kept only when the check let it run
    if seen is not None and [part for part, value in seen.items()
                             if recorded.fingerprint[part] != value] == ["code"]:
        # The check ran later than the comparison above: an edit in between (a shared
        # working tree) rightly makes the second run run. Never the case on a fresh clone.
        pytest.skip("the code changed before the second DAG run's check: it rightly ran")
    assert again["tasks"] == {task: "skipped" for task in run["tasks"]}, again["log"]
    assert again["state"] == "success"
    with queries.open_store_context(settings.metadata_path) as store:
        assert again_id not in queries.run_ids(store, settings.full_pipeline_name)
    assert mlflow_runs(settings, again_id) == ([], [])
    assert last_run.load(settings) == recorded


@pytest.mark.e2e
def test_a_retryable_failure_is_retried(taxi_dag_run, monkeypatch):
    """The other side of the refused input below: a failure that may pass next time (here the
    MLflow server is unreachable when the run is tracked) is retried as configured.

    The taxi run again with --force: check-inputs lets the stages run, and every stage comes
    from TFX's cache, so the tracking is what fails, after a whole good run, in seconds rather
    than a whole run of its own (this test made a penguins run until session 26: 37 s)."""
    settings, _, _ = taxi_dag_run
    recorded = last_run.load(settings)  # the taxi run's (or the next one's, had it to run)
    assert recorded is not None
    # Every task inherits this environment; nothing listens on port 9 (discard) here.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    forced = settings.replace(force=True, retries=1, retry_delay_s=1)
    run_id, run = dags_test(forced, "2025-06-03")
    assert run["state"] == "failed", run["log"]
    assert run["tasks"][builder.PUSHER] == "success"  # every stage ran (or came from cache)
    assert run["tasks"][scheduler.TRACK_TASK] == "failed"
    assert run["tries"][scheduler.TRACK_TASK] == 2  # tried, then retried once (retries=1)
    # An untracked run is not the last success: the last success is still the first run.
    assert last_run.load(settings) == recorded
    assert run_id != recorded.tfx_run_id


@pytest.mark.e2e
def test_refused_input_fails_the_run_at_once_and_is_tracked(shared_root, tmp_path):
    """A refused input is not retried, the stages after it do not run, and MLflow still gets
    the run, FAILED, with the reason. Penguins, so that its dataset folder (ML Metadata, MLflow
    store, last success) is its own beside the taxi run's, in the shared root whose warm worker
    and Airflow database the taxi run made (until session 26 it was a taxi run in a root of its
    own: 19 s, most of it the worker's imports)."""
    from pipeline.tracking import run_logging

    sample = write_csv_sample(DATA / "penguins" / "data.csv", tmp_path / "input" / "data.csv",
                              50)
    lines = sample.read_text().splitlines()
    assert "flipper_length_mm" in lines[0]
    sample.write_text("\n".join([lines[0].replace("flipper_length_mm", "flipper_mm")]
                                 + lines[1:]) + "\n")
    settings = Settings(dataset="penguins", csv=sample, output_root=shared_root,
                        retries=3, retry_delay_s=1)
    run_id, run = dags_test(settings)
    assert run["state"] == "failed"
    assert run["tasks"][builder.EXAMPLE_GEN] == "failed"
    assert run["tries"][builder.EXAMPLE_GEN] == 1  # not retried, though retries=3
    assert run["tasks"][builder.TRANSFORM] == "upstream_failed"
    assert run["tasks"][scheduler.TRACK_TASK] == "failed"  # tracked, then failed the run
    assert run["tasks"][scheduler.CHECK_TASK] == "success"  # new inputs: the stages ran
    assert last_run.load(settings) is None  # a failed run is not the last success
    parents, stages = mlflow_runs(settings, run_id)
    [parent] = parents
    assert parent.info.status == "FAILED"
    # ImportSchemaGen does not need the CSV: it ran, and is tracked as a stage of the run.
    assert run["tasks"][builder.SCHEMA_IMPORTER] == "success"
    assert [r.data.tags["tfx.node_id"] for r in stages] == [builder.SCHEMA_IMPORTER]
    assert "CsvExampleGen: InputError" in parent.data.tags[run_logging.TAG_ERROR]
    assert "flipper_length_mm" in parent.data.tags[run_logging.TAG_ERROR]


# ---- one task's command on its own ---------------------------------------------------------

@pytest.mark.e2e  # an Airflow task's CLI, which compiles the pipeline with TFX (in the
# warm worker the DAG runs above left in shared_root: a second, not the ~8 s of its imports)
def test_a_stage_whose_inputs_are_missing_fails_instead_of_passing(shared_root):
    """A task run out of order (or after its upstream failed) must not report success."""
    done = subprocess.run(
        pipeline_command("run-node", "--node", builder.TRAINER, "--run-id", "no-such-run",
                         "--dataset", "penguins", "--output-root", str(shared_root)),
        capture_output=True, text=True, timeout=600)
    assert done.returncode == single_node.EXIT_FAILED, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Trainer did not run in pipeline run 'no-such-run'"), last
    settings = Settings(dataset="penguins", output_root=shared_root)
    # The tracking task reports this reason for the run.
    assert "did not run" in single_node.error_file(settings, "no-such-run", "Trainer").read_text()


@pytest.mark.e2e  # an Airflow task's CLI, which compiles the pipeline with TFX (in the
# warm worker the DAG runs above left in shared_root: a second, not the ~8 s of its imports)
def test_unknown_stage_is_refused(shared_root):
    done = subprocess.run(
        pipeline_command("run-node", "--node", "Trainerr", "--run-id", "r",
                         "--dataset", "penguins", "--output-root", str(shared_root)),
        capture_output=True, text=True, timeout=600)
    assert done.returncode == single_node.EXIT_INPUT_REFUSED
    assert "no stage 'Trainerr'" in done.stderr


def test_serving_airflow_leaves_the_callers_sigterm_handler_and_no_open_log(tmp_path):
    """`serve` turns SIGTERM into Ctrl-C only while it runs. A stand-in `airflow` that exits at
    once (the real one needs minutes to start) makes serve return "stopped unexpectedly"."""
    import os
    import signal

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "airflow").write_text("#!/bin/sh\nexit 0\n")
    (venv / "bin" / "airflow").chmod(0o755)
    settings = Settings(dataset="penguins", output_root=tmp_path / "out", airflow_port=1)

    def callers_handler(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, callers_handler)
    try:
        open_fds = set(os.listdir("/proc/self/fd"))
        out = io.StringIO()
        assert scheduler.serve(settings, venv=venv, out=out) == 1
        assert "Airflow stopped unexpectedly" in out.getvalue()
        assert signal.getsignal(signal.SIGTERM) is callers_handler
        assert set(os.listdir("/proc/self/fd")) == open_fds
    finally:
        signal.signal(signal.SIGTERM, previous)
