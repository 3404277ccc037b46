"""tf.data datasets whose iterators end without waiting: autotuning off.

With autotuning on (tf.data's default), TensorFlow 2.16 runs a model thread beside each
iterator, which sleeps between optimization rounds on a period doubling from 10 ms up to a
minute, and deleting the iterator waited for that thread's next round, at random (in one run of
two to three). Measured here: an iterator streaming 1.5M taxi examples for 27 s, deleted at the
end of each epoch as Keras deletes its epoch's iterator, waited 12-14 s in 4 epochs of 6; the
Trainer's in-memory taxi split, 0.3 s between 1 to 3 of its 7 epochs; the contract check's
reader of 1.5M rows, in the checks' forked process, 17 s in half the runs (the iterator lived
24 s and its wait ended at 40.95 s, the model thread's round at 10 ms x (2^12 - 1)).
With autotuning off there is no model thread to wait for. A parallel map or an AUTOTUNE buffer
then runs with TensorFlow's defaults (one call per core, the legacy prefetch tuner): the epochs
of both examples above took the same time either way.
"""
from __future__ import annotations


def without_autotune(dataset):
    """`dataset` with tf.data's autotuning off (its other options kept)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
