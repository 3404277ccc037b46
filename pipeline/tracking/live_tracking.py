"""Logging a `make pipeline` run to MLflow while its stages run, in a process of its own, so
little is left after the Pusher and none of it slows the stages down.

Profiled on taxi (15k rows, first run, pyinstrument): of the 8-15 s of MLflow logging after the
Pusher, 4.5-6 s was creating the store (MLflow's ~60 schema migrations, each an SQLite
transaction with its own fsync: mostly waiting on the disk, ~0.8 s of CPU), ~1 s importing
MLflow, 1.7-7 s the stage runs (plots, statistics pages, ~5 SQLite commits per stage) and the
rest the model (registry.py no longer loads it). A worker does the first three while the stages
run: it opens the store as the run starts and logs each stage that ran or came from the cache
when the live summary reports it (the node it read from ML Metadata, stage_summary.py; for a
cached stage, what made its outputs is looked up there too). finish() then logs what is left
with the same steps as pipeline_runs.log_pipeline_run: failed or stopped stages, any not
reported, the data inputs, the pipeline's figures and the model.

Why a process, not a thread: the run is bound by Python's interpreter lock (its CPU time is its
wall time on a 2-core machine), and a worker thread took 4-6 s of that lock per penguin run
(measured with time.thread_time). A child process does the same work on the other core. It is
a fork of the pipeline's process once the pipeline is built, with TensorFlow, TFMA and TFDV
imported and TensorFlow's runtime not yet started (pipeline/runners/local_dag.py), or, where
forking is not safe then, started with `python -c` (TensorFlow's threads do not survive a
fork); either way in a session of its own so Ctrl-C in the terminal reaches only the pipeline,
which tells the worker how the run ended. Events go down one pipe and acknowledgements, the
result or the worker's error come back up another (multiprocessing's pickled, length-prefixed
messages). If the pipeline process dies without finish() (SIGKILL), the worker sees the pipe
close and ends the run KILLED.

The pipeline's MLflow run is created when the first stage has run (TFX has recorded the run by
then); a run that fails before that is logged after the fact, as before. finish() waits for the
worker and raises what it raised, in the main thread: a run whose tracking failed does not exit
0, and its MLflow run ends FAILED with a tracking_error tag, not RUNNING.
"""
from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import sent_errors, stage_names
from pipeline.config.dataset_spec import DatasetSpec
from pipeline.config.settings import Settings
from pipeline.mlmd import lock_retry, queries
from pipeline.tracking import pipeline_runs, run_logging
from pipeline.tracking.mlflow_store import active_store

if TYPE_CHECKING:
    from pipeline.tracking.pipeline_runs import TrackedRun

# Messages. Down (pipeline -> worker): a NodeExecution as a stage ends, then (_FINISH, tfx_run,
# error). Up: _ACK per event handled, then (_RESULT, TrackedRun) or (_FAILED, ...).
_FINISH, _ACK, _RESULT, _FAILED = "finish", "ack", "result", "failed"
_PARENT_GONE = object()
_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding the `pipeline` package
# What the pipeline's command line does first, then the worker (pipeline/cli/unused_imports.py:
# its warm-up imported IPython and tqdm's notebook bar through Beam's BigQuery IO, ~0.36 s).
_WORKER = ("import sys; sys.path.insert(0, sys.argv[1]); "
           "from pipeline.cli.unused_imports import keep_out; keep_out(); "
           "from pipeline.tracking.live_tracking import serve; serve(*map(int, sys.argv[2:]))")


# The worker's niceness above the pipeline's: on two cores its imports and logging (6-8 s when
# it was a new process started with the run) ran beside the set-up, the checks and the
# Transform, which a run waits for, where its own work is waited for only after the Pusher.
# At 10 the scheduler gives it the cores the others leave (penguins first run, 19 interleaved
# pairs: mean 0.5 s shorter; the logging after the Pusher 1.29 s against 1.30 s).
NICENESS = 10


