"""MLflow tracking: each pipeline run is one MLflow run, each stage execution a nested child run.

Logged after the TFX run, from ML Metadata and the artifacts, not from inside components: the
components stay free of tracking code, and any orchestrator logs the same way by calling
log_pipeline_run when a run ends (LocalDagRunner here; an Airflow task later). Failed and
interrupted runs are logged too, as far as they got, so no MLflow run is left RUNNING. The data
is each run's MLflow dataset inputs (one per split), on the pipeline's run and on the runs of the
stages that read it; the code is the run's source (this checkout, its branch and commit).

This module puts a run together; each concern has its own module:
  mlflow_store.py    where records go (MLFLOW_TRACKING_URI or the dataset's SQLite store), the
                     pipeline's experiment
  git_source.py      the run's source: checkout, branch, commit
  lineage.py         ML Metadata: the pipeline's TFX runs, what made a cached stage's outputs
  run_logging.py     the tags tying MLflow runs to TFX, batched logging, recording failures
  stage_runs.py      one child run per stage execution (figures from stage_records.py)
  tuner_trials.py    --tune: one run per trial, the chosen set
  dataset_inputs.py  the data as MLflow dataset inputs
  registration.py    the judged model, logged and registered (registry.py)
Nothing here touches MLflow at import time.
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import stage_names
from pipeline.config.dataset_spec import GATE_KEYS, DatasetSpec
from pipeline.config.file_digest import file_sha256
from pipeline.config.secret_urls import mask_url
from pipeline.config.settings import REGRESSION_SETTINGS, Settings
from pipeline.console import blessing_verdict
from pipeline.mlmd import queries
from pipeline.tracking import dataset_inputs, registration, stage_runs, tuner_trials
from pipeline.tracking.git_source import source_tags
from pipeline.tracking.run_logging import (
    ERROR_FILE,
    FAILED,
    FINISHED,
    KILLED,
    TAG_ERROR,
    TAG_PIPELINE,
    TAG_PIPELINE_RUN,
    TAG_TRACKING_ERROR,
    error_summary,
    error_text,
    log,
    log_files,
    short,
)
from pipeline.tracking.mlflow_store import (
    active_store,
    artifact_root,
    experiment_id,
    tracking_uri,
    uses_local_store,
)

if TYPE_CHECKING:
    from pipeline.tracking.registry import RegisteredVersion

_MAX_PARAM = 5000
# Every task's blessing gates (Settings fields of the same names).
ALL_GATES = frozenset(key for keys in GATE_KEYS.values() for key in keys)


@dataclasses.dataclass
class TrackedRun:
    run_id: str
    experiment_id: str
    tracking_uri: str
    status: str
    children: dict[str, str]  # node id -> child run id
    model: RegisteredVersion | None = None
    # Whether the registry's champion alias pointed at `model` when the run was logged, asked
    # by the process that logged it (live_tracking's worker); None: not asked.
    champion_now: bool | None = None

    def summary(self) -> str:
        lines = [f"MLflow run {self.run_id} ({self.status.lower()}), experiment "
                 f"{self.experiment_id}, store {mask_url(self.tracking_uri)}"]
        if self.model is not None:
            m = self.model
            verdict = ("blessed: now champion" if m.champion else "blessed" if m.blessed
                       else "not blessed: champion unchanged")
            lines.append(f"  model {m.name} version {m.version} ({verdict})")
        return "\n".join(lines) + "\n"


def _tag_why_not_blessed(client, run_id: str, model, why: str | None,
                         baseline_uri: str | None) -> None:
    """The Evaluator's verdict on the pipeline run, and on the registered version unless an
    earlier run blessed it, with the model it fell short of named by its version: the baseline
    the Evaluator compared it with (BaselineModelResolver's), which is the champion unless the
    candidate is the champion's own model re-evaluated (a cached Trainer)."""
    if model is None or model.blessed or not why:
        return
    from pipeline.tracking import registry

    champion = registry.champion_version(client, model.name)
    baseline = registry.find_version(client, model.name, baseline_uri) if baseline_uri else None
    version = str(baseline.version) if baseline is not None else champion
    why = blessing_verdict.naming_champion(why, version, is_champion=version == champion)
    client.set_tag(run_id, blessing_verdict.TAG, why)
    if not model.version_blessed:
        client.set_model_version_tag(model.name, model.version, blessing_verdict.TAG, why)


def settings_params(settings: Settings, spec: DatasetSpec | None = None) -> dict[str, str]:
    """Every setting but the ports (where to serve things, not how the run went), and the Beam
    args the run was given; a classification run (spec) leaves out the regression settings.
    With the spec, a blessing gate is the value the run was judged by (the flag's, the spec's
    `gates:` or the default: a gate left to the spec read `None`) and the other tasks' gates
    are left out."""
    params = {}
    task_gates = GATE_KEYS.get(spec.task, ()) if spec is not None else ()
    for field in dataclasses.fields(Settings):
        if field.name.endswith("_port"):
            continue
        if spec is not None and not spec.is_regression and field.name in REGRESSION_SETTINGS:
            continue
        if spec is not None and field.name in ALL_GATES:
            if field.name in task_gates:
                params[field.name] = str(settings.gate(spec, field.name).value)
            continue
        value = getattr(settings, field.name)
        params[field.name] = " ".join(value) if isinstance(value, tuple) else str(value)
    try:
        params["beam_pipeline_args"] = " ".join(settings.beam_pipeline_args())
    except ValueError as e:  # an incomplete cluster runner setting: the run failed on it
        params["beam_pipeline_args"] = f"(invalid: {e})"[:_MAX_PARAM]
    return params


def log_pipeline_run(settings: Settings, spec: DatasetSpec, tfx_run: str | None, *,
                     error: BaseException | None = None,
                     started_ms: int | None = None) -> TrackedRun:
    """Log one pipeline run (and register its model) from ML Metadata, after the fact.

    tfx_run: the TFX run id (None if the pipeline failed before TFX started a run).
    error: what ended the run early; KeyboardInterrupt marks it KILLED, anything else FAILED.
    (live_tracking.py logs the same records while the run goes, with RunLog's steps.)"""
    location = artifact_location(settings)
    with active_store(settings) as client:
        return log_after_the_fact(client, settings, spec, tfx_run, location, error=error,
                                  started_ms=started_ms)


def log_after_the_fact(client, settings: Settings, spec: DatasetSpec, tfx_run: str | None,
                       location: str | None, *, error: BaseException | None = None,
                       started_ms: int | None = None) -> TrackedRun:
    """log_pipeline_run on an open store (location: artifact_location(), read before)."""
    nodes: list[queries.NodeExecution] = []
    store = None
    if tfx_run is not None:
        store = queries.open_store(settings.metadata_path)
        nodes = queries.run_executions(store, settings.full_pipeline_name, tfx_run)
    try:
        run_log = RunLog(client, settings, spec, tfx_run, started_ms, nodes, location)
        try:
            run_log.log_inputs(nodes)
            for node in nodes:
                run_log.log_node(node, store, error)
            return run_log.close(nodes, error)
        finally:
            run_log.cleanup()
    finally:
        if store is not None:
            del store


def artifact_location(settings: Settings) -> str | None:
    """Where a new experiment keeps its artifacts. Read before active_store(): it sets
    MLFLOW_TRACKING_URI, after which every store looks like one the variable chose."""
    return artifact_root(settings) if uses_local_store(settings) else None


class RunLog:
    """One pipeline run's MLflow records, in steps: the pipeline's run (created with its tags
    and parameters), its data inputs, a child run per stage execution, then close(): the
    pipeline's figures, files and model, and its status. Whatever step raises leaves the
    pipeline's run FAILED (or KILLED) with a tracking_error tag, never RUNNING."""

    def __init__(self, client, settings: Settings, spec: DatasetSpec, tfx_run: str | None,
                 started_ms: int | None, nodes: list[queries.NodeExecution],
                 location: str | None):
        """location: artifact_location(settings), read before active_store sets the URI."""
        self.client, self.settings, self.spec, self.tfx_run = client, settings, spec, tfx_run
        self.experiment = experiment_id(client, settings, location)
        first_start = min((n.execution.create_time_since_epoch for n in nodes), default=None)
        self.started = started_ms or first_start or int(time.time() * 1000)
        self.csv_sha256 = file_sha256(spec.csv_path)
        self.source = source_tags()
        self._tmp = tempfile.TemporaryDirectory()
        self.workdir = Path(self._tmp.name)
        tags = {TAG_PIPELINE: settings.full_pipeline_name, TAG_PIPELINE_RUN: tfx_run or "none",
                "dataset": spec.name, "dataset.spec_fingerprint": spec.fingerprint(),
                "dataset.csv": str(spec.csv_path), "dataset.data_sha256": self.csv_sha256,
                **self.source}
        parent = client.create_run(self.experiment, start_time=self.started, tags=tags,
                                   run_name=tfx_run or f"{settings.full_pipeline_name} (no run)")
        self.parent_id = parent.info.run_id
        self.tracked = TrackedRun(self.parent_id, self.experiment, tracking_uri(settings),
                                  FINISHED, {})
        self.whole = True  # False once any part of the run could not be recorded
        self.ended = False  # the pipeline's run has its final status
        self.inputs: dict | None = None  # the data inputs by split, once logged
        self.metrics: dict[str, float] = {}
        self.series: dict[str, list[float]] = {}
        self.stage_tags: dict[str, str] = {}
        self._logged: list[str] = []  # node ids with a child run, in logging order
        self._readers: list[str] = []  # child runs whose data inputs are still to be logged
        self.guarded(log, client, self.parent_id, params=settings_params(settings, spec))

    def guarded(self, step, *args, error: BaseException | None = None, **kwargs):
        """Run one step; if it raises, end the pipeline's run FAILED (KILLED after Ctrl-C)."""
        try:
            return step(*args, **kwargs)
        except BaseException as e:
            self.fail(e, error)
            raise

    def fail(self, e: BaseException, error: BaseException | None = None) -> None:
        status = self.status(error)
        self.client.set_tag(self.parent_id, TAG_TRACKING_ERROR, short(f"{type(e).__name__}: {e}"))
        self.client.set_terminated(self.parent_id, FAILED if status == FINISHED else status)
        self.ended = True

    @staticmethod
    def status(error: BaseException | None) -> str:
        return FINISHED if error is None else KILLED if isinstance(error, KeyboardInterrupt) \
            else FAILED

    def logged(self, node_id: str) -> bool:
        return node_id in self.tracked.children

    def log_inputs(self, nodes: list[queries.NodeExecution],
                   error: BaseException | None = None) -> None:
        """The data's inputs on the pipeline's run and on the stage runs logged so far that read
        it (later stage runs get theirs as they are logged)."""
        self.guarded(self._log_inputs, nodes, error=error)

    def _log_inputs(self, nodes: list[queries.NodeExecution]) -> None:
        inputs = dataset_inputs.log_dataset_inputs(self.client, self.parent_id, self.spec,
                                                   self.csv_sha256, nodes)
        self.whole &= inputs is not None
        self.inputs = inputs or {}
        for node_id in self._readers:
            read = dataset_inputs.stage_inputs(node_id, self.inputs)
            if read:
                self.client.log_inputs(self.tracked.children[node_id], datasets=read)
        self._readers = []

    def log_node(self, node: queries.NodeExecution, store, error: BaseException | None) -> None:
        """The stage's child run (store: ML Metadata, to find what made a cached stage's
        outputs; None for a stage that ran)."""
        self.guarded(self._log_node, node, store, error, error=error)

    def _log_node(self, node, store, error) -> None:
        child, record, seconds = stage_runs.log_stage(
            self.client, store, self.experiment, self.parent_id, node, self.spec, self.tfx_run,
            error, self.workdir, self.source, self.inputs or {})
        self.tracked.children[node.node_id] = child
        if self.inputs is None:
            self._readers.append(node.node_id)
        self.whole &= TAG_TRACKING_ERROR not in record.tags
        if node.node_id == stage_names.TUNER:
            self.whole &= tuner_trials.log_tuner(self.client, self.experiment, self.parent_id,
                                                 child, node, self.tfx_run, self.source)
        # The parent carries every stage's figures, for comparing pipeline runs.
        self.metrics.update({k: v for k, v in record.metrics.items() if k != "duration_s"})
        self.metrics[f"duration_s/{node.node_id}"] = seconds
        self.series.update(record.series)
        for tag in ("blessed", blessing_verdict.TAG):
            if tag in record.tags:
                self.stage_tags[tag] = record.tags[tag]

    def close(self, nodes: list[queries.NodeExecution],
              error: BaseException | None) -> TrackedRun:
        """The pipeline's figures, files and model; its final status. nodes: every execution
        of the run (every one of them logged by now)."""
        self.guarded(self._close, nodes, error, error=error)
        return self.tracked

    def _close(self, nodes, error) -> None:
        if self.inputs is None:
            self._log_inputs(nodes)
        # Node order, as ML Metadata lists the run's executions.
        order = {n.node_id: i for i, n in enumerate(nodes)}
        self.tracked.children = dict(sorted(self.tracked.children.items(),
                                            key=lambda item: order.get(item[0], len(order))))
        files: list[tuple[Path, str]] = []
        if self.spec.spec_path is not None:
            files.append((self.spec.spec_path, "dataset"))
        metrics = dict(self.metrics)
        if nodes:
            ended = max(n.execution.last_update_time_since_epoch for n in nodes)
            metrics["duration_s/total"] = max(0, ended - self.started) / 1000
        stage_tags = dict(self.stage_tags)
        if error is not None:
            stage_tags[TAG_ERROR] = error_summary(error)
            path = self.workdir / ERROR_FILE
            path.write_text(error_text(error))
            files.append((path, ""))
        client, parent_id = self.client, self.parent_id
        log(client, parent_id, metrics=metrics, series=self.series, tags=stage_tags)
        log_files(client, parent_id, files)
        # A failed or stopped run registers nothing: its model did not finish the pipeline.
        if error is None:
            self.tracked.model = registration.register(client, parent_id, self.settings,
                                                       self.spec, {n.node_id: n for n in nodes})
            resolver = next((n for n in nodes if n.node_id == stage_names.BASELINE_RESOLVER),
                            None)
            _tag_why_not_blessed(client, parent_id, self.tracked.model,
                                 stage_tags.get(blessing_verdict.TAG),
                                 resolver.output_uri("model") if resolver else None)
        self.tracked.status = self.status(error)
        if not self.whole:  # its stages' runs and the log say what is missing and why
            self.tracked.status = FAILED
        client.set_terminated(parent_id, self.tracked.status)
        self.ended = True

    def cleanup(self) -> None:
        self._tmp.cleanup()
