"""An exception sent from one of a run's processes to another: the MLflow worker's to the
pipeline (pipeline/tracking/live_tracking.py), the checks' process's to the run's
(pipeline/runners/check_branch.py). It arrives as itself when it pickles, so the receiver's
error handling (the CLI's message and exit code depend on the exception's type) is what it
would have been in one process; else as a RuntimeError naming it."""
from __future__ import annotations

import pickle


def pickled(error: BaseException) -> bytes | None:
    """The exception's pickle, or None when it would not make the trip (a class that does not
    pickle, or whose pickle does not load back)."""
    try:
        data = pickle.dumps(error)
        pickle.loads(data)
    except Exception:  # noqa: BLE001 - any failure means: send its name instead
        return None
    return data


def raised_again(data: bytes | None, summary: str) -> BaseException:
    """The exception to raise here: the one sent when it came pickled, else RuntimeError(summary)
    (summary: "<type name>: <message>", as the sender had it)."""
    if data is not None:
        try:
            return pickle.loads(data)
        except Exception:  # noqa: BLE001 - a class this process cannot rebuild
            pass
    return RuntimeError(summary)
