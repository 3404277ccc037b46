"""Python's cyclic garbage collector kept out of the set-up's imports.

Building the pipeline imports TensorFlow, TFX, Beam, tf.Transform and TFMA: ~480k objects that
live as long as the process, and while they are created the collector's full passes (gen2,
every few tens of thousands of new objects once the heap has grown) walk all of them again.
Measured in a new process importing what a run's build imports (2026-12-06, 3 runs each way):
3.53-3.84 s with the collector on, 2.94-3.22 s with it off and one full collection afterwards
(0.36-0.40 s of it), which frees what the imports left in cycles (~280k objects) as the
collector would have. That collection also comes before the run forks its checks' and MLflow
tracking processes, which otherwise inherited the garbage and the collector's counts and
soon walked the whole inherited heap themselves. Penguins first run, 6 interleaved pairs:
14.2-16.9 s against 15.8-18.1 s (the logging after the Pusher 1.1-1.2 s against 1.5-1.8 s);
taxi 27.0-27.7 s against 28.8-32.3 s (2 pairs).

Where the block creates few objects (a warm worker's child builds a pipeline whose modules
are imported already) the full collection would cost more than it saves, and is skipped.

Then, for the run, `frozen()`: what is alive after the build (the set-up's ~480k objects, the
pipeline) moves to the collector's permanent generation, so that the full passes during the
stages walk only what the stages made. Taxi first run, recorded with gc.callbacks (3 runs each
way, 2026-12-07): the run's process spent 1.45 s in three full passes during the Transform,
Trainer and Evaluator, 0.62 s in seven with it; the checks' fork 0.92 s against 0.44 s, the
MLflow tracking fork 0.80 s against 0.20 s (forks made after the freeze inherit it); all
processes' collections 3.5-3.9 s against 1.6-1.9 s. The wall time did not show it through this
machine's noise (26-30 s against 25-29 s). The freeze ends with the run (gc.unfreeze), so a
process that runs pipelines in turn (the tests' in-process runs) collects what a run left in
cycles at its next full pass, as before. (Tried on 2026-12-06 without the unfreeze: the forks
used ~0.3 s less CPU on penguins; it was not kept for that reason.)
"""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator

# Net new objects the collector tracks, below which the block is left to the collector as usual.
COLLECT_ABOVE = 100_000


@contextlib.contextmanager
def collected_once() -> Iterator[None]:
    """The collector off inside the block, then on again (if it was on), with one full
    collection first when the block created more than COLLECT_ABOVE objects. An exception
    leaves the block with the collector on and no collection."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    except BaseException:
        if was_enabled:
            gc.enable()
        raise
    if was_enabled:
        if gc.get_count()[0] > COLLECT_ABOVE:
            gc.collect()
        gc.enable()


@contextlib.contextmanager
def frozen() -> Iterator[None]:
    """What is alive now kept out of the collector's passes inside the block (gc.freeze), and
    back in them after it (gc.unfreeze). Inside a block already frozen (a caller's), nothing
    changes: the outer block ends the freeze."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
