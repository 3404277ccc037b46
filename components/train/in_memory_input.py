"""The Trainer's input held in memory when it fits: parsed once, then shuffled and batched from
memory every epoch, as Keras does with arrays.

Streaming from the transformed TFRecords re-reads, un-gzips and parses every example each
epoch on the cores that also train (the Trainer ran at 0.74-0.88 of plain Keras on in-memory
arrays, README Benchmarks). A parsed taxi row is 21 numbers: a million rows are ~170 MB, so the
training and eval splits are read once into tensors, up to MAX_BYTES per split; a split that
would pass it is streamed as before, so memory stays bounded whatever the row count.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf
from absl import logging

# Parsed bytes per split held in memory; above this the split streams from disk each epoch.
MAX_BYTES = 1 << 30
_READ_BATCH = 8192  # rows per batch while reading the split once


def read_arrays(dataset: tf.data.Dataset, max_bytes: int = MAX_BYTES,
                ) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """Every (features, label) batch of a finite dataset concatenated into arrays; None as soon
    as they would take more than max_bytes or a feature is not dense (then the caller
    streams)."""
    columns: dict[str, list[np.ndarray]] = {}
    labels: list[np.ndarray] = []
    size = 0
    for features, label in dataset:
        for name, value in features.items():
            if not isinstance(value, tf.Tensor):
                return None
            array = value.numpy()
            columns.setdefault(name, []).append(array)
            size += array.nbytes
        label = label.numpy()
        labels.append(label)
        size += label.nbytes
        if size > max_bytes:
            return None
    if not labels:
        return None
    return {k: np.concatenate(v) for k, v in columns.items()}, np.concatenate(labels)


def batches_from_memory(features: dict[str, np.ndarray], label: np.ndarray, batch_size: int,
                        shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batches gathered from in-memory tensors. Shuffling permutes the row indices, anew at
    every epoch, so every batch is a random draw over the whole split (not a shuffle buffer).

    The permutation is one tensor op per epoch, cut into batches of indices, as Keras does for
    arrays: `Dataset.range(n).shuffle(n).batch(b)` moved every index through tf.data one by
    one, 1.6 s of CPU per epoch per million rows that the two cores training also needed
    (measured). Each new iterator (each epoch of `fit`) draws a new seed from
    `Dataset.random`, so the order differs between epochs and is the same from run to run."""
    tensors = {k: tf.constant(v) for k, v in features.items()}
    labels = tf.constant(label)
    rows = len(label)
    whole = rows // batch_size * batch_size

    def permutation(epoch_seed):
        indices = tf.range(rows, dtype=tf.int64)
        if not shuffle:
            return indices
        return tf.random.experimental.stateless_shuffle(
            indices, seed=tf.stack([epoch_seed, tf.constant(seed, tf.int64)]))

    def index_batches(indices):
        batches = tf.data.Dataset.from_tensor_slices(
            tf.reshape(indices[:whole], [-1, batch_size]))
        if whole < rows:
            batches = batches.concatenate(tf.data.Dataset.from_tensors(indices[whole:]))
        return batches

    def gather(index):
        return {k: tf.gather(v, index) for k, v in tensors.items()}, tf.gather(labels, index)

    epoch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    # flat_map hides the batch count from Keras, which then logs an end-of-sequence warning
    # at each epoch's end and cannot size its progress line: state it.
    batches = epoch_seeds.map(permutation).flat_map(index_batches).apply(
        tf.data.experimental.assert_cardinality(-(-rows // batch_size)))
    # tf.data's default graph rewrites serialize the dataset's graph, and with it the split's
    # tensors that `gather` captures, and keep the rebuilt copy: one more copy of the split
    # from the first epoch on (+170 MB at 1.05M taxi rows, measured). The map is parallel and
    # prefetched here already. Autotuning is off: deleting each epoch's iterator waited for
    # its model thread (components/tf_data_autotune.py), 0.3 s between some of taxi's epochs.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    return batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE).with_options(options)


class SplitInput:
    """A split read once: held in memory when it fits in max_bytes, else streamed; batched on
    demand, so a Trainer that changes its batch size after counting the rows (a small split,
    trainer_module.run_fn) reads the split once, not twice.

    read_once(batch_size): the split once, unshuffled; stream(batch_size, shuffle): the
    streaming dataset."""

    def __init__(self, read_once: Callable[[int], tf.data.Dataset],
                 stream: Callable[[int, bool], tf.data.Dataset], max_bytes: int = MAX_BYTES):
        self._stream = stream
        self._arrays = read_arrays(read_once(_READ_BATCH), max_bytes)
        if self._arrays is None:
            logging.info("Trainer input: streamed from disk (over %d MB parsed, or not dense)",
                         max_bytes >> 20)
        else:
            features, label = self._arrays
            logging.info("Trainer input: %d rows held in memory (%.0f MB)", len(label),
                         (sum(v.nbytes for v in features.values()) + label.nbytes) / 2**20)

    def batches(self, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
        if self._arrays is None:
            return self._stream(batch_size, shuffle)
        features, label = self._arrays
        return batches_from_memory(features, label, batch_size=batch_size, shuffle=shuffle,
                                   seed=seed)

