"""`make score` end to end on penguins, and drift between training drops (issue 25).

One penguin training run in a temp output folder (champion version 1), then: a drifted copy
without its label scored like the served model scores it, the drifted column named (one scoring
run for both properties); the labelled file scored and evaluated, no drift named; the drifted
copy stopped when the spec marks the column critical; bad files refused in one line with nothing
written; a training re-run (up to the DriftGate) on a shifted drop whose DriftGate compares it
with the first run's statistics (the resolver's pick, checked in ML Metadata) and reports the
shift.
"""
from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, pipeline_command
from mlflow_runs import clean_env, store_uri
from pipeline.config import stage_names
from pipeline.config.settings import Settings

pytestmark = pytest.mark.e2e

EPOCHS = "6"  # enough for the 0.9 accuracy gate (tests/mlflow_runs.py)
SHIFT_MM = 8.0  # bill length shifted within the contract's range: drift, not a broken contract


def _run(command: str, settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        pipeline_command(command, "--dataset", settings.dataset, "--output-root",
                         str(settings.output_root), *args),
        capture_output=True, text=True, timeout=900, env=clean_env())


def _penguins(tmp: Path, name: str, drop_label: bool = True, shift: float = 0.0) -> Path:
    frame = pd.read_csv(DATA / "penguins" / "data.csv", dtype=str, keep_default_na=False)
    if drop_label:
        frame = frame.drop(columns=["species"])
    if shift:
        frame["bill_length_mm"] = [f"{min(float(v) + shift, 59.6):.1f}" if v else ""
                                   for v in frame["bill_length_mm"]]
    path = tmp / name
    frame.to_csv(path, index=False)
    return path


def _scores(settings: Settings) -> list[Path]:
    folder = settings.output_dir / "scores"
    return sorted(folder.glob("*/predictions.csv")) if folder.exists() else []


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("scoring")
    settings = Settings(dataset="penguins", output_root=root / "out")
    done = _run("run", settings, "--epochs", EPOCHS)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return settings


def _client(settings: Settings):
    from mlflow import MlflowClient

    return MlflowClient(store_uri(settings))


def test_a_drifted_file_without_the_label_is_scored_as_the_served_model_scores_it(
        trained, tmp_path):
    """One scoring run carries two properties (one run instead of two: issue 26's test loop):
    the file has no label (no Evaluator; predictions equal the registered model's) and its
    bill length is shifted (a drift the summary names, column alone, and that does not stop
    the scoring). test_a_labelled_file_is_also_evaluated scores an undrifted file and checks
    that it names no drift."""
    import mlflow

    from pipeline.tracking import registry

    source = _penguins(tmp_path, "new.csv", shift=SHIFT_MM)
    before = _scores(trained)
    done = _run("score", trained, "--csv", str(source))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # The drifted column named, and only it; the file is scored all the same.
    drift = [line.strip() for line in done.stdout.splitlines()
             if line.strip().startswith("drift: ")]
    assert drift and drift[0].startswith("drift: bill_length_mm Jensen–Shannon "), done.stdout
    assert drift[0].endswith("> 0.10")
    assert not any("island" in line or "body_mass_g" in line for line in drift)  # only it
    # One summary line per stage, as `make pipeline` prints them (no Evaluator: no label).
    shown = [line.split()[0] for line in done.stdout.splitlines()
             if line.startswith("  ") and line.split()]
    for stage in stage_names.scoring_stages(labelled=False):
        assert stage in shown, done.stdout
    assert stage_names.EVALUATOR not in shown
    [scored] = sorted(set(_scores(trained)) - set(before))
    assert str(scored) in done.stdout

    with open(source, newline="") as f:
        rows_in = list(csv.reader(f))
    with open(scored, newline="") as f:
        rows_out = list(csv.reader(f))
    header = rows_in[0]
    classes = ["Adelie", "Chinstrap", "Gentoo"]
    assert rows_out[0] == header + ["prediction"] + [f"probability_{c}" for c in classes]
    # The input columns under their names, cell for cell, in the file's row order.
    assert [row[:len(header)] for row in rows_out] == rows_in

    mlflow.set_tracking_uri(store_uri(trained))
    try:
        model = mlflow.pyfunc.load_model(registry.model_uri(trained.registered_model_name))
    finally:
        mlflow.set_tracking_uri(None)
    numeric = {c.name for c in model.metadata.get_input_schema().inputs
               if c.type.name == "double"}
    inputs = registry.feature_rows(source, header, numeric)
    expected = model.predict(inputs)
    got = pd.read_csv(scored)
    for c in classes:
        np.testing.assert_allclose(got[f"probability_{c}"], expected[f"probability_{c}"],
                                   atol=1e-5)
    assert list(got["prediction"]) == list(expected["class"])

    # The MLflow run of the scoring, in its own experiment.
    client = _client(trained)
    experiment = client.get_experiment_by_name(trained.full_pipeline_name + "-score")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.data.metrics["rows"] == len(rows_in) - 1
    assert run.data.params["model.version"] == "1"
    assert run.data.tags["scores.path"] == str(scored)
    assert run.data.metrics["drift/bill_length_mm"] > 0.1


