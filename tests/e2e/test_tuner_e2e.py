"""End to end: `--tune` on the penguins (344 rows) with a two-trial search in a temp dir.

TFX's Tuner is a stage of the run, each trial is an MLflow child run of the Tuner's run with its
hyperparameters and per-epoch validation metrics, the chosen set is on the pipeline's run, and
the Trainer builds the model with it (read back from the trained SavedModel's variables)."""
from __future__ import annotations

import glob
import json

import mlflow
import pytest
from mlflow_runs import child_runs, parent_run, run, store_uri

from pipeline.config.settings import Settings
from pipeline.config.stage_names import TUNER
from pipeline.mlmd import queries
from pipeline.tracking import lineage, run_logging, tuner_trials

pytestmark = pytest.mark.e2e

# Two widths no default uses, so the trained model shows which one the Trainer took.
WIDTHS = (5, 7)
EPOCHS = 2


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    settings = Settings(dataset="penguins", output_root=tmp_path_factory.mktemp("tune"))
    done = run(settings, "--tune", "--tuner-algorithm", "random", "--tuner-max-trials", "2",
               "--tuner-epochs", str(EPOCHS), "--epochs", "3", "--min-accuracy", "0",
               "--tuner-search-space", f"hidden_units={','.join(map(str, WIDTHS))}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return settings, done


def test_the_tuner_is_a_stage_and_the_trainer_uses_its_choice(tuned):
    settings, done = tuned
    lines = [line.split() for line in done.stdout.splitlines()]
    order = [words[0] for words in lines if len(words) > 1 and words[1] == "ran"]
    assert order.index("Transform") < order.index(TUNER) < order.index("Trainer")
    with queries.open_store_context(settings.metadata_path) as store:
        tuner = queries.node_execution(store, settings.full_pipeline_name, TUNER)
        trainer = queries.node_execution(store, settings.full_pipeline_name, "Trainer")
    chosen = tuner_trials.chosen_hyperparameters(tuner)
    assert chosen["hidden_units"] in WIDTHS
    trials = tuner_trials.trials(tuner)
    best = min(trials, key=lambda t: t["score"])
    assert chosen["hidden_units"] == best["values"]["hidden_units"]
    # The trained model's first hidden layer has the chosen width.
    import tensorflow as tf

    model_dir = glob.glob(f"{trainer.outputs['model'][0].uri}/Format-Serving")[0]
    # The export holds the signatures, not Keras' layer traces (save_for_serving): the model's
    # variables are the ones its serving signature reads.
    loaded = tf.saved_model.load(model_dir)
    serving = loaded.signatures["serving_default"]
    kernels = {v.name: v.shape for v in serving.variables if v.name.startswith("dense_0/kernel")}
    assert [shape[-1] for shape in kernels.values()] == [chosen["hidden_units"]]


def test_each_trial_is_an_mlflow_child_run_and_the_choice_is_on_the_pipeline_run(tuned):
    settings, _ = tuned
    client = mlflow.MlflowClient(store_uri(settings))
    tfx_run = lineage.tfx_run_ids(settings)[-1]
    parent = parent_run(client, settings, tfx_run)
    stage = child_runs(client, parent)[TUNER]
    trials = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{run_logging.TAG_PARENT}` = '{stage.info.run_id}'")
    assert sorted(int(t.data.params["hidden_units"]) for t in trials) == sorted(WIDTHS)
    for trial in trials:
        history = client.get_metric_history(trial.info.run_id, "val_loss")
        assert 1 <= len(history) <= EPOCHS
        assert [m.step for m in history] == list(range(1, len(history) + 1))
        assert trial.data.metrics["score"] == pytest.approx(min(m.value for m in history))
    best = min(trials, key=lambda t: t.data.metrics["score"])
    assert parent.data.params["tuned.hidden_units"] == best.data.params["hidden_units"]
    assert json.loads(parent.data.params["tune"].lower()) is True
