"""tf.data's functions instantiated without Grappler, TensorFlow's graph optimizer.

TensorFlow's runtime takes one config when it starts (the eager context's first use), and
tf.data instantiates every function of a pipeline (a `map`, a `flat_map`, the parsing of
examples) with it each time an iterator is made. Grappler then optimizes each function's graph
at each iterator: ~5 ms per function, ~15 ms per iterator of the Trainer's in-memory batches
(three functions), and Keras makes two iterators per epoch (training, validation). Measured
on the Trainer's fit with a run's own transformed examples, in-process, each figure the mean of
the 2nd-4th fits in a fresh process, interleaved: penguins 2.04, 1.74, 2.37, 2.57 s with the
runtime started as before, 1.60, 1.39, 1.75, 1.89 s with this; taxi (12 fits each) median
5.8 s, 5.1 s. Training histories byte-identical.

Only the runtime's start is changed: the option is set while the runtime reads its config and
put back right after, so what reads the context's config (tf.function calls, the Transform's
sessions, made before the runtime starts, and TFMA's) optimizes as before.
The whole pipeline with Grappler off everywhere gave the same transformed examples, metrics,
plots and predictions, but the Transform on 150k rows read 18.8-23.5 s against 19.0-21.4 s:
not taken where it is not measured to help.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

OPTION = "disable_meta_optimizer"


@contextlib.contextmanager
def data_functions_unoptimized() -> Iterator[None]:
    """Within the block, TensorFlow's runtime starts (if it has not) with Grappler off for
    the functions it instantiates by its start-up config; the context's config, which sessions
    and tf.function calls read, is never changed outside that start. A process whose runtime
    has started already is left as it is."""
    from tensorflow.python.eager import context as tf_context

    ctx = tf_context.context()
    if ctx._initialized:  # noqa: SLF001 - its start-up config is fixed now
        yield
        return
    start = ctx.ensure_initialized  # the bound method: TF calls it before its first op
    lock = threading.Lock()

    def unhook() -> None:
        if vars(ctx).get("ensure_initialized") is ensure_initialized:
            del ctx.ensure_initialized

    def ensure_initialized() -> None:
        # The option only while the runtime reads its config: a session made before the
        # runtime's start (tf.Transform makes its sessions before any eager op) reads the
        # context's config too, and keeps Grappler.
        with lock:
            before = ctx.get_optimizer_experimental_options().get(OPTION, False)
            ctx.set_optimizer_experimental_options({OPTION: True})
            try:
                start()
            finally:
                ctx.set_optimizer_experimental_options({OPTION: before})
                unhook()

    ctx.ensure_initialized = ensure_initialized  # an instance attribute, over the method
    try:
        yield
    finally:
        with lock:
            unhook()