def test_a_labelled_file_is_also_evaluated(trained):
    done = _run("score", trained, "--csv", str(DATA / "penguins" / "data.csv"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # The training file itself: nothing drifted against the champion's training statistics
    # (the counterpart of the drifted file above, which names its column).
    assert not [line for line in done.stdout.splitlines() if line.strip().startswith("drift: ")
                ], done.stdout
    evaluator = [line for line in done.stdout.splitlines()
                 if line.split()[:1] == [stage_names.EVALUATOR]]
    assert evaluator and "accuracy" in evaluator[0], done.stdout
    # Nothing is blessed or pushed when scoring: the line judges the champion on these rows.
    assert "meets its gates on this file" in evaluator[0] and "blessed" not in evaluator[0]
    client = _client(trained)
    experiment = client.get_experiment_by_name(trained.full_pipeline_name + "-score")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    # TFMA's metrics on every row of the file (train and eval rows alike).
    assert runs[0].data.metrics["eval/example_count"] == 344
    assert 0.5 < runs[0].data.metrics["eval/sparse_categorical_accuracy"] <= 1


def test_a_drifted_file_stops_when_the_spec_marks_the_column_critical(trained, tmp_path):
    """The same drifted file as the first test (which scores it, naming the column) stops with
    status 1 once spec.yaml marks that column critical, and writes no scores."""
    drifted = _penguins(tmp_path, "drifted.csv", shift=SHIFT_MM)
    before = _scores(trained)
    data_root = tmp_path / "data"
    shutil.copytree(DATA / "penguins", data_root / "penguins")
    with open(data_root / "penguins" / "spec.yaml", "a") as spec:
        spec.write("drift:\n  critical: [bill_length_mm]\n")
    done = _run("score", trained, "--csv", str(drifted), "--data-root", str(data_root))
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "drift: bill_length_mm Jensen–Shannon" in done.stderr
    assert "(critical)" in done.stderr
    # The FAILED line says what stopped it (it had no figure).
    gate = [line for line in done.stdout.splitlines() if line.strip().startswith("DriftGate")]
    assert gate and "FAILED" in gate[0] and "stopped the run: " in gate[0] \
        and "bill_length_mm (critical)" in gate[0], done.stdout[-3000:]
    assert _scores(trained) == before  # nothing written
    # The PredictionsWriter runs beside the checks, into the pipeline root: the run says
    # that its file was not published.
    assert f"Nothing published under {trained.output_dir / 'scores'}/" in done.stdout
    # The stopped gate's figures on the failed MLflow run (they were read from its published
    # output, which a failed execution has none of).
    client = _client(trained)
    experiment = client.get_experiment_by_name(trained.full_pipeline_name + "-score")
    failed = client.search_runs([experiment.experiment_id],
                                filter_string="attributes.status = 'FAILED'",
                                order_by=["attributes.start_time DESC"])[0]
    assert failed.data.metrics["drift/bill_length_mm"] > 0.1
    assert failed.data.metrics["drift/drifted_columns"] == 1
    assert [f.path for f in client.list_artifacts(failed.info.run_id)
            if f.path.startswith("drift-")], "the gate's report"


@pytest.mark.parametrize("change, column", [
    (lambda f: f.drop(columns=["sex"]), "sex"),  # a feature missing
    (lambda f: f.assign(colour="red"), "colour"),  # a column the model never saw
    (lambda f: f.assign(body_mass_g=["heavy"] + list(f["body_mass_g"][1:])), "body_mass_g"),
    (lambda f: f.assign(flipper_length_mm=["181.5"] + list(f["flipper_length_mm"][1:])),
     "flipper_length_mm"),  # the model reads whole numbers there
])
def test_a_bad_file_stops_in_one_line_and_writes_nothing(trained, tmp_path, change, column):
    frame = pd.read_csv(DATA / "penguins" / "data.csv", dtype=str, keep_default_na=False)
    path = tmp_path / "bad.csv"
    change(frame.drop(columns=["species"])).to_csv(path, index=False)
    before = _scores(trained)
    done = _run("score", trained, "--csv", str(path))
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    error = done.stderr.strip().splitlines()
    assert len(error) == 1 and str(path) in error[0] and f"'{column}'" in error[0], error
    assert _scores(trained) == before


def test_a_training_rerun_on_a_shifted_drop_reports_drift(trained, tmp_path):
    from pipeline.mlmd import queries
    from pipeline.tracking import lineage

    first = lineage.tfx_run_ids(trained)[-1]
    shifted = _penguins(tmp_path, "drop2.csv", drop_label=False, shift=SHIFT_MM)
    # Up to the DriftGate: what is checked here (the gate's line, the resolver's pick, the
    # drift metrics on the MLflow run) is all there; a drift that does not stop the gate lets
    # the stages after it run as in any run (Transform to Pusher are not what this test is
    # about, and cost about 15 s more).
    done = _run("run", trained, "--csv", str(shifted), "--epochs", EPOCHS,
                "--until", stage_names.DRIFT_GATE)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    gate = [line for line in done.stdout.splitlines()
            if line.split()[:1] == [stage_names.DRIFT_GATE]]
    # The train splits' rows, which the row-count bound compares: 344 rows in both files, but
    # the hash split puts a few shifted rows elsewhere (256 -> 253 train rows).
    assert gate and "drifted: bill_length_mm" in gate[0] and " in train (" in gate[0], \
        done.stdout
    assert "drift: bill_length_mm Jensen–Shannon" in done.stdout

    # The resolver ran after this run's StatisticsGen and picked the first run's statistics.
    second = lineage.tfx_run_ids(trained)[-1]
    name = trained.full_pipeline_name
    with queries.open_store_context(trained.metadata_path) as store:
        stats = {run: queries.node_execution(store, name, stage_names.STATISTICS_GEN, run)
                 .outputs["statistics"][0].id for run in (first, second)}
        validator = queries.node_execution(store, name, stage_names.DRIFT_VALIDATOR, second)
        events = store.get_events_by_execution_ids([validator.execution.id])
    inputs = {e.path.steps[0].key: e.artifact_id for e in events if e.type == e.INPUT}
    assert stats[first] != stats[second]
    assert inputs["baseline_statistics"] == stats[first]
    assert inputs["statistics"] == stats[second]

    client = _client(trained)
    experiment = client.get_experiment_by_name(name)
    [parent] = [r for r in client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`tfx.pipeline_run_id` = '{second}'")
        if "mlflow.parentRunId" not in r.data.tags]
    assert parent.data.metrics["drift/bill_length_mm"] > 0.1
    assert parent.data.metrics["drift/drifted_columns"] == 1
    # The label is compared too (its class mix is the same here) and the row count in bounds.
    assert parent.data.metrics["drift/species"] < 0.1
    assert parent.data.metrics["drift/row_count_out_of_bounds"] == 0


# ---- the scoring DAG, run by Airflow ------------------------------------------------------

def _airflow_tree_text(home: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted((home / "logs").rglob("*.log"))
                     ) if (home / "logs").exists() else ""


@pytest.mark.skipif(not (Path(__file__).resolve().parents[2] / ".venv-airflow" / "bin"
                         / "airflow").exists(),
                    reason="needs the Airflow venv (make airflow-venv)")
def test_the_scoring_dag_scores_the_file_under_the_training_runs_lock(trained, tmp_path):
    """`airflow dags test` of the scoring DAG `make airflow SCORE_CSV=...` serves, on the
    trained champion: it waits while another run holds the output folder's lock (the one every
    `make pipeline` and training-DAG task holds), then writes predictions.csv under scores/ and
    logs its MLflow run."""
    import json
    import threading
    import time

    from pipeline.runners import run_lock
    from pipeline.runners.airflow import scheduler

    source = _penguins(tmp_path, "today.csv")
    dag_id = trained.full_pipeline_name + "-score"
    scheduler.write_dag_spec(trained, spec=scheduler.scoring_dag_spec(trained, source, "none"))
    home = scheduler.airflow_home(trained)
    env = scheduler.airflow_env(trained, home)
    env.pop("MLFLOW_TRACKING_URI", None)  # the task logs to the trained folder's store
    airflow = scheduler.AIRFLOW_VENV / "bin" / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    before = _scores(trained)
    log = tmp_path / "dags_test.log"

    # A training run holds the output folder (the lock `python -m pipeline run` and every
    # training-DAG task take) when the scoring DAG starts.
    held = threading.Event()
    release = threading.Event()

    def hold():
        with run_lock.holding_output_folder(trained, "the test, as a training run", "t",
                                            wait=False):
            held.set()
            release.wait(600)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(30)
    waiting = f"one run per output folder ({trained.output_dir / run_lock.LOCK_FILE})"
    with open(log, "w") as out:
        dags = subprocess.Popen([str(airflow), "dags", "test", dag_id, "2025-06-01"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 600
            while waiting not in log.read_text(errors="replace") + _airflow_tree_text(home):
                assert dags.poll() is None, log.read_text()[-5000:]
                assert time.monotonic() < deadline, log.read_text()[-5000:]
                time.sleep(0.5)  # reading a few small logs: poll often, the lock is held anyway
            # Still waiting, nothing scored, while the lock is held.
            time.sleep(3)
            assert dags.poll() is None and _scores(trained) == before
        finally:
            release.set()
            holder.join(30)
        assert dags.wait(900) == 0, log.read_text()[-5000:]
    text = log.read_text(errors="replace") + _airflow_tree_text(home)
    assert "got the output folder after" in text, text[-5000:]

    # The DAG run and its one task succeeded.
    probe = Path(__file__).resolve().parents[1] / "runners" / "airflow_probe.py"
    done = subprocess.run([str(scheduler.AIRFLOW_VENV / "bin" / "python"), str(probe), "--runs",
                           dag_id], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    [run] = [r for run_id, r in runs.items() if "__2025-06-01T" in run_id]
    assert run["state"] == "success" and run["tasks"] == {scheduler.SCORE_TASK: "success"}

    # predictions.csv under scores/, every row of the file scored.
    [scored] = sorted(set(_scores(trained)) - set(before))
    assert scored.parent.parent == trained.output_dir / "scores"
    got = pd.read_csv(scored)
    assert len(got) == len(pd.read_csv(source)) and "prediction" in got.columns

    # Its MLflow run, in the scoring experiment, names that file.
    client = _client(trained)
    experiment = client.get_experiment_by_name(dag_id)
    [mlflow_run] = client.search_runs([experiment.experiment_id],
                                      filter_string=f"tags.`scores.path` = '{scored}'")
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.tags["csv2model.run_kind"] == "scoring"
    assert mlflow_run.data.metrics["rows"] == len(got)
