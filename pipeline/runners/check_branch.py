"""The data checks beside the model's path: a local run's second core at work.

The pipeline's checks (the data contract, statistics, the schema's anomalies, drift and their
gates) read CsvExampleGen's examples and produce nothing the Transform reads; the Trainer waits
for their gates (pipeline/definition/builder.py). TFX's LocalDagRunner runs the nodes one at a
time, and a run is bound by Python's interpreter lock, so the checks (3-4 s of a 15-30 s run on
the bundled data) sat on the one busy core while the other waited.

Here the run forks once, before its first stage: the child runs the check nodes, in their order,
as soon as the examples and the schema exist; the parent runs the others, the Transform among
them, and waits for the child before the first node that depends on a check (the Trainer). Each
node is launched the way LocalDagRunner launches it (the same IR, run id and ML Metadata store;
MLMD's SQLite retries a write the other process holds a lock for), so the records, the cache
and what Airflow runs are the same. The child tells the parent each node's end, and the parent
writes its summary line and hands it to the live MLflow tracking, as for its own stages.

- A failed check: its line says FAILED at once, and the parent stops the stage it is running
  (the Transform, through termination.stop_with: on a large file it would run for minutes for
  nothing) and raises the check's error (the gate's own exception, unpickled). Outside a run's
  termination block (no handler to stop it), the error is raised when that stage ends, before
  any node that needs the checks. The model's path never starts the Trainer on refused data.
- A failed stage in the parent while the checks run: the parent waits for them, and a failed
  check is the error reported (bad data explains a broken Transform, not the other way round).
- Ctrl-C, SIGTERM: the child ignores SIGINT (the terminal sends it to both); the parent stops
  it with SIGTERM and waits, whatever ended its own work. A child whose parent dies gets
  SIGTERM (PR_SET_PDEATHSIG).
- Not forked: when forking is not safe (a thread other than the main one, TensorFlow's runtime
  started: pipeline/runners/warm_worker.fork_unsafe), with no check to run, or with
  CSV2MODEL_OVERLAP_CHECKS=0; the nodes then run one at a time in the IR's order, as
  LocalDagRunner would.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Callable, Collection

from pipeline.config import sent_errors
from pipeline.runners import termination

ENV_SWITCH = "CSV2MODEL_OVERLAP_CHECKS"
_GO, _ENDED, _FAILED = "go", "ended", "failed"
_PR_SET_PDEATHSIG = 1


def disabled(environ=None) -> bool:
    return (environ if environ is not None else os.environ).get(ENV_SWITCH, "1") == "0"


class Branch:
    """How the parent reports what the child ran: `ended(node_id, seconds)` when a check node
    ended (the summary line, the tracking), `failed(node_id, seconds)` when one raised, and
    `stopped()` when the parent's own running stage was stopped for that failure."""

    def __init__(self, ended: Callable[[str, float], None],
                 failed: Callable[[str, float], None],
                 stopped: Callable[[], None] = lambda: None):
        self.ended, self.failed, self.stopped = ended, failed, stopped


def run_with_ir(ir, run_options, checks: Collection[str], branch: Branch | None,
                warm_imports: Collection[str] = ()) -> None:
    """Run the compiled pipeline `ir` (its run id set) as LocalDagRunner.run_with_ir does, the
    nodes in `checks` in a forked child when it is safe (see the module docstring).
    warm_imports: modules the checks will import, imported by the child while the parent makes
    what they read (the examples): Great Expectations' import (1.3-2 s) was the first thing
    the checks did, and on a small table the checks are the longer of the two branches."""
    from tfx.orchestration.local import runner_utils
    from tfx.orchestration.portable import partial_run_utils

    deployment_config = runner_utils.extract_local_deployment_config(ir)
    connection_config = getattr(
        deployment_config.metadata_connection_config,
        deployment_config.metadata_connection_config.WhichOneof("connection_config"))
    if run_options:
        options = run_options.partial_run
        partial_run_utils.mark_pipeline(ir, from_nodes=options.from_nodes or None,
                                        to_nodes=options.to_nodes or None,
                                        snapshot_settings=options.snapshot_settings)
    nodes = [n.pipeline_node for n in ir.nodes]
    launch = _Launch(ir, deployment_config, connection_config)
    to_run = [n for n in nodes if not n.execution_options.HasField("skip")]
    side = [n for n in to_run if n.node_info.id in checks]
    why_not = _why_not_fork(side, branch)
    if why_not is None:
        _Overlapped(launch, nodes, side, branch, warm_imports).run()
        return
    logging.getLogger(__name__).info("The checks run in turn: %s", why_not)
    for node in in_turn(nodes, {n.node_info.id for n in side}):
        launch(node)