class LiveTracker:
    """The pipeline's side: starts the worker, passes it each finished stage, waits for it."""

    def __init__(self, settings: Settings, spec: DatasetSpec, run_id: str, started_ms: int,
                 fork: bool = False):
        """fork: start the worker as a fork of this process, which may fork (the caller knows:
        no Python thread, TensorFlow's runtime not started) and has imported what the records
        read (TensorFlow, TFMA, TFDV; MLflow too in a warm worker's child,
        pipeline/runners/warm_reruns.py): a new process's ~7 s of imports no longer share the two
        cores with the stages."""
        self.settings, self.spec, self.run_id, self.started_ms = settings, spec, run_id, started_ms
        self._fork = fork
        self._process: subprocess.Popen | _Forked | None = None
        self._down: Connection | None = None
        self._up: Connection | None = None
        # stage_finished runs in TFX's thread, and in the thread that reads the checks' process
        # (pipeline/runners/check_branch.py): one send, and one count, at a time.
        self._send_lock = threading.RLock()
        self._sent = self._acked = 0
        self._failure: BaseException | None = None
        self._result: TrackedRun | None = None

    def start(self, fork: bool | None = None) -> LiveTracker:
        """Start the worker (once): it imports MLflow and opens the store meanwhile. fork: as a
        fork of this process (True) or a new process (False); None: as constructed."""
        if self._process is not None:
            return self
        if fork is not None:
            self._fork = fork
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        log_path = Path(self.settings.log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(log_path, "ab") as log:  # MLflow's own output goes where the run's does
                if self._fork:
                    self._process = _Forked.start(log.fileno(), down_r, up_w, (down_w, up_r))
                else:
                    self._process = subprocess.Popen(
                        [sys.executable, "-c", _WORKER, _ROOT, str(down_r), str(up_w)],
                        stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                        pass_fds=(down_r, up_w), start_new_session=True)
        finally:
            os.close(down_r)
            os.close(up_w)
        self._down, self._up = Connection(down_w, readable=False), Connection(up_r, writable=False)
        self._send((self.settings, self.spec, self.run_id, self.started_ms,
                    pipeline_runs.artifact_location(self.settings)))
        return self

    def stage_finished(self, node: queries.NodeExecution | None) -> None:
        """Called by the live summary as each stage ends (in TFX's thread)."""
        if node is not None:
            self.start()
            with self._send_lock:
                if self._send(node):
                    self._sent += 1

    def drain(self, poll_s: float = 0.05) -> None:
        """Wait until every stage reported so far is logged (or the worker stopped): for the
        bench and tests, which read the store meanwhile."""
        while self._acked < self._sent and self._failure is None:
            if not self._receive(poll_s) and self._process.poll() is not None:
                return

    def finish(self, tfx_run: str | None, error: BaseException | None = None) -> TrackedRun:
        """Log what is left and wait for it; raise what the worker raised."""
        self.start()
        self._send((_FINISH, tfx_run, portable_error(error)))
        while self._result is None and self._failure is None:
            if not self._receive(0.5) and self._process.poll() is not None:
                self._receive(0)  # what it sent before it ended
                if self._result is None and self._failure is None:
                    self._failure = RuntimeError(
                        f"the MLflow tracking process ended with exit code "
                        f"{self._process.returncode} (see {self.settings.log_path})")
        self._close()
        if self._failure is not None:
            raise self._failure
        return self._result

    def _send(self, message) -> bool:
        with self._send_lock:
            try:
                self._down.send(message)
                return True
            except OSError:  # the worker ended: finish() reports why
                return False

    def _receive(self, timeout: float) -> bool:
        """Read the worker's messages that arrive within `timeout`; False when none did."""
        got = False
        try:
            while self._up.poll(timeout):
                got, timeout = True, 0
                kind, *payload = self._up.recv()
                if kind == _ACK:
                    self._acked += 1
                elif kind == _RESULT:
                    self._result = payload[0]
                elif kind == _FAILED:
                    self._failure = _raised_again(*payload)
        except (EOFError, OSError):
            return got
        return got

    def _close(self) -> None:
        for connection in (self._down, self._up):
            connection.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class _Forked:
    """The worker as a fork of the pipeline's process, with what LiveTracker uses of a Popen:
    the same descriptors (the log on stdout and stderr, no stdin, the two pipe ends) and a
    session of its own."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    @classmethod
    def start(cls, log_fd: int, down_fd: int, up_fd: int, parent_ends: tuple[int, int]
              ) -> _Forked:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return cls(pid)
        try:  # the child: nothing of the parent's but what serve() needs
            os.setsid()
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD,
                           signal.SIGUSR1, signal.SIGUSR2):
                signal.signal(signum, signal.SIG_DFL)  # as in a new process
            for fd in parent_ends:
                os.close(fd)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.closerange(3, min(down_fd, up_fd))
            os.closerange(max(down_fd, up_fd) + 1, os.sysconf("SC_OPEN_MAX"))
            if abs(down_fd - up_fd) > 1:
                os.closerange(min(down_fd, up_fd) + 1, max(down_fd, up_fd))
            serve(down_fd, up_fd)  # ends with os._exit(0)
        finally:
            os._exit(1)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"tracking worker {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


def portable_error(error: BaseException | None) -> tuple | None:
    """What the worker needs of the run's error (exceptions and their tracebacks do not all
    pickle): whether it was an interruption, its type's name, message and traceback."""
    if error is None:
        return None
    return (isinstance(error, KeyboardInterrupt), type(error).__name__, str(error),
            run_logging.error_text(error))


