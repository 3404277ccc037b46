"""SIGTERM ends a run the way Ctrl-C does, and neither is lost on the way.

`kill`, a scheduler's timeout or a container's stop sends SIGTERM. Python's default ends the
process on the spot: since MLflow logs each stage while the run goes on
(pipeline/tracking/live_tracking.py), that left the run RUNNING in MLflow for good, and the
output folder's lock to be found stale by the next run. Inside `terminating_as_interrupt()` the
signal raises Terminated, a KeyboardInterrupt, so it takes Ctrl-C's path: the MLflow run ends
KILLED, the lock is released, and the process exits 143 (128 + SIGTERM) instead of Ctrl-C's 130.
SIGKILL cannot be caught: the MLflow worker process ends that run KILLED when its pipe closes.

Why the handler is more than `raise`: Python runs it in the main thread between two bytecodes of
whatever runs there, and two kinds of places mishandle what it raises.
- A weakref callback or a `__del__`: Python reports "Exception ignored in ..." and carries on.
  The run then went on to push and register a model and exit 0 (CI, 2026-12-05: the SIGTERM test);
  under pytest-xdist even a redelivered stop landed in a WeakSet's callback.
- importlib's own code, which TensorFlow's lazy imports run all the time. Its module-lock weakref
  callback raised between taking the global import lock and its `try`, so the exception was
  swallowed *and* the import lock stayed held: the live MLflow tracker's next import then waited
  for good and the run hung after its last stage (reproduced here; gdb showed the tracker thread
  in `_imp.acquire_lock` and the log "Exception ignored in: <function _get_module_lock.<locals>.cb>
  ... Terminated").
So the handler (SIGINT's too, unless the caller set its own or ignores it) records the stop and,
inside importlib's code, raises nothing there; a stop that Python reports as swallowed
(`sys.unraisablehook`) or that was held back is delivered again 50 ms later (the signal, sent to
the main thread); and each stage's end calls `raise_if_lost()`, which raises a recorded stop that
some code caught and dropped.

Another thread may also end the main thread's work: `stop_with(failing)` raises StoppedForFailure
there (through SIGUSR2, sent to the main thread, with the same care as above) if `failing()` is
still true when it lands. The checks' process (check_branch.py) uses it so that a file the
contract refuses does not wait for the Transform running beside the checks to end; the caller
then raises the failure it holds. Neither the run's exit status nor `interruption_behind` treats
it as a stop asked for: the run ends with that failure.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator

EXIT_TERMINATED = 128 + signal.SIGTERM
FAILURE_SIGNAL = signal.SIGUSR2  # stop_with's, to the main thread only
RETRY_SECONDS = 0.05  # how soon a stop that arrived at an unsafe place is delivered again


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread where Ctrl-C's KeyboardInterrupt would be."""


class StoppedForFailure(KeyboardInterrupt):
    """Raised in the main thread by stop_with(): another thread holds the run's failure. A
    KeyboardInterrupt so that library code's `except Exception` lets it through."""


@dataclass
class _Stop:
    """The stop asked for while this block runs (None: none yet)."""
    signum: int | None = None
    retry: threading.Timer | None = field(default=None, repr=False)
    # stop_with's condition: StoppedForFailure is raised only while it holds.
    failing: Callable[[], bool] | None = field(default=None, repr=False)


_current: _Stop | None = None


