"""The pieces log_pipeline_run puts together (pipeline/tracking/*), each on a real MLflow store:
the Tuner's trials (recorded, or reported when they cannot be), and registration learning node
ids without the builder."""
from __future__ import annotations

import subprocess
import sys

import pytest
from ml_metadata.proto import metadata_store_pb2

from conftest import REPO
from pipeline.config import stage_names
from pipeline.config.settings import Settings
from pipeline.mlmd import queries
from pipeline.tracking import dataset_inputs, run_logging, tuner_trials


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """One store for the module: making an MLflow SQLite store takes seconds."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("mlflow")
    return MlflowClient(f"sqlite:///{folder / 'mlflow.db'}"), folder


@pytest.fixture
def store(experiment):
    """A fresh experiment's client, and a pipeline run with one stage run under it."""
    client, folder = experiment
    name = f"e{len(client.search_experiments())}"
    experiment = client.create_experiment(name, artifact_location=(folder / name).as_uri())
    parent = client.create_run(experiment).info.run_id
    stage = client.create_run(experiment, tags={run_logging.TAG_PARENT: parent}).info.run_id
    return client, experiment, parent, stage


def _tuner(tmp_path, trials_json: str | None, best: str | None) -> queries.NodeExecution:
    results, chosen = tmp_path / "tuner_results", tmp_path / "best_hyperparameters"
    results.mkdir()
    chosen.mkdir()
    if trials_json is not None:
        (results / tuner_trials.TRIALS_FILE).write_text(trials_json)
    if best is not None:
        (chosen / tuner_trials.BEST_FILE).write_text(best)
    execution = metadata_store_pb2.Execution(last_known_state=queries.COMPLETE, type="x.Tuner")
    outputs = {"tuner_results": [metadata_store_pb2.Artifact(uri=str(results))],
               "best_hyperparameters": [metadata_store_pb2.Artifact(uri=str(chosen))]}
    return queries.NodeExecution(stage_names.TUNER, "ran", execution, outputs)


def test_the_tuners_trials_and_choice_are_logged_and_reported_whole(store, tmp_path):
    client, experiment, parent, stage = store
    trials = ('[{"trial_id": "00", "status": "TrialStatus.COMPLETED", "score": 0.25,'
              ' "values": {"learning_rate": 0.01}, "metrics": {"val_loss": [0.5, 0.25]}}]')
    node = _tuner(tmp_path, trials, '{"values": {"learning_rate": 0.01, "tuner/epochs": 2}}')
    assert tuner_trials.log_tuner(client, experiment, parent, stage, node, "run-1",
                                  {"git.dirty": "false"}) is True
    assert client.get_run(parent).data.params == {"tuned.learning_rate": "0.01"}
    [trial] = client.search_runs([experiment],
                                 filter_string=f"tags.`{run_logging.TAG_PARENT}` = '{stage}'")
    assert trial.data.tags[run_logging.TAG_PIPELINE_RUN] == "run-1"
    assert trial.data.metrics == {"val_loss": 0.25, "score": 0.25}
    assert client.get_run(stage).info.status == "RUNNING"  # log_stage ends it, not log_tuner


def test_unreadable_tuner_trials_fail_the_tuner_run_and_say_why(store, tmp_path):
    client, experiment, parent, stage = store
    node = _tuner(tmp_path, "[{not json", None)
    assert tuner_trials.log_tuner(client, experiment, parent, stage, node, "run-1", {}) is False
    run = client.get_run(stage)
    assert run.info.status == "FAILED"
    assert run.data.tags[run_logging.TAG_TRACKING_ERROR].startswith(
        "the Tuner's trials: JSONDecodeError: ")


def test_registration_reads_node_ids_without_importing_the_builder_or_tfx():
    """The pipeline's run registers its model from the Trainer and Evaluator nodes it is given;
    with no judged model there is nothing to register, and neither the builder (TFX, Great
    Expectations) nor TFX is imported to find that out."""
    code = ("import sys\n"
            "from pipeline.config.settings import Settings\n"
            "from pipeline.tracking import registration\n"
            "settings = Settings(dataset='penguins')\n"
            "print(registration.register(None, 'p', settings, settings.load_spec(), {}))\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'tfx', 'great_expectations'}),"
            " 'pipeline.definition' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          check=True)
    assert done.stdout.splitlines() == ["None", "[] False"]


def test_keys_from_column_names_are_logged_with_what_mlflow_refuses_replaced(store):
    """A column `Body Mass (g)` gives keys MLflow refuses as they are (`drift/Body Mass (g)`
    stopped a scoring run's logging): every key is logged with `_` in their place."""
    client, _, parent, _ = store
    run_logging.log(client, parent, params={"feature.Body Mass (g)": "float"},
                    metrics={"drift/Body Mass (g)": 0.25, "drift/Delta 15 N (o/oo)": 0.5},
                    series={"loss [train]": [0.5, 0.25]}, tags={"note (x)": "y"})
    data = client.get_run(parent).data
    assert data.metrics == {"drift/Body Mass _g_": 0.25, "drift/Delta 15 N _o/oo_": 0.5,
                            "loss _train_": 0.25}
    assert data.params == {"feature.Body Mass _g_": "float"}
    assert data.tags["note _x_"] == "y"
    assert [m.value for m in client.get_metric_history(parent, "loss _train_")] == [0.5, 0.25]
