"""Short waits when ML Metadata's SQLite database is locked by another process of the run.

ml_metadata 1.16's client (`MetadataStore._call` in ml_metadata/metadata_store/
metadata_store.py) retries a call the store refused as Aborted, which its SQLite source returns
while another connection holds the write lock, after `random.expovariate(1 / 2)` seconds: a
mean of 2 s, and one wait in twenty over 6 s. A local run has two processes writing the store
at once (the checks beside the Transform, pipeline/runners/check_branch.py) and the MLflow
tracking process reading it, each holding the lock for milliseconds. Over 25 taxi runs here: 3
waits, of 0.2, 1.2 and 14.3 s; the last made a cached stage's summary line read 14.5 s.

install() makes the waits start at 10 ms and double up to 1 s, each drawn between half and one
and a half of that so two processes do not retry in step, over 15 tries: ~9 s of waiting before
the error, where the client's 5 tries waited ~8 s on average. What is retried (AbortedError),
the call and the error raised after the last try are the client's.
"""
from __future__ import annotations

import logging
import random
import time

TRIES = 15
FIRST_WAIT_S = 0.01
LONGEST_WAIT_S = 1.0


def wait_s(attempt: int) -> float:
    """The wait after the attempt-th refused try (0 for the first)."""
    return min(FIRST_WAIT_S * 2 ** attempt, LONGEST_WAIT_S) * random.uniform(0.5, 1.5)


def _call(self, method_name, request, response, extra_options=None):
    """MetadataStore._call (ml_metadata 1.16) with this module's waits."""
    from ml_metadata import errors

    del extra_options
    tries = max(self._max_num_retries, TRIES)
    for attempt in range(tries):
        try:
            return self._call_method(method_name, request, response)
        except errors.AbortedError:
            if attempt == tries - 1:
                logging.getLogger(__name__).error("%s failed after retrying %d times.",
                                                  method_name, tries)
                raise
            time.sleep(wait_s(attempt))


def install() -> None:
    """Use the short waits in this process (and the processes it forks). Idempotent."""
    from ml_metadata.metadata_store import metadata_store

    metadata_store.MetadataStore._call = _call
