"""MLflow tracking: store location, what each stage logs, registry decisions, failed and
interrupted runs, the UI. Unit tests first; the e2e ones share the penguin runs of
mlflow_runs.py."""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2

import mlflow_runs
from mlflow_runs import client, runs  # noqa: F401 - pytest fixtures
from conftest import DATA, REPO, pipeline_command
from pipeline.config import stage_names
from pipeline.config.settings import Settings
from pipeline.definition import builder
from pipeline.definition.eval_config import make_eval_config
from pipeline.mlmd import queries
from pipeline.tracking import (
    git_source,
    lineage,
    mlflow_store,
    pipeline_runs,
    plots,
    run_logging,
    stage_records,
    stage_runs,
)

PNG = b"\x89PNG\r\n\x1a\n"


# ---- store and environment ---------------------------------------------------------------

def test_importing_the_mlflow_modules_touches_no_store():
    code = ("import os, sys\n"
            "import pipeline.tracking.pipeline_runs, pipeline.tracking.registry\n"
            "import pipeline.tracking.mlflow_cli, pipeline.tracking.plots\n"
            "print('mlflow' in sys.modules, os.environ.get('MLFLOW_TRACKING_URI'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=mlflow_runs.clean_env(), cwd=REPO, check=True)
    assert done.stdout.split() == ["False", "None"]


def test_store_defaults_to_the_dataset_output_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(mlflow_store.TRACKING_URI_ENV, raising=False)
    settings = Settings(dataset="penguins", output_root=tmp_path)
    folder = tmp_path.resolve() / "penguins" / "mlflow"
    assert mlflow_store.tracking_uri(settings) == f"sqlite:///{folder / 'mlflow.db'}"
    assert mlflow_store.artifact_root(settings) == (folder / "artifacts").as_uri()
    assert mlflow_store.uses_local_store(settings)


def test_tracking_uri_variable_points_the_store_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv(mlflow_store.TRACKING_URI_ENV, "http://pipeline_runs.example:5000")
    settings = Settings(dataset="penguins", output_root=tmp_path)
    assert mlflow_store.tracking_uri(settings) == "http://pipeline_runs.example:5000"
    assert not mlflow_store.uses_local_store(settings)


def test_active_store_puts_the_environment_back(tmp_path, monkeypatch):
    import mlflow

    settings = Settings(dataset="penguins", output_root=tmp_path)
    monkeypatch.delenv(mlflow_store.TRACKING_URI_ENV, raising=False)
    default = mlflow_store.tracking_uri(settings)
    with mlflow_store.active_store(settings):
        assert mlflow.get_tracking_uri() == default
    assert mlflow_store.TRACKING_URI_ENV not in os.environ
    assert mlflow.get_tracking_uri() != default

    monkeypatch.setenv(mlflow_store.TRACKING_URI_ENV, default)  # same store: one SQLite set-up
    with mlflow_store.active_store(settings):
        assert mlflow.get_tracking_uri() == default
    assert os.environ[mlflow_store.TRACKING_URI_ENV] == default


def test_experiments_are_of_the_kind_the_ui_opens_on_its_runs(tmp_path):
    """MLflow 3's UI opens an experiment without `mlflow.experimentKind` on the GenAI overview;
    the pipeline's own experiment and one it finds without the tag get `custom_model_development`.
    A kind someone chose in the UI stays."""
    from mlflow import MlflowClient

    kind = mlflow_store.TAG_EXPERIMENT_KIND
    assert (kind, mlflow_store.EXPERIMENT_KIND) == ("mlflow.experimentKind",
                                                    "custom_model_development")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    location = (tmp_path / "artifacts").as_uri()
    created = mlflow_store.experiment_id(client, Settings(dataset="penguins"), location)
    assert client.get_experiment(created).tags[kind] == "custom_model_development"

    found = client.create_experiment("csv2model-taxi", artifact_location=location)
    assert kind not in client.get_experiment(found).tags
    assert mlflow_store.experiment_id(client, Settings(dataset="taxi"), location) == found
    assert client.get_experiment(found).tags[kind] == "custom_model_development"

    client.set_experiment_tag(found, kind, "genai_development")
    mlflow_store.experiment_id(client, Settings(dataset="taxi"), location)
    assert client.get_experiment(found).tags[kind] == "genai_development"


def test_no_champion_only_when_the_registry_says_so(tmp_path, monkeypatch):
    """None for a model never registered or never promoted; a store that cannot answer is an
    error, not "no champion"."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from pipeline.tracking import registry

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert registry.champion_version(client, "never_registered") is None
    client.create_registered_model("m")
    assert registry.champion_version(client, "m") is None
    assert registry.find_version(client, "never_registered", "any/uri") is None
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    unreachable = MlflowClient(f"http://127.0.0.1:{mlflow_runs.free_port()}")
    with pytest.raises(MlflowException, match="failed"):
        registry.champion_version(unreachable, "m")


def test_source_tags_are_the_fields_the_ui_shows_as_source():
    tags = git_source.source_tags()
    assert tags["mlflow.source.name"] == str(REPO)
    assert tags["mlflow.source.type"] == "LOCAL"
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert tags["mlflow.source.git.commit"] == commit
    branch = subprocess.run([*git, "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
    assert tags.get("mlflow.source.git.branch", "HEAD") == branch
    assert tags["git.dirty"] in ("true", "false")


def test_a_run_that_failed_before_tfx_started_has_source_and_the_whole_csv(tmp_path,
                                                                           monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.delenv(mlflow_store.TRACKING_URI_ENV, raising=False)
    settings = Settings(dataset="penguins", output_root=tmp_path)
    spec = settings.load_spec()
    tracked = pipeline_runs.log_pipeline_run(settings, spec, None, error=RuntimeError("no CSV"))
    client = MlflowClient(mlflow_runs.store_uri(settings))
    run = client.get_run(tracked.run_id)
    assert run.info.status == "FAILED"
    assert client.get_experiment(tracked.experiment_id).tags["mlflow.experimentKind"] == \
        "custom_model_development"
    assert {k: run.data.tags[k] for k in git_source.source_tags()} == \
        git_source.source_tags()
    [data] = run.inputs.dataset_inputs
    assert data.tags == [] and data.dataset.profile is None  # the splits were never made
    assert data.dataset.name == "penguins"
    assert json.loads(data.dataset.source)["uri"] == str(spec.csv_path.resolve())


def test_run_parameters_are_the_settings_without_ports_plus_beam_args():
    params = pipeline_runs.settings_params(Settings(dataset="penguins", epochs=7))
    assert params["dataset"] == "penguins" and params["epochs"] == "7"
    assert not [k for k in params if k.endswith("_port")]
    assert params["beam_pipeline_args"].startswith("--direct_running_mode=")
    # A cluster runner missing its settings (the run fails on it) still logs the rest.
    broken = pipeline_runs.settings_params(Settings(beam_runner="FlinkRunner"))
    assert broken["beam_pipeline_args"].startswith("(invalid: ")
    assert broken["beam_runner"] == "FlinkRunner"


# ---- run and stage states ----------------------------------------------------------------

def _node(state: int, node_id: str = "Trainer", outputs=None) -> queries.NodeExecution:
    execution = metadata_store_pb2.Execution(last_known_state=state, type="x.Trainer")
    return queries.NodeExecution(node_id, queries.STATE_NAMES.get(state, "unknown"),
                                  execution, outputs or {})


@pytest.mark.parametrize("state, error, status, name", [
    (queries.COMPLETE, None, run_logging.FINISHED, "ran"),
    (queries.CACHED, None, run_logging.FINISHED, "cached"),
    (queries.FAILED, RuntimeError("boom"), run_logging.FAILED, "failed"),
    (metadata_store_pb2.Execution.RUNNING, KeyboardInterrupt(), run_logging.KILLED,
     "interrupted"),
    (metadata_store_pb2.Execution.RUNNING, RuntimeError("boom"), run_logging.FAILED, "stopped"),
    # A stop that landed in a Beam DoFn: Beam re-raised it as an error, TFX recorded a failure.
    (queries.FAILED, KeyboardInterrupt(), run_logging.KILLED, "interrupted"),
])
def test_a_stage_run_ends_with_the_state_ml_metadata_recorded(state, error, status, name):
    node = _node(state)
    assert stage_runs.run_status(node, error) == status
    assert stage_runs.state_name(node, error) == name


def test_error_summary_names_the_exception_even_without_a_message():
    assert run_logging.error_summary(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert run_logging.error_summary(ValueError("bad row")) == "ValueError: bad row"


# ---- what stages contribute --------------------------------------------------------------

def test_only_short_plain_execution_properties_become_parameters():
    params = stage_records.scalar_params({
        "run_fn": "components.train.trainer_module.run_fn", "disable_statistics": 1,
        "custom_config": '{"training": {"epochs": 3}}', "exclude_splits": "[]",
        "example_splits": "null", "suite": "x" * 600, "__internal": "y",
    })
    assert params == {"run_fn": "components.train.trainer_module.run_fn", "disable_statistics": 1}


@pytest.mark.parametrize("dataset, gated, bound", [
    ("penguins", "sparse_categorical_accuracy", "min_accuracy"), ("taxi", "auc", "min_auc"),
])
def test_threshold_parameters_are_the_eval_configs_gates(dataset, gated, bound):
    from google.protobuf import json_format

    settings = Settings(dataset=dataset, max_metric_drop=0.05)
    config = make_eval_config(settings.load_spec(), settings)
    params = stage_records.eval_thresholds(
        json.loads(json_format.MessageToJson(config, preserving_proto_field_name=True)))
    assert params == {f"threshold.{gated}.overall.min":
                      settings.gate(settings.load_spec(), bound).value,
                      f"threshold.{gated}.overall.max_drop": pytest.approx(0.05)}


def test_tfma_metric_names_carry_slice_and_class():
    penguins = Settings(dataset="penguins").load_spec()
    taxi = Settings(dataset="taxi").load_spec()
    name = stage_records.eval_metric_name
    assert name((), "", "example_count", penguins) == "eval/example_count"
    assert name((), "classId:1", "recall", penguins) == "eval/recall_Chinstrap"
    assert name((("island", "Biscoe"),), "", "sparse_categorical_accuracy", penguins) == \
        "eval/island:Biscoe/sparse_categorical_accuracy"
    assert name((), "classId:1", "auc", taxi) == "eval/auc"  # binary: the positive class
    assert name((("company", "A/B=C"),), "classId:1", "auc", taxi) == "eval/company:A_B_C/auc"


def test_a_validation_report_gives_counts_report_files_and_data_docs(tmp_path):
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "report.json").write_text("{}")
    docs = report_dir / "data_docs.html"
    docs.write_text("<html></html>")
    artifact = metadata_store_pb2.Artifact(type=stage_records.VALIDATION_REPORT_TYPE,
                                           uri=str(report_dir))
    artifact.custom_properties["failed_critical"].int_value = 1
    artifact.custom_properties["success_percent"].double_value = 96.5
    artifact.custom_properties["data_docs"].string_value = str(docs)
    node = _node(queries.COMPLETE, "ContractCheck", {"report": [artifact]})
    (tmp_path / "files").mkdir()

    record = stage_records.record(node, Settings(dataset="penguins").load_spec(),
                                  tmp_path / "files")
    assert record.metrics == {"ContractCheck/failed_critical": 1.0,
                              "ContractCheck/success_percent": 96.5}
    assert record.files == [(docs, "data_docs"), (report_dir / "report.json", "report")]


# ---- charts ------------------------------------------------------------------------------

def test_curve_points_from_confusion_matrices_with_zero_fields_left_out():
    matrices = [
        {"threshold": -1e-6, "truePositives": 4.0, "falsePositives": 6.0},  # all positive
        {"threshold": 0.5, "truePositives": 3.0, "falsePositives": 1.0,
         "trueNegatives": 5.0, "falseNegatives": 1.0},
        {"threshold": 1.0, "trueNegatives": 6.0, "falseNegatives": 4.0},  # nothing positive
    ]
    points = plots.curve_points(matrices)
    assert points["fpr"] == [1.0, pytest.approx(1 / 6), 0.0]
    assert points["recall"] == [1.0, 0.75, 0.0]
    assert points["precision"] == [0.4, 0.75, 1.0]
    assert plots.area_under([0, 0.5, 1], [0, 1, 1]) == pytest.approx(0.75)
    assert plots.area_under([1, 0], [1, 0]) == pytest.approx(0.5)


def test_calibration_regroups_narrow_buckets_by_mean_prediction():
    buckets = [
        {"numWeightedExamples": 2.0, "totalWeightedRefinedPrediction": 0.1,
         "totalWeightedLabel": 0.0},
        {"numWeightedExamples": 2.0, "totalWeightedRefinedPrediction": 0.3,
         "totalWeightedLabel": 1.0},
        {"numWeightedExamples": 0.0},
        {"numWeightedExamples": 1.0, "totalWeightedRefinedPrediction": 0.9,
         "totalWeightedLabel": 1.0},
    ]
    assert plots.calibration_points(buckets, bins=2) == [(0.1, 0.25, 4.0), (0.9, 1.0, 1.0)]


def test_confusion_counts_read_omitted_class_ids_as_zero():
    matrix = {"entries": [{"numWeightedExamples": 5.0}, {"predictedClassId": 1,
                                                         "numWeightedExamples": 2.0},
                          {"actualClassId": 1, "predictedClassId": 1,
                           "numWeightedExamples": 7.0}]}
    assert plots.confusion_counts(matrix, 2) == [[5.0, 2.0], [0.0, 7.0]]


def test_every_chart_is_written_as_png(tmp_path):
    matrices = [{"threshold": t / 10, "truePositives": 10.0 - t, "falsePositives": 5.0 - t / 2,
                 "trueNegatives": 5.0 + t / 2, "falseNegatives": float(t)} for t in range(11)]
    buckets = [{"numWeightedExamples": 1.0, "totalWeightedRefinedPrediction": p / 10,
                "totalWeightedLabel": float(p > 4)} for p in range(10)]
    overall = {"": {
        "": {plots.MULTICLASS_CONFUSION: {"matrices": [{"entries": [
            {"numWeightedExamples": 3.0}, {"actualClassId": 1, "predictedClassId": 1,
                                           "numWeightedExamples": 4.0}]}]}},
        "classId:1": {plots.CONFUSION_AT_THRESHOLDS: {"matrices": matrices},
                      plots.CALIBRATION: {"buckets": buckets}},
    }}
    written = plots.tfma_plots(overall, ["no", "yes"], tmp_path)
    written.append(plots.training_curves(
        {"loss": [0.9, 0.5], "val_loss": [1.0, 0.7], "accuracy": [0.6, 0.8]},
        tmp_path / plots.TRAINING_FILE))
    names = {p.name for p in written}
    assert names == {plots.ROC_FILE, plots.PR_FILE, plots.CALIBRATION_FILE,
                     plots.CONFUSION_FILE, plots.TRAINING_FILE}
    assert all(p.read_bytes().startswith(PNG) for p in written)


# ---- end to end: the shared penguin runs -------------------------------------------------

@pytest.fixture(scope="module")
def first(runs, client):
    parent = mlflow_runs.parent_run(client, runs.settings, runs.first_tfx_run)
    return parent, mlflow_runs.child_runs(client, parent)


@pytest.fixture(scope="module")
def second(runs, client):
    parent = mlflow_runs.parent_run(client, runs.settings, runs.second_tfx_run)
    return parent, mlflow_runs.child_runs(client, parent)


def _text(client, run_id: str, path: str, tmp_path: Path) -> str:
    return Path(client.download_artifacts(run_id, path, str(tmp_path))).read_text()


def _bytes(client, run_id: str, path: str, tmp_path: Path) -> bytes:
    return Path(client.download_artifacts(run_id, path, str(tmp_path))).read_bytes()


@pytest.mark.e2e
def test_pipeline_run_is_tagged_with_run_commit_spec_and_data(runs, first, tmp_path, client):
    parent, _ = first
    settings = runs.settings
    spec = settings.load_spec()
    tags, params = parent.data.tags, parent.data.params
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == runs.first_tfx_run
    assert tags[run_logging.TAG_PIPELINE_RUN] == runs.first_tfx_run
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
    assert tags[git_source.TAG_GIT_COMMIT] == commit
    assert tags["dataset.spec_fingerprint"] == spec.fingerprint()
    assert tags["dataset.data_sha256"] == hashlib.sha256(spec.csv_path.read_bytes()).hexdigest()
    assert params["epochs"] == str(mlflow_runs.FIRST_EPOCHS)
    assert params["hidden_units"] == str(settings.hidden_units)
    # penguins is 15 kB: `--beam-mode auto` chose in_memory, and the parameter says so.
    assert params["beam_mode"] == "auto"
    assert "--direct_running_mode=in_memory" in params["beam_pipeline_args"]
    assert "classes: [Adelie, Chinstrap, Gentoo]" in _text(client, parent.info.run_id,
                                                           "dataset/spec.yaml", tmp_path)


@pytest.mark.e2e
def test_experiment_opens_on_runs_and_every_run_has_its_source(runs, first, second, client):
    parent, children = first
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags[mlflow_store.TAG_EXPERIMENT_KIND] == "custom_model_development"
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
    for run in (parent, *children.values(), second[0], *second[1].values()):
        tags = run.data.tags
        assert tags["mlflow.source.name"] == str(REPO), run.info.run_name
        assert tags["mlflow.source.type"] == "LOCAL"
        assert tags["mlflow.source.git.commit"] == commit


@pytest.mark.e2e
def test_one_finished_child_run_per_component_execution(runs, first):
    _, children = first
    settings = runs.settings
    with queries.open_store_context(settings.metadata_path) as store:
        executions = queries.run_executions(store, settings.full_pipeline_name,
                                             runs.first_tfx_run)
    assert len(executions) >= 10
    assert set(children) == {e.node_id for e in executions}
    for e in executions:
        child = children[e.node_id]
        assert child.info.status == "FINISHED", e.node_id
        assert child.data.tags[run_logging.TAG_EXECUTION] == str(e.execution.id)
        assert child.data.tags[run_logging.TAG_STATE] in ("ran", "resolved")
        assert child.info.start_time == e.execution.create_time_since_epoch
        assert child.info.end_time == e.execution.last_update_time_since_epoch


@pytest.mark.e2e
def test_metrics_are_the_pipelines_figures(runs, first, client):
    parent, children = first
    m = parent.data.metrics
    assert m["examples/train"] > 0 and m["examples/eval"] > 0
    assert m["examples/train"] + m["examples/eval"] == m["examples/total"] == 344
    assert m["anomalies"] == 0 and m[f"{builder.ANOMALIES_GATE}/anomalies"] == 0
    expectations = stage_names.EXPECTATIONS_VALIDATOR
    assert m[f"{expectations}/failed_critical"] == 0
    assert m[f"{expectations}/evaluated"] == m[f"{expectations}/passed"] > 0
    assert m["blessed"] == 1 and m["pushed"] == 1
    # TFMA evaluates the eval split, overall and per island.
    assert m["eval/example_count"] == m["examples/eval"]
    assert sum(v for k, v in m.items() if k.startswith("eval/island:")
               and k.endswith("/example_count")) == m["eval/example_count"]
    gate = runs.settings.gate(runs.settings.load_spec(), "min_accuracy").value
    assert gate <= m["eval/sparse_categorical_accuracy"] <= 1
    # Per class: the figure TFMA computed for classId 2, under that class's name.
    with queries.open_store_context(runs.settings.metadata_path) as store:
        evaluator = next(e for e in queries.run_executions(
            store, runs.settings.full_pipeline_name, runs.first_tfx_run)
            if e.node_id == builder.EVALUATOR)
    evaluation = stage_records.candidate_result(evaluator.outputs["evaluation"][0].uri)
    overall = next(iter(dict(evaluation.slicing_metrics)[()].values()))
    assert m["eval/recall_Gentoo"] == overall["classId:2"]["recall"]["doubleValue"]
    assert m["eval/recall_Adelie"] == overall["classId:0"]["recall"]["doubleValue"]

    trainer = children[builder.TRAINER].info.run_id
    epochs = int(m["epochs"])
    assert 1 <= epochs <= mlflow_runs.FIRST_EPOCHS
    for key in ("train/loss", "train/accuracy", "val/loss", "val/accuracy"):
        history = client.get_metric_history(trainer, key)
        assert [h.step for h in sorted(history, key=lambda h: h.step)] == \
            list(range(1, epochs + 1)), key
    losses = [h.value for h in sorted(client.get_metric_history(trainer, "train/loss"),
                                      key=lambda h: h.step)]
    assert losses[-1] < losses[0]
    for node, child in children.items():
        assert child.data.metrics["duration_s"] == m[f"duration_s/{node}"]
    assert m[f"duration_s/{builder.TRANSFORM}"] > 1


@pytest.mark.e2e
def test_stage_artifacts_schema_statistics_and_charts(first, client, tmp_path):
    _, children = first
    run = {node: child.info.run_id for node, child in children.items()}
    assert "bill_length_mm" in _text(client, run[builder.SCHEMA_IMPORTER],
                                     "schema/schema.pbtxt", tmp_path)
    assert "facets" in _text(client, run[builder.STATISTICS_GEN],
                             "statistics/statistics.html", tmp_path)
    summary = _text(client, run[builder.STATISTICS_GEN], "statistics/statistics_summary.html",
                    tmp_path)
    assert "bill_length_mm" in summary and "eval" in summary and "train" in summary
    assert _bytes(client, run[builder.TRAINER], f"plots/{plots.TRAINING_FILE}",
                  tmp_path).startswith(PNG)
    for name in (plots.ROC_FILE, plots.PR_FILE, plots.CALIBRATION_FILE, plots.CONFUSION_FILE):
        assert _bytes(client, run[builder.EVALUATOR], f"plots/{name}", tmp_path).startswith(PNG)
    assert "validation_ok: true" in _text(client, run[builder.EVALUATOR],
                                          "evaluation/validation_result.txt", tmp_path)
    docs = client.list_artifacts(run[stage_names.EXPECTATIONS_VALIDATOR], "data_docs")
    assert [a.path for a in docs if a.path.endswith(".html")], docs


@pytest.mark.e2e
def test_a_stage_that_could_not_be_recorded_fails_its_run_and_the_pipeline_run(
        runs, tmp_path, monkeypatch, caplog):
    """The first run logged again into a fresh store, with the Trainer's record failing: its
    stage run and the pipeline's run end FAILED (not FINISHED with a tag), the others are whole,
    and the log keeps the trace."""
    from mlflow import MlflowClient

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv(mlflow_store.TRACKING_URI_ENV, store)
    monkeypatch.chdir(tmp_path)  # a store without an artifact root writes under ./mlruns
    real_record = stage_records.record

    def record(node, spec, folder):
        if node.node_id == builder.TRAINER:
            raise OSError("disk full")
        return real_record(node, spec, folder)

    monkeypatch.setattr(stage_records, "record", record)
    settings = runs.settings
    tracked = pipeline_runs.log_pipeline_run(settings, settings.load_spec(), runs.first_tfx_run)
    client = MlflowClient(store)
    parent = client.get_run(tracked.run_id)
    assert tracked.status == parent.info.status == "FAILED"
    children = mlflow_runs.child_runs(client, parent)
    assert {n for n, c in children.items() if c.info.status != "FINISHED"} == {builder.TRAINER}
    trainer = children[builder.TRAINER]
    assert trainer.info.status == "FAILED"
    assert trainer.data.tags[run_logging.TAG_TRACKING_ERROR] == "Trainer: OSError: disk full"
    logged = [r for r in caplog.records if r.exc_info and "disk full" in str(r.exc_info[1])]
    assert [r.getMessage() for r in logged] == [
        f"MLflow: recording Trainer in run {trainer.info.run_id} failed"]


@pytest.mark.e2e
def test_a_cached_model_reuses_its_version_and_is_not_promoted_again(runs, tmp_path,
                                                                      monkeypatch):
    """A re-run whose Trainer and Evaluator came from TFX's cache finds the version an earlier
    run registered (same TFX model uri): no new version, and `champion` is not moved back to it
    (the blessing was acted on when it was made); evaluated again, it is promoted."""
    from pipeline.tracking import registry

    # A store of its own; logging the model goes through MLflow's active store, as in a run.
    monkeypatch.setenv(mlflow_store.TRACKING_URI_ENV, f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    settings = runs.settings
    stack = contextlib.ExitStack()
    client = stack.enter_context(mlflow_store.active_store(settings))
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    model_dir = next(p for p in settings.serving_dir.iterdir() if p.is_dir())
    name, uri = "m", str(model_dir)

    def register(evaluated_now: bool):
        run = client.create_run(experiment).info.run_id
        return registry.log_and_register(client, run, name, str(model_dir), settings.load_spec(),
                                         tfx_model_uri=uri, blessed=True,
                                         evaluated_now=evaluated_now)

    first = register(evaluated_now=True)
    assert (first.version, first.created, first.champion) == ("1", True, True)
    client.delete_registered_model_alias(name, registry.CHAMPION)  # moved away meanwhile
    cached = register(evaluated_now=False)
    assert (cached.version, cached.created, cached.champion) == ("1", False, False)
    assert registry.champion_version(client, name) is None
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == [1]
    again = register(evaluated_now=True)
    assert (again.version, again.created, again.champion) == ("1", False, True)
    assert registry.champion_version(client, name) == "1"
    stack.close()


@pytest.mark.e2e
def test_blessed_model_is_registered_with_signature_and_is_champion(runs, first, client,
                                                                    monkeypatch):
    import mlflow

    from pipeline.tracking import registry

    parent, _ = first
    name = runs.settings.registered_model_name
    assert name == "csv2model-penguins"
    champion = client.get_model_version_by_alias(name, registry.CHAMPION)
    assert int(champion.version) == 1 and champion.run_id == parent.info.run_id
    assert champion.tags[registry.TAG_BLESSED] == "true"
    monkeypatch.delenv(mlflow_store.TRACKING_URI_ENV, raising=False)
    with mlflow_store.active_store(runs.settings):
        info = mlflow.models.get_model_info(registry.model_uri(name))
    spec = runs.settings.load_spec()
    inputs = {c.name: c.type.name for c in info.signature.inputs.inputs}
    assert set(inputs) == {f.name for f in spec.model_features}
    assert inputs["island"] == "string" and inputs["bill_length_mm"] == "double"
    assert [c.name for c in info.signature.outputs.inputs] == [
        "probability_Adelie", "probability_Chinstrap", "probability_Gentoo", "class"]
    assert info.saved_input_example_info is not None


@pytest.mark.e2e
def test_worse_model_is_logged_but_champion_stays(runs, second, client):
    from pipeline.tracking import registry

    parent, _ = second
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["blessed"] == 0 and parent.data.metrics["pushed"] == 0
    assert parent.data.metrics["eval/sparse_categorical_accuracy_diff"] < 0  # vs version 1
    name = runs.settings.registered_model_name
    versions = {int(v.version): v for v in client.search_model_versions(f"name = '{name}'")}
    assert set(versions) == {1, 2}
    assert versions[2].run_id == parent.info.run_id
    assert versions[2].tags[registry.TAG_BLESSED] == "false"
    assert int(client.get_model_version_by_alias(name, registry.CHAMPION).version) == 1
    # Why, from TFMA's validation result: on the run and on the registered version.
    why = parent.data.tags["not_blessed_because"]
    assert "below champion version 1 (allowed drop 0.000: gates.max_metric_drop" in why, why
    assert versions[2].tags["not_blessed_because"] == why
    # Charts of a model evaluated next to a baseline (TFMA then holds two models).
    evaluator = second[1][builder.EVALUATOR].info.run_id
    assert {a.path for a in client.list_artifacts(evaluator, "plots")} == {
        f"plots/{n}" for n in (plots.ROC_FILE, plots.PR_FILE, plots.CALIBRATION_FILE,
                               plots.CONFUSION_FILE)}


@pytest.mark.e2e
def test_cached_stages_point_at_the_run_that_made_their_outputs(first, second, client):
    _, first_children = first
    _, second_children = second
    for node in (builder.EXAMPLE_GEN, builder.STATISTICS_GEN, builder.TRANSFORM):
        child = second_children[node]
        assert child.data.tags[run_logging.TAG_STATE] == "cached", node
        assert child.data.tags[run_logging.TAG_CACHED_FROM] == first_children[node].info.run_id
        assert client.list_artifacts(child.info.run_id) == []  # the files are in the first
    # Still figures of this run's data, for comparing runs side by side.
    assert second_children[builder.STATISTICS_GEN].data.metrics["examples/total"] == 344
    assert second_children[builder.TRAINER].data.tags[run_logging.TAG_STATE] == "ran"


@pytest.mark.e2e
def test_ui_serves_the_runs_over_its_rest_api(runs, first, second):
    from pipeline.tracking import mlflow_cli

    settings = runs.settings.replace(mlflow_ui_port=mlflow_runs.free_port())
    command = mlflow_cli.ui_command(settings)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    url = mlflow_cli.ui_url(settings)
    with mlflow_runs.server(command, mlflow_cli.mlflow_env(settings), f"{url}/health"):
        experiment = first[0].info.experiment_id
        body = json.dumps({"experiment_ids": [experiment], "max_results": 1000,
                           "filter": f"tags.`{run_logging.TAG_PIPELINE}` = "
                                     f"'{settings.full_pipeline_name}'"})
        request = urllib.request.Request(f"{url}/api/2.0/mlflow/runs/search", data=body.encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            found = {r["info"]["run_id"] for r in json.load(response)["runs"]}
    assert found == {first[0].info.run_id, second[0].info.run_id}


# ---- end to end: a failed and an interrupted run -----------------------------------------

def _with_unknown_island(target: Path) -> Path:
    """The penguins CSV with an island the schema and the data contract do not know."""
    with (DATA / "penguins" / "data.csv").open() as f:
        rows = list(csv.reader(f))
    column = rows[0].index("island")
    for row in rows[1:40]:
        row[column] = "Atlantis"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return target


def _interrupt_when_running(settings: Settings, node_id: str, timeout: float = 300,
                            signum: int = signal.SIGINT):
    """Start a run, press Ctrl-C (SIGINT to its process group; or send `signum`, SIGTERM as
    `kill` does) once node_id is running."""
    log = settings.log_path
    start = log.stat().st_size if log.exists() else 0
    # The run starts with SIGINT and SIGTERM as a terminal leaves them, whatever this test
    # process inherited: `make test &` from a script (a shell without job control) starts it
    # with SIGINT ignored, exec keeps that, and the Ctrl-C run then ran to its end (twice, on
    # fresh clones started that way).
    reset = ("import os, signal, sys; "
             "signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT, signal.SIGTERM]); "
             "signal.signal(signal.SIGINT, signal.SIG_DFL); "
             "signal.signal(signal.SIGTERM, signal.SIG_DFL); "
             "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")
    command = pipeline_command("run", "--dataset", settings.dataset,
                               "--output-root", str(settings.output_root), "--epochs", "2")
    process = subprocess.Popen(
        [command[0], "-c", reset, *command[1:]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env=mlflow_runs.clean_env())
    deadline = time.monotonic() + timeout
    marker = f"Component {node_id} is running."
    while time.monotonic() < deadline and process.poll() is None:
        if log.exists():
            with log.open() as f:
                f.seek(start)
                if marker in f.read():
                    break
        time.sleep(0.5)
    if process.poll() is not None:  # say why rather than fail on a missing process group
        output, _ = process.communicate()
        pytest.fail(f"the run ended (exit {process.returncode}) before {node_id} was seen "
                    f"running:\n{output[-4000:]}")
    time.sleep(1)
    os.killpg(process.pid, signum)
    output, _ = process.communicate(timeout=300)
    return process.returncode, output


@pytest.fixture(scope="module")
def stopped_runs(tmp_path_factory):
    """A run failed by bad data, then a run interrupted with Ctrl-C, then one stopped with
    SIGTERM, in one output folder."""
    root = tmp_path_factory.mktemp("mlflow_stopped")
    csv_path = _with_unknown_island(root / "input" / "data.csv")
    settings = Settings(dataset="penguins", output_root=root / "out")
    failed = mlflow_runs.run(settings, "--csv", str(csv_path), "--epochs", "2")
    # Transform: the longest data stage, so that Ctrl-C lands while a stage runs.
    interrupted = _interrupt_when_running(settings, builder.TRANSFORM)
    # The Trainer, which the interrupted run never reached: had Ctrl-C landed only after its
    # Transform finished (a loaded machine), this run's Transform would come from cache, no
    # "running" line would show, and the run would end before the signal.
    terminated = _interrupt_when_running(settings, builder.TRAINER, signum=signal.SIGTERM)
    return settings, failed, interrupted, terminated


@pytest.mark.e2e
def test_failed_stage_marks_its_run_and_the_pipeline_run_failed(stopped_runs, tmp_path):
    from mlflow import MlflowClient

    settings, failed, _, _ = stopped_runs
    assert failed.returncode == 1, failed.stdout[-2000:] + failed.stderr[-2000:]
    client = MlflowClient(mlflow_runs.store_uri(settings))
    tfx_run = lineage.tfx_run_ids(settings)[0]
    parent = mlflow_runs.parent_run(client, settings, tfx_run)
    children = mlflow_runs.child_runs(client, parent)
    assert parent.info.status == "FAILED"
    assert "Atlantis" in parent.data.tags[run_logging.TAG_ERROR]
    assert "Atlantis" in _text(client, parent.info.run_id, run_logging.ERROR_FILE, tmp_path)

    with queries.open_store_context(settings.metadata_path) as store:
        executions = queries.run_executions(store, settings.full_pipeline_name, tfx_run)
    failed_nodes = [e.node_id for e in executions if e.state == "failed"]
    # The data contract (GX, before any statistics) is what stops an unknown island, and the
    # one error line is its message.
    assert failed_nodes == [builder.EXPECTATIONS_GATE]
    error = failed.stderr.splitlines()[0]
    assert error.startswith("error: ") and "island" in error and "Atlantis" in error, error
    assert {n for n, c in children.items() if c.info.status == "FAILED"} == set(failed_nodes)
    stage = children[failed_nodes[0]]
    assert stage.data.tags[run_logging.TAG_ERROR] == parent.data.tags[run_logging.TAG_ERROR]
    assert "Atlantis" in _text(client, stage.info.run_id, run_logging.ERROR_FILE, tmp_path)
    # The Transform may have run beside the checks (pipeline/runners/check_branch.py); nothing
    # that waits for the gates did.
    assert builder.TRAINER not in children and builder.EVALUATOR not in children
    assert client.search_model_versions(f"name = '{settings.registered_model_name}'") == []


@pytest.mark.e2e
def test_interrupted_run_is_killed_not_left_running(stopped_runs):
    from mlflow import MlflowClient

    settings, _, (returncode, output), _ = stopped_runs
    assert returncode == 130, output[-3000:]
    client = MlflowClient(mlflow_runs.store_uri(settings))
    parent = mlflow_runs.parent_run(client, settings, lineage.tfx_run_ids(settings)[1])
    assert parent.info.status == "KILLED"
    assert parent.data.tags[run_logging.TAG_ERROR] == "KeyboardInterrupt"
    experiment = parent.info.experiment_id
    assert client.search_runs([experiment], "attributes.status = 'RUNNING'") == []
    stopped = [c for c in mlflow_runs.child_runs(client, parent).values()
               if c.info.status != "FINISHED"]
    # Ctrl-C landed in Transform: its stage run is KILLED, none is left RUNNING; so is any
    # check that was running beside it in the checks' process (check_branch.py).
    states = {c.data.tags[run_logging.TAG_NODE]: (c.info.status, c.data.tags[run_logging.TAG_STATE])
              for c in stopped}
    assert states.pop(builder.TRANSFORM) == ("KILLED", "interrupted")
    assert set(states) <= set(stage_names.CHECKS)
    assert set(states.values()) <= {("KILLED", "interrupted")}


@pytest.mark.e2e
def test_a_run_stopped_with_sigterm_ends_killed_not_left_running(stopped_runs):
    """`kill` (SIGTERM) takes Ctrl-C's path (pipeline/runners/termination.py): exit 143 and the
    MLflow run KILLED, where the default handler left it RUNNING (the live tracker logs while
    the stages run)."""
    from mlflow import MlflowClient

    settings, _, _, (returncode, output) = stopped_runs
    assert returncode == 143, output[-3000:]
    assert "terminated" in output.splitlines()[-1]
    client = MlflowClient(mlflow_runs.store_uri(settings))
    parent = mlflow_runs.parent_run(client, settings, lineage.tfx_run_ids(settings)[2])
    assert parent.info.status == "KILLED"
    assert parent.data.tags[run_logging.TAG_ERROR] == "Terminated"
    assert client.search_runs([parent.info.experiment_id], "attributes.status = 'RUNNING'") == []
