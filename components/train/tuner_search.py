"""TFX's Tuner with an executor that also records every trial for experiment tracking.

TFX's own executor keeps only the completed trials' final scores (tuner_results.json). This one
also writes TRIALS_FILE beside it: each trial's hyperparameter values, status, score and
per-epoch metrics (val_loss, val_accuracy, ...), which pipeline/tracking/tuner_trials.py logs as
MLflow child runs. Module-level classes, so every orchestrator can import the executor by path.
"""
from __future__ import annotations

import json
import os
from typing import Any

import keras_tuner
import tensorflow_transform as tft
import tf_keras as keras
from tfx.components.tuner import component as tuner_component
from tfx.components.tuner import executor as tuner_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components.train.model import (
    LearningRateSchedule,
    ModelConfig,
    build_model,
    label_scale,
    regression_batch_size,
)
from components.train.trainer_module import model_inputs, read_split, small_split_rows
from components.train.hyperparameters import model_settings
from pipeline.config.dataset_spec import DatasetSpec

TRIALS_FILE = "trials.json"
TUNER_FN = "components.train.tuner_search.tuner_fn"


class TfKerasTrials:
    """Trials for tf_keras models. KerasTuner 1.4 is written for Keras 3 (`import keras`): it
    refuses a tf_keras Model, adds Keras 3 callbacks and reads a Keras 3 History. A trial here
    builds the model, fits it with the search's callbacks, keeps its per-epoch history and
    reports the metrics of its best epoch (lowest val_loss, the epoch early stopping restores).
    Hyperband's later rounds train their candidates from scratch for the round's epochs rather
    than from a checkpoint."""

    def run_trial(self, trial, *args, **kwargs):
        hp = trial.hyperparameters
        if "tuner/epochs" in hp.values:
            kwargs["epochs"] = hp.values["tuner/epochs"]
        model = self.hypermodel.build(hp)
        history = model.fit(*args, **kwargs).history
        self.histories = {**getattr(self, "histories", {}),
                          trial.trial_id: {k: [float(v) for v in vs] for k, vs in history.items()}}
        best = min(range(len(history["val_loss"])), key=history["val_loss"].__getitem__)
        return {name: float(values[best]) for name, values in history.items()}


class BayesianSearch(TfKerasTrials, keras_tuner.BayesianOptimization):
    pass


class HyperbandSearch(TfKerasTrials, keras_tuner.Hyperband):
    pass


class RandomSearch(TfKerasTrials, keras_tuner.RandomSearch):
    pass


def tuner_fn(fn_args):
    """TFX's Tuner entry point: a KerasTuner tuner over the search space, and its fit args."""
    config = fn_args.custom_config
    spec = DatasetSpec.from_config(config["spec"])
    train, tune = config["training"], config["tuning"]
    keras.utils.set_random_seed(train["seed"])
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    inputs = model_inputs(spec, tft_output)
    space = tune["search_space"]
    scale = None  # regression: the training label's scale, read once before the first trial

    def build(hp):
        values = model_settings(train, None)
        values.update({name: hp.Choice(name, choices) for name, choices in space.items()})
        model_config = ModelConfig.from_settings(spec.num_classes, values, scale)
        return build_model(inputs, model_config)

    common = dict(objective="val_loss", seed=train["seed"], overwrite=True,
                  directory=fn_args.working_dir, project_name="search",
                  max_consecutive_failed_trials=1)
    if tune["algorithm"] == "hyperband":
        # Hyperband sizes its brackets from max_epochs; one iteration keeps it near the budget.
        tuner = HyperbandSearch(build, max_epochs=tune["epochs"], factor=3,
                                hyperband_iterations=1, **common)
    elif tune["algorithm"] == "random":
        tuner = RandomSearch(build, max_trials=tune["max_trials"], **common)
    else:
        tuner = BayesianSearch(build, max_trials=tune["max_trials"], **common)

    def dataset(files, shuffle, batch_size=train["batch_size"]):
        return read_split(files, fn_args.data_accessor, tft_output, spec, batch_size, shuffle,
                          train["seed"])

    train_ds = dataset(fn_args.train_files, True)
    # The search's objective stays val_loss: for regression the eval split's loss (mean
    # squared or Huber error in standard deviations), lower is better, as for classes. A small
    # split trains in smaller batches, whatever the task, as the Trainer's.
    rows = label_scale(train_ds).count if spec.is_regression else \
        small_split_rows(train_ds, train["batch_size"])
    batch = regression_batch_size(train["batch_size"], rows)
    if batch != train["batch_size"]:  # trials train as the Trainer will
        train_ds = dataset(fn_args.train_files, True, batch)
    callbacks = [LearningRateSchedule(tune["epochs"]), keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=train["early_stopping_patience"],
        restore_best_weights=True)]
    return tuner_component.TunerFnResult(tuner=tuner, fit_kwargs={
        "x": train_ds,
        "validation_data": dataset(fn_args.eval_files, False),
        "epochs": tune["epochs"], "callbacks": callbacks, "verbose": 0,
    })


def trial_records(tuner) -> list[dict[str, Any]]:
    """Every trial: id, status, score, hyperparameter values, per-epoch metrics (a list per
    metric name, epoch 1 first)."""
    records = []
    for trial in tuner.oracle.trials.values():
        metrics = getattr(tuner, "histories", {}).get(trial.trial_id, {})
        records.append({"trial_id": trial.trial_id, "status": str(trial.status),
                        "score": None if trial.score is None else float(trial.score),
                        "values": dict(trial.hyperparameters.values), "metrics": metrics})
    return records


class TrialRecordingExecutor(tuner_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 (TFX's name)
        if tuner_executor.get_tune_args(exec_properties):
            raise ValueError("TuneArgs (parallel trials) is not supported by this executor")
        tuner = tuner_executor.search(input_dict, exec_properties, self._get_tmp_dir())
        tuner_executor.write_best_hyperparameters(tuner, output_dict)
        uri = artifact_utils.get_single_uri(output_dict["tuner_results"])
        io_utils.write_string_file(os.path.join(uri, TRIALS_FILE),
                                   json.dumps(trial_records(tuner)))


class TrialRecordingTuner(tuner_component.Tuner):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(TrialRecordingExecutor)