def in_turn(nodes: list, checks: Collection[str]) -> list:
    """The nodes one at a time: the checks as soon as what they read exists, so that bad data
    stops the run before the Transform, as when the Transform waited for the gates."""
    others = [n for n in nodes if n.node_info.id not in checks]
    split = _last_needed(others, [n for n in nodes if n.node_info.id in checks]) + 1
    return others[:split] + [n for n in nodes if n.node_info.id in checks] + others[split:]


def _last_needed(others: list, side: list) -> int:
    """The index in `others` of the last node a check reads from (-1: none)."""
    side_ids = {n.node_info.id for n in side}
    needed = {u for n in side for u in n.upstream_nodes} - side_ids
    return max((i for i, n in enumerate(others) if n.node_info.id in needed), default=-1)


def _why_not_fork(side, branch) -> str | None:
    from pipeline.runners.warm_worker import fork_unsafe_now

    if not side or branch is None:
        return "no check to run beside the model's path"
    if disabled():
        return f"{ENV_SWITCH}=0"
    return fork_unsafe_now()


class _Launch:
    """One node, launched as LocalDagRunner.run_with_ir launches each (tfx 1.16)."""

    def __init__(self, ir, deployment_config, connection_config):
        self.ir, self.deployment_config = ir, deployment_config
        self.connection_config = connection_config

    def __call__(self, node) -> None:
        from absl import logging as absl_logging
        from tfx.orchestration import metadata
        from tfx.orchestration.local import runner_utils
        from tfx.orchestration.portable import launcher, partial_run_utils

        node_id = node.node_info.id
        if node.execution_options.HasField("skip"):
            absl_logging.info("Skipping component %s.", node_id)
            return
        component_launcher = launcher.Launcher(
            pipeline_node=node,
            mlmd_connection=metadata.Metadata(self.connection_config),
            pipeline_info=self.ir.pipeline_info,
            pipeline_runtime_spec=self.ir.runtime_spec,
            executor_spec=runner_utils.extract_executor_spec(self.deployment_config, node_id),
            custom_driver_spec=runner_utils.extract_custom_driver_spec(
                self.deployment_config, node_id))
        absl_logging.info("Component %s is running.", node_id)
        if node.execution_options.run.perform_snapshot:
            with metadata.Metadata(self.connection_config) as mlmd_handle:
                partial_run_utils.snapshot(mlmd_handle, self.ir)
        component_launcher.launch()
        absl_logging.info("Component %s is finished.", node_id)