def _interrupt(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _in_importlib(frame) -> bool:
    """Raising here could leave importlib's global lock held (see the module docstring)."""
    return frame is not None and frame.f_code.co_filename.startswith("<frozen importlib")


def _handler(signum: int, frame) -> None:
    stop = _current
    if stop is None:  # a delivery after the block ended: as if this handler were not installed
        raise _interrupt(signum)
    stop.signum = stop.signum or signum
    if _in_importlib(frame):
        _deliver_later(stop)
        return
    raise _interrupt(signum)


def _failure_handler(signum: int, frame) -> None:
    stop = _current
    if stop is None or stop.failing is None or not stop.failing():
        return  # the caller raises the failure at its next step, or there is none
    if _in_importlib(frame):
        _deliver_later(stop, signum)
        return
    raise StoppedForFailure()


def stop_with(failing: Callable[[], bool]) -> bool:
    """From another thread: raise StoppedForFailure in the main thread, if `failing()` is still
    true there when it lands. False when no block runs (the caller raises at its next step)."""
    stop = _current
    if stop is None or threading.current_thread() is threading.main_thread():
        return False
    stop.failing = failing
    signal.pthread_kill(threading.main_thread().ident, FAILURE_SIGNAL)
    return True


def _deliver_later(stop: _Stop, signum: int | None = None) -> None:
    if stop.retry is None or not stop.retry.is_alive():
        stop.retry = threading.Timer(RETRY_SECONDS, _deliver_again,
                                     (stop, signum or stop.signum))
        stop.retry.daemon = True
        stop.retry.start()


def _deliver_again(stop: _Stop, signum: int) -> None:
    # The signal itself, to the main thread: unlike _thread.interrupt_main, it also wakes a main
    # thread blocked in a wait (a lock, a join) so that the handler runs there.
    if stop is _current:  # the block is still running: its handler is still installed
        signal.pthread_kill(threading.main_thread().ident, signum)


def _unraisable_hook(previous):
    """Python calls sys.unraisablehook for an exception it drops (a callback's, a __del__'s):
    a dropped stop is delivered again; anything else goes to the hook there was."""
    def hook(unraisable) -> None:
        stop = _current
        if stop is not None and isinstance(unraisable.exc_value, StoppedForFailure):
            _deliver_later(stop, FAILURE_SIGNAL)
            return
        if stop is not None and stop.signum is not None and \
                isinstance(unraisable.exc_value, KeyboardInterrupt):
            _deliver_later(stop)
            return
        previous(unraisable)
    return hook


def interruption_behind(error: BaseException | None) -> KeyboardInterrupt | None:
    """The stop to raise instead of `error` when a stop was asked for in this block and `error`
    is not one: Beam re-raises what a DoFn raised as `RuntimeError("KeyboardInterrupt [while
    running '...']")`, which made a Ctrl-C in the Evaluator a failure (exit 1, the MLflow run
    FAILED) instead of an interruption. Once a stop is asked for, the run ends as stopped."""
    stop = _current
    if stop is None or stop.signum is None or isinstance(error, KeyboardInterrupt):
        return None
    return _interrupt(stop.signum)


def raise_if_lost() -> None:
    """At a stage's end, in the main thread: raise a stop that arrived but did not propagate
    (swallowed by a callback, see the module docstring). Nothing when no stop was asked for, or
    when the stop is the exception being handled right now."""
    if threading.current_thread() is not threading.main_thread():
        return
    stop = interruption_behind(sys.exc_info()[1])
    if stop is not None:
        raise stop


@contextlib.contextmanager
def terminating_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises Terminated and Ctrl-C KeyboardInterrupt, neither lost;
    the caller's handlers are back afterwards. Off the main thread (a caller's own thread), where
    Python cannot install a handler, the block runs as it is."""
    global _current
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _handler),
                FAILURE_SIGNAL: signal.signal(FAILURE_SIGNAL, _failure_handler)}
    # SIGINT only where Python's own Ctrl-C handler is installed: ignored (nohup, `cmd &` in a
    # shell without job control) or the caller's own handler stays as it is.
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _handler)
    outer, _current = _current, _Stop()
    previous_hook, sys.unraisablehook = sys.unraisablehook, _unraisable_hook(sys.unraisablehook)
    try:
        yield
    finally:
        stop, _current = _current, outer
        if stop.retry is not None:
            stop.retry.cancel()
        sys.unraisablehook = previous_hook
        for signum, handler in previous.items():
            signal.signal(signum, handler)
