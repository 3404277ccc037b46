"""Every tf.data iterator the stages make over examples or training batches has autotuning off
(components/tf_data_autotune.py): deleting an autotuned iterator waited for tf.data's model
thread, up to the iterator's own lifetime again."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.ingest import example_batches
from components.score import bulk_inference, writer
from components.score.schema_types import ROW_KEY, output_column
from components.train import in_memory_input


@pytest.fixture
def keras_as_the_trainer_runs_it():
    """AutoGraph kept out of tf_keras, as build_model does before the Trainer's fit (the first
    fit in a process otherwise spends ~11 s converting Keras itself)."""
    from components.train.model import keep_autograph_out_of_keras

    keep_autograph_out_of_keras()


def _iterated_autotune(monkeypatch) -> list[bool]:
    """Whether autotuning was on, for every tf.data iterator made from here on."""
    seen: list[bool] = []
    iterate = tf.data.Dataset.__iter__

    def spy(self):
        seen.append(self.options().autotune.enabled)
        return iterate(self)

    monkeypatch.setattr(tf.data.Dataset, "__iter__", spy)
    return seen


def _example(key: int, value: float) -> bytes:
    example = tf.train.Example()
    example.features.feature[ROW_KEY].int64_list.value.append(key)
    example.features.feature[output_column("binary")].float_list.value.append(value)
    return example.SerializeToString()


def test_the_readers_of_examples_iterate_without_autotuning(tmp_path, monkeypatch):
    """The contract check's and StatisticsGen's reader, the PredictionsWriter's, the
    BulkInferrer's (the 1.5M-row contract check's iterator waited 17 s in half the runs)."""
    examples = tmp_path / "examples.gz"
    with tf.io.TFRecordWriter(str(examples), "GZIP") as out:
        for i in range(3):
            out.write(_example(i, 0.25 * i))
    seen = _iterated_autotune(monkeypatch)
    assert sum(b.num_rows for b in example_batches.read_batches([str(examples)], 2)) == 3
    keys, _ = writer.read_predictions([str(examples)], output_column("binary"))
    assert keys.tolist() == [0, 1, 2]
    score = bulk_inference._ScoreFile("unused", "serving", "out", "new", str(tmp_path), 1)
    score._input = "examples"
    score._fn = lambda examples: {"out": tf.fill([tf.size(examples)], 0.5)}
    assert list(score.process((0, str(examples)))) == [3]
    assert seen == [False, False, False]


def test_keras_fits_the_in_memory_split_without_autotuning(monkeypatch,
                                                            keras_as_the_trainer_runs_it):
    """Keras makes a new iterator per epoch (and per validation pass) and deletes the last:
    between some of taxi's 7 epochs that waited 0.3 s."""
    rng = np.random.default_rng(0)
    features = {"x": rng.random(40).astype(np.float32)}
    label = rng.integers(0, 2, 40)
    train = in_memory_input.batches_from_memory(features, label, batch_size=8, shuffle=True,
                                                seed=1)
    evaluation = in_memory_input.batches_from_memory(features, label, batch_size=8,
                                                     shuffle=False, seed=1)
    inputs = keras.Input((), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs[:, None]))
    model.compile("adam", "sparse_categorical_crossentropy")
    seen = _iterated_autotune(monkeypatch)
    model.fit(train, validation_data=evaluation, epochs=3, verbose=0)
    # None: not set, so on by default.
    assert len(seen) >= 6 and all(enabled is False for enabled in seen)  # 3 epochs, 3 evals


def test_keras_fits_a_streamed_split_without_autotuning(monkeypatch,
                                                        keras_as_the_trainer_runs_it):
    """A split too big for memory streams from its files every epoch (trainer_module's
    split_input, through TFX's DataAccessor with read_split, which the Tuner's datasets use
    too), shuffled and prefetched: those iterators too. A stand-alone stream of 1.5M examples
    waited 12-14 s after 4 of its 6 epochs."""
    import types

    from components.train import trainer_module

    rng = np.random.default_rng(0)
    features = {"x": rng.random(40).astype(np.float32)}
    label = rng.integers(0, 2, 40)
    asked = []

    def tf_dataset_factory(files, options, schema):  # TFX's DataAccessor's signature
        asked.append((options.batch_size, options.shuffle))
        return tf.data.Dataset.from_tensor_slices((features, label)).batch(options.batch_size)

    monkeypatch.setattr(in_memory_input, "read_arrays", lambda dataset, max_bytes: None)
    split = trainer_module.split_input(
        ["unused"], types.SimpleNamespace(tf_dataset_factory=tf_dataset_factory),
        types.SimpleNamespace(transformed_metadata=types.SimpleNamespace(schema=None)),
        types.SimpleNamespace(transformed_label="y"), seed=1)
    train = split.batches(8, shuffle=True, seed=1)
    inputs = keras.Input((), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs[:, None]))
    model.compile("adam", "sparse_categorical_crossentropy")
    seen = _iterated_autotune(monkeypatch)
    model.fit(train, epochs=3, verbose=0)
    assert (8, True) in asked  # the streamed path, not the arrays
    assert len(seen) >= 3 and all(enabled is False for enabled in seen)
