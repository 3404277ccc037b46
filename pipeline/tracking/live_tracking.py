"""Logging a `make pipeline` run to MLflow while its stages run, so little is left after the
Pusher.

Profiled on taxi (15k rows, first run, pyinstrument): of the 8-15 s of MLflow logging after the
Pusher, 4.5-6 s was creating the store (MLflow's ~60 schema migrations, each an SQLite
transaction with its own fsync: mostly waiting on the disk, ~0.8 s of CPU), ~1 s importing
MLflow, 1.7-7 s the stage runs (plots, statistics pages, ~5 SQLite commits per stage) and the
rest the model (registry.py no longer loads it). A worker thread does the first three while the
stages run: it opens the store when the first stage ends and logs each stage that ran when the
stage ends (the node the live summary read from ML Metadata, stage_summary.py). finish() then logs
what is left with the same steps as pipeline_runs.log_pipeline_run: stages served from cache
(what made their outputs is looked up in ML Metadata, which only the main thread reads while
TFX runs), failed or stopped ones, the data inputs, the pipeline's figures and the model.

The pipeline's MLflow run is created when the first stage has run (TFX has recorded the run by
then); a run that fails before that is logged after the fact, as before. finish() waits for the
worker and raises what it raised, in the main thread: a run whose tracking failed does not exit
0, and its MLflow run ends FAILED with a tracking_error tag, not RUNNING.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING

from pipeline.config import stage_names
from pipeline.config.dataset_spec import DatasetSpec
from pipeline.config.settings import Settings
from pipeline.mlmd import queries
from pipeline.tracking import pipeline_runs
from pipeline.tracking.mlflow_store import active_store

if TYPE_CHECKING:
    from pipeline.tracking.pipeline_runs import TrackedRun

_FINISH = object()


class LiveTracker:
    def __init__(self, settings: Settings, spec: DatasetSpec, run_id: str, started_ms: int):
        self.settings, self.spec, self.run_id, self.started_ms = settings, spec, run_id, started_ms
        self._events: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="mlflow-tracking", daemon=True)
        self._run_log: pipeline_runs.RunLog | None = None
        self._seen: dict[str, queries.NodeExecution] = {}
        self._result: TrackedRun | None = None
        self._failure: BaseException | None = None
        self._location = pipeline_runs.artifact_location(settings)

    def start(self) -> LiveTracker:
        """Start the worker now. Otherwise it starts when the first stage ends: by then the run
        has imported TensorFlow, TFX, Beam and Great Expectations, so MLflow's import does not
        run beside theirs (two threads importing modules they share can deadlock on Python's
        import locks) and does not slow the set-up down."""
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()
        return self

    def stage_finished(self, node: queries.NodeExecution | None) -> None:
        """Called by the live summary as each stage ends (in TFX's thread: a put)."""
        if node is not None:
            self._events.put(node)
            self.start()

    def drain(self, poll_s: float = 0.05) -> None:
        """Wait until every stage reported so far is logged (or the worker stopped): for the
        bench and tests, which read the store meanwhile."""
        while self._events.unfinished_tasks and self._thread.is_alive():
            time.sleep(poll_s)

    def finish(self, tfx_run: str | None, error: BaseException | None = None) -> TrackedRun:
        """Log what is left and wait for it; raise what the worker raised."""
        self._events.put((_FINISH, tfx_run, error))
        self.start()
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        assert self._result is not None
        return self._result

    # ---- the worker thread ----------------------------------------------------------------
    def _work(self) -> None:
        try:
            with active_store(self.settings) as client:  # a first run creates the store here
                _warm_up()
                while True:
                    event = self._events.get()
                    if isinstance(event, tuple) and event[0] is _FINISH:
                        self._result = self._finish(client, *event[1:])
                        return
                    self._stage(client, event)
                    self._events.task_done()
        except BaseException as e:  # noqa: BLE001 - raised again in the main thread by finish()
            self._failure = e
            if self._run_log is not None and not self._run_log.ended:
                try:  # a failure outside RunLog's own steps: still no run left RUNNING
                    self._run_log.fail(e)
                except Exception:  # noqa: BLE001 - the store itself may be what failed
                    pass
        finally:
            if self._run_log is not None:
                self._run_log.cleanup()

    def _stage(self, client, node: queries.NodeExecution) -> None:
        self._seen[node.node_id] = node
        # A cached stage's producer is found in ML Metadata: logged by finish(), like a failure.
        if node.execution.last_known_state != queries.COMPLETE:
            return
        if self._run_log is None:
            self._run_log = pipeline_runs.RunLog(client, self.settings, self.spec, self.run_id,
                                                 self.started_ms, [], self._location)
        self._run_log.log_node(node, None, None)
        if node.node_id == stage_names.STATISTICS_GEN:  # the splits' row counts are known now
            self._run_log.log_inputs(list(self._seen.values()))

    def _finish(self, client, tfx_run: str | None, error: BaseException | None) -> TrackedRun:
        run_log = self._run_log
        if run_log is None:  # nothing logged yet: all of it after the fact
            return pipeline_runs.log_after_the_fact(client, self.settings, self.spec, tfx_run,
                                                    self._location, error=error,
                                                    started_ms=self.started_ms)
        with queries.open_store_context(self.settings.metadata_path) as store:
            # A stage has run, so TFX recorded this run (tfx_run names it too).
            nodes = queries.run_executions(store, self.settings.full_pipeline_name,
                                           tfx_run or self.run_id)
            for node in nodes:
                if not run_log.logged(node.node_id):
                    run_log.log_node(node, store, error)
        return run_log.close(nodes, error)


def _warm_up() -> None:
    """What the model's logging needs, while the stages run: MLflow's pyfunc modules, and its
    map of installed modules to packages (Model.log checks the pinned requirements against it:
    ~1 s over this venv's packages). The map is MLflow's private cache: if it moves, the
    model's logging pays for it later, as before."""
    import mlflow.pyfunc  # noqa: F401
    from mlflow.models import Model  # noqa: F401

    try:
        from mlflow.utils import requirements_utils

        requirements_utils._init_packages_to_modules_map()
    except Exception:  # noqa: BLE001 - only a warm-up
        pass