def _raised_again(pickled: bytes | None, summary: str, text: str) -> BaseException:
    """The worker's exception in this process: itself when it pickles, else a RuntimeError
    naming it. Its traceback goes to the run's log."""
    logging.getLogger(__name__).error("MLflow tracking failed in its worker process:\n%s", text)
    return sent_errors.raised_again(pickled, summary)


# ---- the worker process ----------------------------------------------------------------------
def serve(down_fd: int, up_fd: int) -> None:
    """The worker's main: log events from the pipeline until finish, then exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pipeline decides how the run ends
    os.nice(NICENESS)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    lock_retry.install()  # it reads ML Metadata while the pipeline writes it
    down, up = Connection(down_fd, writable=False), Connection(up_fd, readable=False)
    settings, spec, run_id, started_ms, location = down.recv()
    events: queue.Queue = queue.Queue()

    def read() -> None:  # at once, so the pipeline's sends never wait on a full pipe
        try:
            while True:
                events.put(down.recv())
        except (EOFError, OSError):
            events.put(_PARENT_GONE)

    threading.Thread(target=read, name="pipeline-events", daemon=True).start()
    worker = _Worker(settings, spec, run_id, started_ms, location)
    try:
        worker.work(events, lambda: up.send((_ACK,)))
        message = (_RESULT, worker.result)
    except BaseException as e:  # noqa: BLE001 - raised again in the pipeline by finish()
        message = (_FAILED, sent_errors.pickled(e), run_logging.error_summary(e),
                   run_logging.error_text(e))
    try:
        up.send(message)
    except OSError:
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # the result is sent: nothing left worth an interpreter's teardown


class _Worker:
    """The logging itself, in the worker process: a RunLog fed stage by stage."""

    def __init__(self, settings: Settings, spec: DatasetSpec, run_id: str, started_ms: int,
                 location: str | None):
        self.settings, self.spec, self.run_id, self.started_ms = settings, spec, run_id, started_ms
        self._location = location
        self._run_log: pipeline_runs.RunLog | None = None
        self._seen: dict[str, queries.NodeExecution] = {}
        self._store = None  # ML Metadata, opened when first read (a cached stage, or finish)
        self.result: TrackedRun | None = None

    def _metadata(self):
        if self._store is None:
            self._store = queries.open_store(self.settings.metadata_path)
        return self._store

    def work(self, events: queue.Queue, handled) -> None:
        try:
            with active_store(self.settings) as client:  # a first run creates the store here
                # Before the first event: a run whose stages all come from the cache sends every
                # event within a second of its set-up's end, and its records need TFMA (with
                # TensorFlow) too, which a fork of the pipeline's process has already.
                _warm_up()
                while True:
                    event = events.get()
                    if event is _PARENT_GONE:  # killed without finish(): not left RUNNING
                        if self._run_log is not None:
                            self.result = self._finish(client, self.run_id, _parent_gone())
                        return
                    if isinstance(event, tuple) and event[0] == _FINISH:
                        self.result = self._finish(client, event[1], _rebuilt(event[2]))
                        _ask_champion(client, self.result)
                        return
                    self._stage(client, event)
                    handled()
        except BaseException as e:
            if self._run_log is not None and not self._run_log.ended:
                try:  # a failure outside RunLog's own steps: still no run left RUNNING
                    self._run_log.fail(e)
                except Exception:  # noqa: BLE001 - the store itself may be what failed
                    pass
            raise
        finally:
            if self._run_log is not None:
                self._run_log.cleanup()

    def _stage(self, client, node: queries.NodeExecution) -> None:
        self._seen[node.node_id] = node
        state = node.execution.last_known_state
        # A failed or stopped stage is logged by finish(), with the run's error.
        if state not in (queries.COMPLETE, queries.CACHED):
            return
        if self._run_log is None:
            self._run_log = pipeline_runs.RunLog(client, self.settings, self.spec, self.run_id,
                                                 self.started_ms, [], self._location)
        # A cached stage's record names the execution that made its outputs, found in ML
        # Metadata now, while the stages after it run (it was ~1 s of the logging after the
        # Pusher of a run whose first ten stages came from the cache). The reads fall between
        # TFX's writes; ML Metadata's SQLite busy handler retries a locked database.
        store = self._metadata() if state == queries.CACHED else None
        self._run_log.log_node(node, store, None)
        if node.node_id == stage_names.STATISTICS_GEN:  # the splits' row counts are known now
            self._run_log.log_inputs(list(self._seen.values()))

    def _finish(self, client, tfx_run: str | None, error: BaseException | None) -> TrackedRun:
        run_log = self._run_log
        if run_log is None:  # nothing logged yet: all of it after the fact
            return pipeline_runs.log_after_the_fact(client, self.settings, self.spec, tfx_run,
                                                    self._location, error=error,
                                                    started_ms=self.started_ms)
        store = self._metadata()
        # A stage has run, so TFX recorded this run (tfx_run names it too).
        nodes = queries.run_executions(store, self.settings.full_pipeline_name,
                                       tfx_run or self.run_id)
        for node in nodes:
            if not run_log.logged(node.node_id):
                run_log.log_node(node, store, error)
        return run_log.close(nodes, error)


def _ask_champion(client, tracked: TrackedRun) -> None:
    """Whether the champion alias points at the run's model (run_record keeps it): asked here,
    where MLflow is loaded, not in the pipeline's process (1.3 s of MLflow's import there)."""
    from pipeline.tracking import registry

    model = tracked.model
    if model is not None:
        try:
            tracked.champion_now = model.champion or \
                registry.champion_version(client, model.name) == str(model.version)
        except Exception:  # noqa: BLE001 - left to run_record, which asks again and reports
            logging.getLogger(__name__).warning("could not read the champion alias",
                                                exc_info=True)


def _rebuilt(error: tuple | None) -> BaseException | None:
    """The run's error as portable_error described it, for RunLog: the same status, summary
    and traceback text as the original."""
    if error is None:
        return None
    interrupted, type_name, message, text = error
    kind = run_logging.ReportedInterrupt if interrupted else run_logging.ReportedError
    return kind(type_name, message, text)


def _parent_gone() -> BaseException:
    return run_logging.ReportedInterrupt(
        "ProcessEnded", "the pipeline process ended before the run finished (killed?)", "")


def _warm_up() -> None:
    """What the records need, imported before the first stage ends: MLflow's pyfunc modules, its
    map of installed modules to packages (Model.log checks the pinned requirements against it:
    ~1 s over this venv's packages). The map is MLflow's private cache: if it moves, the
    model's logging pays for it later, as before."""
    import mlflow.pyfunc  # noqa: F401
    from mlflow.models import Model  # noqa: F401

    # The Evaluator's record (TFMA, matplotlib's Agg canvas for its plots), not imported after
    # the Evaluator (0.5-0.7 s of the logging after the Pusher).
    import tensorflow_model_analysis  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401
    from matplotlib import figure  # noqa: F401
    # Matplotlib's first canvas reads IPython's version when IPython is imported (TFDV imports
    # it, its init deferred: pipeline/cli/unused_imports.py), which runs that init, ~0.15 s.
    import IPython

    IPython.version_info  # noqa: B018 - the first use, here rather than at the first plot

    try:
        from mlflow.utils import requirements_utils

        requirements_utils._init_packages_to_modules_map()
    except Exception:  # noqa: BLE001 - only a warm-up
        pass
