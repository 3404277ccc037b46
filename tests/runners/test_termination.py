"""Ctrl-C and SIGTERM are never lost (pipeline/runners/termination.py): not where Python would
swallow the exception (a weakref callback, a __del__) nor inside importlib, where raising left the
global import lock held and a run hung (seen in CI and reproduced, 2026-12-05)."""
from __future__ import annotations

import _imp
import gc
import signal
import sys
import threading
import time
import weakref

import pytest

from pipeline.runners import termination


class _Target:
    pass


def _in_importlib(handler, signum):
    """Run the installed handler from a frame of importlib's bootstrap, as Python does when the
    signal lands there."""
    code = compile("handler(signum, sys._getframe())", "<frozen importlib._bootstrap>", "exec")
    exec(code, {"handler": handler, "signum": signum, "sys": sys})


def _wait_for_interrupt(seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)


def test_sigterm_raises_terminated_and_the_callers_handler_is_back_afterwards():
    def callers(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, callers)
    try:
        with pytest.raises(termination.Terminated):
            with termination.terminating_as_interrupt():
                signal.raise_signal(signal.SIGTERM)
                _wait_for_interrupt()
        assert signal.getsignal(signal.SIGTERM) is callers
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_stop_landing_in_importlib_is_not_raised_there_but_moments_later():
    before = signal.getsignal(signal.SIGTERM)
    returned = False
    with pytest.raises(termination.Terminated):
        with termination.terminating_as_interrupt():
            handler = signal.getsignal(signal.SIGTERM)
            # The handler returns there (raising would leave importlib's lock held) ...
            _in_importlib(handler, signal.SIGTERM)
            returned = True
            assert not _imp.lock_held()
            # ... and the stop arrives again, at a place where it propagates.
            _wait_for_interrupt()
    assert returned
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_held_back_stop_wakes_a_main_thread_blocked_in_a_wait():
    started = time.monotonic()
    with pytest.raises(termination.Terminated):
        with termination.terminating_as_interrupt():
            _in_importlib(signal.getsignal(signal.SIGTERM), signal.SIGTERM)
            threading.Event().wait(60)  # a lock wait: only a real signal interrupts it
    assert time.monotonic() - started < 30


def test_ctrl_c_landing_in_a_finalizer_is_raised_after_it_as_keyboardinterrupt():
    with pytest.raises(KeyboardInterrupt) as raised:
        with termination.terminating_as_interrupt():
            handler = signal.getsignal(signal.SIGINT)
            assert handler is not signal.default_int_handler

            class Finalized:
                def __del__(self):
                    handler(signal.SIGINT, sys._getframe())

            Finalized()
            gc.collect()
            _wait_for_interrupt()
    assert type(raised.value) is KeyboardInterrupt


def test_a_stop_swallowed_by_a_callback_is_delivered_again():
    """A weakref callback's frame is an ordinary function's: the handler raises in it, and Python
    drops the exception (as with importlib's lock callback, or a WeakSet's under pytest-xdist)."""
    with pytest.raises(termination.Terminated):
        with termination.terminating_as_interrupt():
            handler = signal.getsignal(signal.SIGTERM)
            target = _Target()
            ref = weakref.ref(target, lambda _: handler(signal.SIGTERM, sys._getframe()))
            del target
            gc.collect()
            assert ref() is None  # the callback ran and its exception was dropped ...
            _wait_for_interrupt()  # ... and the stop comes again


def test_a_stop_that_code_caught_and_dropped_is_raised_at_the_stages_end():
    with termination.terminating_as_interrupt():
        handler = signal.getsignal(signal.SIGTERM)
        try:  # library code that catches everything
            handler(signal.SIGTERM, sys._getframe())
        except BaseException:  # noqa: BLE001
            pass
        with pytest.raises(termination.Terminated):
            termination.raise_if_lost()


