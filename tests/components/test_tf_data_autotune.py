"""Every tf.data iterator the stages make over examples or training batches has autotuning off
(components/tf_data_autotune.py): deleting an autotuned iterator waited for tf.data's model
thread, up to the iterator's own lifetime again."""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from components.ingest import example_batches
from components.score import bulk_inference, writer
from components.score.schema_types import ROW_KEY, output_column
from components.train import in_memory_input


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


def test_keras_fits_the_in_memory_split_without_autotuning(monkeypatch):
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
