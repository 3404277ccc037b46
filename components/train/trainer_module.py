"""Trainer module code: run_fn builds the model from the spec and the Transform output."""
from __future__ import annotations

import json
import os
import time
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx_bsl.public import tfxio

from components.tf_data_autotune import without_autotune
from components.train import in_memory_input
from components.train.model import (
    LearningRateSchedule,
    MIN_STEPS_PER_EPOCH,
    ModelConfig,
    ModelInput,
    build_model,
    label_scale,
    regression_batch_size,
)
from components.train.export_signatures import (
    make_signatures,
    save_for_serving,
    write_serving_raw_columns,
)
from components.train.hyperparameters import model_settings
from pipeline.config import stage_names
from pipeline.config.dataset_spec import (
    DatasetSpec,
    bucketized_name,
    transformed_name,
    vocabulary_name,
)

HISTORY_FILE = stage_names.TRAINING_HISTORY_FILE
TIMING_FILE = "timing.json"


def model_inputs(spec: DatasetSpec, tft_output: tft.TFTransformOutput) -> list[ModelInput]:
    """One ModelInput per transformed feature, with vocabulary sizes read from the Transform."""
    inputs = []
    for feature in spec.model_features:
        if feature.is_categorical:
            vocabulary = vocabulary_name(feature.name)
            size = tft_output.vocabulary_size_by_name(vocabulary) + feature.oov_buckets
            inputs.append(ModelInput(transformed_name(feature.name), size))
        else:
            inputs.append(ModelInput(transformed_name(feature.name)))
            if feature.buckets:
                # tft.bucketize yields ids 0..buckets-1; +1 keeps an id for values past the edges.
                inputs.append(ModelInput(bucketized_name(feature.name), feature.buckets + 1,
                                         bucketized=True))
    return inputs


def read_split(files, data_accessor, tft_output, spec: DatasetSpec, batch_size: int,
               shuffle: bool, seed: int) -> tf.data.Dataset:
    """A split's (features, label) batches streamed from its TFRecords through TFX's
    DataAccessor, one pass, for the Trainer and the Tuner. Autotuning off: Keras deletes each
    epoch's iterator, and deleting an autotuned one waited up to the epoch's length again
    (components/tf_data_autotune.py)."""
    return without_autotune(data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size, label_key=spec.transformed_label, num_epochs=1,
            shuffle=shuffle, shuffle_seed=seed,
        ),
        tft_output.transformed_metadata.schema,
    ))


def split_input(files, data_accessor, tft_output, spec: DatasetSpec, seed: int
                ) -> in_memory_input.SplitInput:
    """A split read once into memory when it fits (components/train/in_memory_input.py), else
    streamed from the TFRecords every epoch; `.batches(batch_size, ...)` is what fit reads."""
    def read(batch: int, shuffled: bool) -> tf.data.Dataset:
        return read_split(files, data_accessor, tft_output, spec, batch, shuffled, seed)

    return in_memory_input.SplitInput(
        lambda batch: read(batch, shuffled=False),
        lambda batch, shuffle: read(batch, shuffle).prefetch(tf.data.AUTOTUNE))


def dataset(files, data_accessor, tft_output, spec: DatasetSpec, batch_size: int,
            seed: int, shuffle: bool) -> tf.data.Dataset:
    """A split's (features, label) batches as the Trainer fits on them (the bench times this
    too, against Keras on arrays)."""
    return split_input(files, data_accessor, tft_output, spec, seed).batches(
        batch_size, shuffle, seed)


def small_split_rows(train_ds, batch_size: int) -> int:
    """The training split's rows when it is small enough for regression_batch_size to shrink
    the batch (at most MIN_STEPS_PER_EPOCH batches), else a number that keeps it: only that
    many batches are read."""
    batches = train_ds.take(MIN_STEPS_PER_EPOCH).reduce(
        tf.constant(0, tf.int64), lambda n, batch: n + tf.shape(batch[1], out_type=tf.int64)[0])
    return int(batches) if int(batches) < MIN_STEPS_PER_EPOCH * batch_size else \
        MIN_STEPS_PER_EPOCH * batch_size


def run_fn(fn_args: FnArgs) -> None:
    config: dict[str, Any] = fn_args.custom_config
    spec = DatasetSpec.from_config(config["spec"])
    train = config["training"]
    keras.utils.set_random_seed(train["seed"])

    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    train_input = split_input(fn_args.train_files, fn_args.data_accessor, tft_output, spec,
                              train["seed"])
    train_ds = train_input.batches(train["batch_size"], shuffle=True, seed=train["seed"])
    eval_ds = dataset(fn_args.eval_files, fn_args.data_accessor, tft_output, spec,
                       train["batch_size"], train["seed"], shuffle=False)

    # Regression: the model learns the label in standard deviations of the training split's.
    # Any task: a small split trains in batches small enough for an epoch to be a few steps
    # (model.regression_batch_size; iris' 104 training rows in one batch of 128 reached accuracy
    # 0.80 in 30 epochs, in batches of 8 0.96). The smaller batches come from the split as it
    # was read (it was read from disk again: ~0.11 s of a small table's Trainer). The rows are
    # still counted on train_ds: that is one iteration of its seeded shuffle, and the epochs'
    # orders (so the model) stay what they were.
    scale = label_scale(train_ds) if spec.is_regression else None
    rows = scale.count if scale is not None else small_split_rows(train_ds, train["batch_size"])
    batch = regression_batch_size(train["batch_size"], rows)
    if batch != train["batch_size"]:
        train_ds = train_input.batches(batch, shuffle=True, seed=train["seed"])
    model_config = ModelConfig.from_settings(
        spec.num_classes, model_settings(train, fn_args.hyperparameters), scale)
    model = build_model(model_inputs(spec, tft_output), model_config)
    callbacks = [
        LearningRateSchedule(train["epochs"]),
        keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch"),
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=train["early_stopping_patience"],
            restore_best_weights=True,
        ),
    ]
    started = time.perf_counter()
    history = model.fit(train_ds, validation_data=eval_ds, epochs=train["epochs"],
                        callbacks=callbacks, verbose=2)
    fit_seconds = time.perf_counter() - started

    # Per-epoch curves next to the TensorBoard logs, for the summary and for experiment tracking.
    os.makedirs(fn_args.model_run_dir, exist_ok=True)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), "w") as f:
        json.dump({k: [float(v) for v in vals] for k, vals in history.history.items()}, f)
    # For `make bench`: training throughput without TF start-up and model export.
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, TIMING_FILE), "w") as f:
        json.dump({"fit_seconds": fit_seconds, "epochs": len(history.epoch)}, f)

    save_for_serving(model, fn_args.serving_model_dir,
                     make_signatures(model, tft_output, spec))
    write_serving_raw_columns(fn_args.serving_model_dir, spec)