def test_nothing_is_raised_at_a_stages_end_without_a_stop_or_while_the_stop_is_handled():
    with termination.terminating_as_interrupt():
        termination.raise_if_lost()
        handler = signal.getsignal(signal.SIGTERM)
        try:
            handler(signal.SIGTERM, sys._getframe())
        except termination.Terminated:
            termination.raise_if_lost()  # the stop is the exception being handled: no second
    termination.raise_if_lost()  # outside the block: nothing to raise


def test_a_pending_redelivery_is_dropped_when_the_block_ends():
    """A stop that the block's own code handled (here: caught) before its redelivery must not
    reach the caller's code as a stray Ctrl-C."""
    with termination.terminating_as_interrupt():
        _in_importlib(signal.getsignal(signal.SIGINT), signal.SIGINT)
    _wait_for_interrupt(termination.RETRY_SECONDS * 10)  # no KeyboardInterrupt here


def test_an_ignored_ctrl_c_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with termination.terminating_as_interrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_off_the_main_thread_the_block_runs_as_it_is():
    seen = []

    def work():
        with termination.terminating_as_interrupt():
            seen.append(signal.getsignal(signal.SIGTERM))
            termination.raise_if_lost()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [signal.getsignal(signal.SIGTERM)]


def test_an_error_that_follows_a_stop_becomes_that_stop():
    """Beam re-raises a DoFn's KeyboardInterrupt as RuntimeError("KeyboardInterrupt [while
    running '...']"): once a stop was asked for, the run ends as stopped, not failed."""
    beams = RuntimeError("KeyboardInterrupt [while running 'ComputeMetricsAndPlots()']")
    assert termination.interruption_behind(beams) is None  # outside the block
    for signum, expected in ((signal.SIGINT, KeyboardInterrupt),
                             (signal.SIGTERM, termination.Terminated)):
        with termination.terminating_as_interrupt():
            assert termination.interruption_behind(beams) is None  # no stop asked for
            try:
                signal.getsignal(signum)(signum, sys._getframe())
            except KeyboardInterrupt:
                pass
            assert type(termination.interruption_behind(beams)) is expected
            assert termination.interruption_behind(KeyboardInterrupt()) is None  # one already


def _from_another_thread(fn, delay: float = 0.2) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(delay), fn()), daemon=True)
    thread.start()
    return thread


def test_stop_with_from_another_thread_wakes_the_blocked_main_thread_while_it_is_failing():
    """The checks' reader thread (check_branch.py) ends the Transform's wait this way."""
    started = time.monotonic()
    delivered = []
    with pytest.raises(termination.StoppedForFailure):
        with termination.terminating_as_interrupt():
            _from_another_thread(lambda: delivered.append(termination.stop_with(lambda: True)))
            threading.Event().wait(60)
    assert delivered == [True] and time.monotonic() - started < 30
    # Not a stop asked for: the error the caller raises for it stays that error.
    assert termination.interruption_behind(ValueError("bad data")) is None


def test_stop_with_raises_nothing_once_its_condition_no_longer_holds():
    """Asked in the main thread as the signal lands: the stage it was for has ended."""
    with termination.terminating_as_interrupt():
        thread = _from_another_thread(lambda: termination.stop_with(lambda: False), delay=0)
        thread.join()
        _wait_for_interrupt(0.5)
        signal.raise_signal(termination.FAILURE_SIGNAL)  # a stray one: nothing asked
        _wait_for_interrupt(0.2)


def test_stop_with_landing_in_importlib_comes_moments_later():
    with pytest.raises(termination.StoppedForFailure):
        with termination.terminating_as_interrupt():
            termination._current.failing = lambda: True  # noqa: SLF001 - as stop_with sets it
            _in_importlib(signal.getsignal(termination.FAILURE_SIGNAL), termination.FAILURE_SIGNAL)
            assert not _imp.lock_held()
            threading.Event().wait(60)


def test_stop_with_outside_a_block_or_from_the_main_thread_asks_nothing():
    assert termination.stop_with(lambda: True) is False
    with termination.terminating_as_interrupt():
        assert termination.stop_with(lambda: True) is False
        _wait_for_interrupt(0.2)