class _Overlapped:
    def __init__(self, launch: _Launch, nodes: list, side: list, branch: Branch,
                 warm_imports: Collection[str] = ()):
        self.launch, self.branch = launch, branch
        self.warm_imports = tuple(warm_imports)
        side_ids = {n.node_info.id for n in side}
        self.side = side
        self.main = [n for n in nodes if n.node_info.id not in side_ids]
        self.side_ids = side_ids
        # What the checks read that the parent makes (the examples, the schema): the child
        # starts once the last of these has run.
        self.go_after = _last_needed(self.main, side)
        self.error: BaseException | None = None
        self._child: int | None = None
        self._went = False  # the child was told to start the checks
        self._down: Connection | None = None
        self._reader: threading.Thread | None = None
        # The parent is inside one of its stages: a failed check stops it there (_read);
        # _stopped: it did.
        self._in_stage = self._stopped = False

    def run(self) -> None:
        self._fork()
        try:
            if self.go_after < 0:
                self._go()
            for index, node in enumerate(self.main):
                if set(node.upstream_nodes) & self.side_ids:
                    self._wait()
                self._raise_if_failed()
                self._in_stage = True
                try:
                    self.launch(node)
                finally:
                    self._in_stage = False
                if index == self.go_after:
                    self._go()
            self._wait()
            self._raise_if_failed()
        except termination.StoppedForFailure:  # a failed check stopped the stage (_read)
            self._own_stage_failed()
            raise
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM (termination.py): the checks stop too
            self._stop_child()
            raise
        except BaseException:
            self._own_stage_failed()
            raise

    def _own_stage_failed(self) -> None:
        """The parent's stage raised: a failed check is the error reported (bad data explains a
        failed stage, not the reverse). Beam re-raises the stop as a RuntimeError when it lands
        in a DoFn: the stage's line says stopped whichever it was."""
        if self._stopped:
            self.branch.stopped()
        self._wait(stopping=True)
        self._raise_if_failed()

    def _stopping_stage(self) -> bool:
        """termination.stop_with's condition, asked in the main thread as the stop lands."""
        self._stopped = self._stopped or self._in_stage
        return self._in_stage

    # ---- the parent --------------------------------------------------------------------------
    def _fork(self) -> None:
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child never returns
            os.close(down_w)
            os.close(up_r)
            _child(self.launch, self.side, Connection(down_r, writable=False),
                   Connection(up_w, readable=False), self.warm_imports)
        os.close(down_r)
        os.close(up_w)
        self._child = pid
        self._down = Connection(down_w, readable=False)
        up = Connection(up_r, writable=False)
        self._reader = threading.Thread(target=self._read, args=(up,), name="checks",
                                        daemon=True)
        self._reader.start()

    def _go(self) -> None:
        self._went = True
        self._send(_GO)

    def _send(self, what: str) -> None:
        try:
            self._down.send((what,))
        except OSError:  # the child is gone: _wait() says why
            pass

    def _read(self, up: Connection) -> None:
        """The child's messages as they come: each check's line while the parent's stage runs."""
        try:
            while True:
                kind, node_id, seconds, *error = up.recv()
                if kind == _ENDED:
                    self.branch.ended(node_id, seconds)
                elif kind == _FAILED:
                    self.error = sent_errors.raised_again(*error)
                    self.branch.failed(node_id, seconds)
                    # The stage beside it (the Transform) would run to its end for nothing.
                    termination.stop_with(self._stopping_stage)
        except (EOFError, OSError):
            pass
        except BaseException as e:  # noqa: BLE001 - a failed report is this run's error
            self.error = self.error or e
        finally:
            up.close()

    def _wait(self, stopping: bool = False) -> None:
        """Until the child has ended (and its last message is handled). stopping: the parent's
        own error ends the run; the child's exit code is not one more."""
        if self._child is None:
            return
        if not stopping:
            self._go()  # a partial run may skip what the child waits for
        elif not self._went:  # the checks have not started: nothing to wait for, and the
            # child may be in its warm-up imports (seconds) before it reads a message: ended now
            try:
                os.kill(self._child, signal.SIGTERM)
            except OSError:
                pass
        _, status = os.waitpid(self._child, 0)
        self._child = None
        self._reader.join()
        self._down.close()
        code = os.waitstatus_to_exitcode(status)
        if code != 0 and self.error is None and not stopping:
            self.error = RuntimeError(f"the checks' process ended with exit code {code}")

    def _stop_child(self) -> None:
        if self._child is not None:
            try:
                os.kill(self._child, signal.SIGTERM)
            except OSError:
                pass
        self._wait(stopping=True)

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error


# ---- the child ---------------------------------------------------------------------------------
def _child(launch: _Launch, side: list, down: Connection, up: Connection,
           warm_imports: Collection[str] = ()) -> None:
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides how the run ends
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # the parent died before the line above
            os._exit(1)
        # The parent's summary handler is on absl's logger: the parent reports these nodes.
        logger = logging.getLogger("absl")
        for handler in list(logger.handlers):
            if type(handler).__name__ == "StageReporter":
                logger.removeHandler(handler)
        _import_while_waiting(warm_imports)
        if down.recv()[0] != _GO:
            os._exit(0)
        for node in side:
            started = time.monotonic()
            node_id = node.node_info.id
            try:
                launch(node)
            except BaseException as e:  # noqa: BLE001 - the parent raises it
                up.send((_FAILED, node_id, time.monotonic() - started,
                         sent_errors.pickled(e), f"{type(e).__name__}: {e}"))
                code = 1
                break
            up.send((_ENDED, node_id, time.monotonic() - started))
    except BaseException:  # noqa: BLE001 - nothing may return into the parent's code
        logging.getLogger(__name__).exception("the checks' process failed")
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _import_while_waiting(modules: Collection[str]) -> None:
    """Import what the checks will, before they may start. A module that fails to import is
    left to the node that needs it, which reports the error as its own."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - only a warm-up
            logging.getLogger(__name__).info("warm-up import of %s failed", name,
                                             exc_info=True)
