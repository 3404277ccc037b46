"""The Trainer's in-memory input (components/train/in_memory_input.py): every row once per epoch,
reshuffled each epoch with the seed, and streaming once a split would pass the memory cap."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from components.train import in_memory_input


def _split(rows: int, batch: int = 7) -> tf.data.Dataset:
    ids = np.arange(rows, dtype=np.int64).reshape(-1, 1)
    features = {"id": ids, "x": ids.astype(np.float32) / 10}
    return tf.data.Dataset.from_tensor_slices((features, ids[:, 0] % 2)).batch(batch)


def _epoch(dataset: tf.data.Dataset) -> list[int]:
    rows = []
    for features, label in dataset:
        ids = features["id"].numpy()[:, 0]
        np.testing.assert_array_equal(label.numpy(), ids % 2)  # rows stay whole
        rows.extend(ids.tolist())
    return rows


def test_every_row_once_per_epoch_reshuffled_between_epochs_and_seeded():
    def make(seed):
        return in_memory_input.SplitInput(lambda batch: _split(50, batch),
                                          lambda b, s: None).batches(8, shuffle=True, seed=seed)

    dataset = make(1)
    first, second = _epoch(dataset), _epoch(dataset)
    assert sorted(first) == sorted(second) == list(range(50))
    assert first != second  # a new order each epoch
    assert first != list(range(50))
    assert _epoch(make(1)) == first  # the same seed gives the same order
    assert [len(f["id"]) for f, _ in dataset] == [8] * 6 + [2]
    assert int(dataset.cardinality()) == 7  # Keras knows an epoch's length up front


def test_a_split_that_fills_whole_batches_has_no_empty_last_batch():
    dataset = in_memory_input.SplitInput(lambda batch: _split(24, batch),
                                         lambda b, s: None).batches(8, shuffle=True, seed=3)
    assert [len(f["id"]) for f, _ in dataset] == [8, 8, 8]
    assert sorted(_epoch(dataset)) == list(range(24))


def test_unshuffled_split_keeps_its_order():
    dataset = in_memory_input.SplitInput(lambda batch: _split(20, batch),
                                         lambda b, s: None).batches(6, shuffle=False, seed=0)
    assert _epoch(dataset) == list(range(20))


def test_a_split_over_the_cap_is_streamed():
    streamed = _split(30).map(lambda f, y: (f, y))
    # 30 rows of two 8- and 4-byte columns and an 8-byte label: 600 bytes.
    dataset = in_memory_input.SplitInput(lambda batch: _split(30, batch), lambda b, s: streamed,
                                         max_bytes=599).batches(8, shuffle=True, seed=0)
    assert dataset is streamed
    kept = in_memory_input.SplitInput(lambda batch: _split(30, batch), lambda b, s: streamed,
                                      max_bytes=600).batches(8, shuffle=True, seed=0)
    assert kept is not streamed and sorted(_epoch(kept)) == list(range(30))


def test_the_in_memory_batches_skip_tf_datas_graph_rewrites():
    # The rewrites serialize the graph with the split's captured tensors and keep the rebuilt
    # copy: one more copy of the split in memory for the whole fit.
    features = {"x": np.arange(10, dtype=np.float32)}
    ds = in_memory_input.batches_from_memory(features, np.arange(10), batch_size=4,
                                             shuffle=True, seed=1)
    assert ds.options().experimental_optimization.apply_default_optimizations is False
    assert sum(len(label) for _, label in ds) == 10


def test_a_split_is_read_once_and_batched_again_from_memory():
    """The Trainer shrinks the batch of a small split after counting its rows
    (trainer_module.run_fn): the second batching comes from the rows already read."""
    reads = []

    def read_once(batch):
        reads.append(batch)
        return _split(30, batch)

    split = in_memory_input.SplitInput(read_once, lambda batch, shuffle: None)
    first = split.batches(16, shuffle=True, seed=2)
    smaller = split.batches(4, shuffle=True, seed=2)
    assert len(reads) == 1
    assert [len(f["id"]) for f, _ in first] == [16, 14]
    assert [len(f["id"]) for f, _ in smaller] == [4] * 7 + [2]
    assert sorted(_epoch(smaller)) == list(range(30))
    # The same rows batched again give the order a fresh read would.
    fresh = in_memory_input.SplitInput(lambda batch: _split(30, batch), lambda b, s: None)
    assert _epoch(fresh.batches(4, shuffle=True, seed=2)) == _epoch(
        in_memory_input.SplitInput(read_once, lambda b, s: None).batches(4, True, 2))


def test_a_streamed_split_is_streamed_at_each_batch_size_asked():
    asked = []
    split = in_memory_input.SplitInput(lambda batch: _split(30, batch),
                                       lambda batch, shuffle: asked.append((batch, shuffle)),
                                       max_bytes=10)
    split.batches(16, shuffle=True, seed=0)
    split.batches(4, shuffle=False, seed=0)
    assert asked == [(16, True), (4, False)]
