"""MLflow tracking: each pipeline run is one MLflow run, each stage execution a nested child run.

Logged after the TFX run, from ML Metadata and the artifacts, not from inside components: the
components stay free of tracking code, and any orchestrator logs the same way by calling
log_pipeline_run when a run ends (LocalDagRunner here; an Airflow task later). Failed and
interrupted runs are logged too, as far as they got, so no MLflow run is left RUNNING. The data
is each run's MLflow dataset inputs (one per split), on the pipeline's run and on the runs of the
stages that read it; the code is the run's source (this checkout, its branch and commit).

The store is a SQLite database and an artifact folder under the dataset's output folder, unless
the standard MLFLOW_TRACKING_URI variable points elsewhere (a tracking server works unchanged).
Nothing here touches MLflow at import time.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import subprocess
import tempfile
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from pipeline.config import stage_names
from pipeline.config.dataset_spec import DatasetSpec
from pipeline.config.file_digest import file_sha256
from pipeline.config.settings import REPO_ROOT, Settings
from pipeline.mlmd import queries
from pipeline.tracking import dataset_inputs

if TYPE_CHECKING:
    import mlflow
    from mlflow.entities import DatasetInput

    from pipeline.tracking.registry import RegisteredVersion
    from pipeline.tracking.stage_records import StageRecord

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"

# Tags that tie MLflow runs to TFX (ML Metadata) runs and executions.
TAG_PIPELINE = "tfx.pipeline_name"
TAG_PIPELINE_RUN = "tfx.pipeline_run_id"
TAG_NODE = "tfx.node_id"
TAG_EXECUTION = "tfx.execution_id"
TAG_STATE = "tfx.state"
TAG_COMPONENT = "tfx.component"
TAG_CACHED_FROM = "tfx.cached_from_run"  # MLflow run of the execution whose outputs were reused
TAG_CACHED_FROM_EXECUTION = "tfx.cached_from_execution_id"
TAG_ERROR = "error"
TAG_TRACKING_ERROR = "tracking_error"  # what of the run could not be recorded (run ends FAILED)
# MLflow's own names, which its UI reads. It shows a run's Source (the base name of
# mlflow.source.name, with the branch and the first 7 digits of the commit beside it) only when
# mlflow.source.name is set.
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_GIT_BRANCH = "mlflow.source.git.branch"
TAG_PARENT = "mlflow.parentRunId"  # nests child runs under the parent
SOURCE_TYPE = "LOCAL"  # mlflow.entities.SourceType.LOCAL: code run from a local checkout
# An experiment's kind decides where the MLflow 3 UI opens it: with this value on the runs table
# (the "Model training" view), without the tag on the GenAI overview of traces.
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# A dataset input's role in a run (MLflow's name): the split it is.
ERROR_FILE = "error.txt"

FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"
_MAX_TAG = 5000
_BATCH = 500  # MLflow's log_batch takes at most 1000 metrics per call


def tracking_uri(settings: Settings) -> str:
    """MLFLOW_TRACKING_URI when set, else the dataset's own SQLite store."""
    return os.environ.get(TRACKING_URI_ENV) or \
        f"sqlite:///{(Path(settings.mlflow_dir) / 'mlflow.db').resolve()}"


def artifact_root(settings: Settings) -> str:
    return (Path(settings.mlflow_dir) / "artifacts").resolve().as_uri()


def uses_local_store(settings: Settings) -> bool:
    return not os.environ.get(TRACKING_URI_ENV)


@contextlib.contextmanager
def active_store(settings: Settings) -> Iterator[mlflow.MlflowClient]:
    """A client on the run's store, with MLflow's global tracking URI pointed at it meanwhile.

    Logging a model only works through the global URI. set_tracking_uri also writes
    MLFLOW_TRACKING_URI into the environment, so the variable is put back as it was."""
    import mlflow

    uri = tracking_uri(settings)
    if uses_local_store(settings):
        Path(settings.mlflow_dir).mkdir(parents=True, exist_ok=True)
    # Read before set_tracking_uri writes the variable: from here on it is always set.
    saved_env = os.environ.get(TRACKING_URI_ENV)
    mlflow.set_tracking_uri(uri)
    try:
        yield mlflow.MlflowClient(uri)
    finally:
        mlflow.set_tracking_uri(None)
        if saved_env is not None:
            os.environ[TRACKING_URI_ENV] = saved_env


def experiment_id(client, settings: Settings, artifact_location: str | None) -> str:
    """The pipeline's experiment (one per pipeline and dataset), created on first use.

    artifact_location: where a new experiment keeps artifacts; None lets the store decide (a
    tracking server has its own), the local store needs one or MLflow picks ./mlruns."""
    from mlflow.exceptions import MlflowException

    name = settings.full_pipeline_name
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location,
                                            tags={TAG_EXPERIMENT_KIND: EXPERIMENT_KIND})
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":  # created meanwhile by a concurrent run
                raise
            experiment = client.get_experiment_by_name(name)
    if experiment.lifecycle_stage == "deleted":  # deleted in the UI: runs need it back
        client.restore_experiment(experiment.experiment_id)
    # An experiment made before the tag existed, or by hand. A kind someone chose in the UI stays.
    if not experiment.tags.get(TAG_EXPERIMENT_KIND):
        client.set_experiment_tag(experiment.experiment_id, TAG_EXPERIMENT_KIND, EXPERIMENT_KIND)
    return experiment.experiment_id


# ---- which TFX run is this ---------------------------------------------------------------

def tfx_run_ids(settings: Settings) -> list[str]:
    """The pipeline's TFX run ids recorded in ML Metadata so far, oldest first."""
    if not Path(settings.metadata_path).exists():
        return []
    with queries.open_store_context(settings.metadata_path) as store:
        return queries.run_ids(store, settings.full_pipeline_name)


def new_tfx_run_id(settings: Settings, before: list[str]) -> str | None:
    """The run a pipeline invocation added (None when it failed before TFX started one)."""
    new = [r for r in tfx_run_ids(settings) if r not in set(before)]
    return new[-1] if new else None


# ---- facts about the run -----------------------------------------------------------------

def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def git_commit() -> tuple[str, bool] | None:
    """(commit, has uncommitted changes to tracked files), or None outside a git checkout."""
    try:
        commit = _git("rev-parse", "HEAD")
        status = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit, bool(status)


def source_tags() -> dict[str, str]:
    """Where the run's code came from, in the tags MLflow's UI shows as a run's Source: this
    checkout (the pipeline is the whole repository: its definition and module code), the branch
    and the commit. git.dirty says whether tracked files differed from the commit."""
    tags = {TAG_SOURCE_NAME: str(REPO_ROOT), TAG_SOURCE_TYPE: SOURCE_TYPE}
    commit = git_commit()
    if commit is not None:
        tags[TAG_GIT_COMMIT], tags["git.dirty"] = commit[0], str(commit[1]).lower()
        try:
            branch = _git("rev-parse", "--abbrev-ref", "HEAD")
        except (OSError, subprocess.CalledProcessError):
            branch = ""
        if branch and branch != "HEAD":  # HEAD: a detached checkout has no branch
            tags[TAG_GIT_BRANCH] = branch
    return tags


def settings_params(settings: Settings) -> dict[str, str]:
    """Every setting but the ports (where to serve things, not how the run went), and the Beam
    args the run was given."""
    params = {}
    for field in dataclasses.fields(Settings):
        if field.name.endswith("_port"):
            continue
        value = getattr(settings, field.name)
        params[field.name] = " ".join(value) if isinstance(value, tuple) else str(value)
    try:
        params["beam_pipeline_args"] = " ".join(settings.beam_pipeline_args())
    except ValueError as e:  # an incomplete cluster runner setting: the run failed on it
        params["beam_pipeline_args"] = f"(invalid: {e})"[:_MAX_TAG]
    return params


def error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def _recording_failed(client, run_id: str, what: str, error: Exception) -> None:
    """Part of a run could not be recorded: the run's tag says what, the log keeps the trace."""
    logging.getLogger(__name__).error("MLflow: recording %s in run %s failed", what, run_id,
                                      exc_info=error)
    client.set_tag(run_id, TAG_TRACKING_ERROR, _short(f"{what}: {type(error).__name__}: {error}"))


def _short(text: str) -> str:
    return text if len(text) <= _MAX_TAG else text[:_MAX_TAG - 20] + "\n... (truncated)"


def _producer(store, node: queries.NodeExecution) -> tuple[int, str] | None:
    """(execution id, TFX run id) of the execution that made a cached execution's outputs."""
    from ml_metadata.proto import metadata_store_pb2

    artifact_ids = [a.id for artifacts in node.outputs.values() for a in artifacts]
    if not artifact_ids:
        return None
    producers = {e.execution_id for e in store.get_events_by_artifact_ids(artifact_ids)
                 if e.type == metadata_store_pb2.Event.OUTPUT
                 and e.execution_id != node.execution.id}
    completed = [e for e in store.get_executions_by_id(sorted(producers))
                 if e.last_known_state == queries.COMPLETE]
    if not completed:
        return None
    original = min(completed, key=lambda e: e.id)
    runs = [c.name for c in store.get_contexts_by_execution(original.id)
            if c.type == "pipeline_run"]
    return original.id, runs[0] if runs else ""


def run_status(node: queries.NodeExecution, error: BaseException | None) -> str:
    state = node.execution.last_known_state
    if state in (queries.COMPLETE, queries.CACHED):
        return FINISHED
    if state == queries.FAILED:
        return FAILED
    # Still RUNNING (or NEW) in ML Metadata: the run stopped underneath it.
    return KILLED if isinstance(error, KeyboardInterrupt) else FAILED


def state_name(node: queries.NodeExecution, error: BaseException | None) -> str:
    if node.is_resolver and node.state == "ran":
        return "resolved"
    if node.state in ("ran", "cached", "failed"):
        return node.state
    return "interrupted" if isinstance(error, KeyboardInterrupt) else "stopped"


def error_summary(error: BaseException) -> str:
    message = str(error).strip()
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


# ---- logging ------------------------------------------------------------------------------

@dataclasses.dataclass
class TrackedRun:
    run_id: str
    experiment_id: str
    tracking_uri: str
    status: str
    children: dict[str, str]  # node id -> child run id
    model: RegisteredVersion | None = None

    def summary(self) -> str:
        lines = [f"MLflow run {self.run_id} ({self.status.lower()}), experiment "
                 f"{self.experiment_id}, store {self.tracking_uri}"]
        if self.model is not None:
            m = self.model
            verdict = ("blessed: now champion" if m.champion else "blessed" if m.blessed
                       else "not blessed: champion unchanged")
            lines.append(f"  model {m.name} version {m.version} ({verdict})")
        return "\n".join(lines) + "\n"


def _log(client, run_id: str, params=None, metrics=None, series=None, tags=None) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    entries = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()]
    for key, values in (series or {}).items():
        entries += [Metric(key, float(v), now, step) for step, v in enumerate(values, start=1)]
    param_list = [Param(k, str(v)) for k, v in (params or {}).items()]
    tag_list = [RunTag(k, _short(str(v))) for k, v in (tags or {}).items()]
    client.log_batch(run_id, params=param_list, tags=tag_list)
    for start in range(0, len(entries), _BATCH):
        client.log_batch(run_id, metrics=entries[start:start + _BATCH])


def _log_files(client, run_id: str, files: list[tuple[Path, str]]) -> None:
    for path, folder in files:
        path = Path(path)
        if path.is_dir():
            client.log_artifacts(run_id, str(path), folder or None)
        elif path.exists():
            client.log_artifact(run_id, str(path), folder or None)


def _find_run(client, experiment: str, execution_id: int, tfx_run: str) -> str | None:
    runs = client.search_runs(
        [experiment],
        filter_string=(f"tags.`{TAG_EXECUTION}` = '{execution_id}' and "
                       f"tags.`{TAG_PIPELINE_RUN}` = '{tfx_run}'"),
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def _log_stage(client, store, experiment: str, parent: str, node: queries.NodeExecution,
               spec: DatasetSpec, tfx_run: str, error: BaseException | None,
               workdir: Path, source: dict[str, str],
               inputs: dict[str | None, DatasetInput]) -> tuple[str, StageRecord, float]:
    from pipeline.tracking import stage_records

    execution = node.execution
    started = execution.create_time_since_epoch or int(time.time() * 1000)
    ended = max(execution.last_update_time_since_epoch, started)
    status = run_status(node, error)
    tags = {TAG_PARENT: parent, TAG_PIPELINE_RUN: tfx_run, TAG_NODE: node.node_id,
            TAG_EXECUTION: str(execution.id), TAG_STATE: state_name(node, error),
            TAG_COMPONENT: execution.type, **source}
    run = client.create_run(experiment, start_time=started, tags=tags, run_name=node.node_id)
    run_id = run.info.run_id
    record = stage_records.StageRecord()
    try:
        ran = execution.last_known_state == queries.COMPLETE
        if execution.last_known_state in (queries.COMPLETE, queries.CACHED):
            folder = workdir / node.node_id
            folder.mkdir(parents=True, exist_ok=True)
            # A cached stage's files are in the run that made them; it gets a link instead.
            record = stage_records.record(node, spec, folder if ran else None)
        if execution.last_known_state == queries.CACHED:
            producer = _producer(store, node)
            if producer is not None:
                record.tags[TAG_CACHED_FROM_EXECUTION] = str(producer[0])
                source = _find_run(client, experiment, *producer)
                record.tags[TAG_CACHED_FROM] = source or "not tracked"
        seconds = (ended - started) / 1000
        record.metrics["duration_s"] = seconds
        if status != FINISHED and error is not None:
            record.tags[TAG_ERROR] = error_summary(error)
            path = workdir / node.node_id / ERROR_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(error_text(error))
            record.files.append((path, ""))
        _log(client, run_id, record.params, record.metrics, record.series, record.tags)
        _log_files(client, run_id, record.files)
        read = dataset_inputs.stage_inputs(node.node_id, inputs)
        if read:
            client.log_inputs(run_id, datasets=read)
    except Exception as e:  # noqa: BLE001 - one stage's figures must not lose the others
        _recording_failed(client, run_id, node.node_id, e)
        record.tags[TAG_TRACKING_ERROR] = "true"  # the pipeline's run ends FAILED too
        status = FAILED  # an incompletely recorded stage must not look like a whole one
    client.set_terminated(run_id, status, end_time=ended)
    return run_id, record, (ended - started) / 1000


def _log_tuner(client, experiment: str, parent: str, stage_run: str,
               node: queries.NodeExecution, tfx_run: str, source: dict[str, str]) -> None:
    """--tune: each trial a child run of the Tuner's run (when it ran, not when cached), the
    chosen set on the pipeline's run."""
    from pipeline.tracking import tuner_trials

    try:
        if node.execution.last_known_state == queries.COMPLETE:
            tuner_trials.log_trials(client, experiment, stage_run,
                                    {TAG_PIPELINE_RUN: tfx_run, **source}, node)
        _log(client, parent, params=tuner_trials.tuned_params(node))
    except Exception as e:  # noqa: BLE001 - the trials must not lose the stages after them
        _recording_failed(client, stage_run, "the Tuner's trials", e)
        client.set_terminated(stage_run, FAILED)
        return False
    return True


def _log_data(client, run_id: str, spec: DatasetSpec, csv_sha256: str,
              nodes: list[queries.NodeExecution]) -> dict[str | None, DatasetInput] | None:
    """The data's inputs on the pipeline's run (every split); None if they could not be made."""
    by_node = {n.node_id: n for n in nodes}
    try:
        inputs = dataset_inputs.dataset_inputs(
            spec, csv_sha256,
            dataset_inputs.split_hash_buckets(by_node.get(stage_names.EXAMPLE_GEN)),
            dataset_inputs.split_row_counts(by_node.get(stage_names.STATISTICS_GEN)))
        client.log_inputs(run_id, datasets=list(inputs.values()))
    except Exception as e:  # noqa: BLE001 - the run's figures matter more than its data inputs
        _recording_failed(client, run_id, "the dataset inputs", e)
        return None
    return inputs


def _register(client, parent: str, settings: Settings, spec: DatasetSpec,
              nodes: dict[str, queries.NodeExecution]):
    """Log and register the trained model once the Evaluator has judged it."""
    from tfx.utils import path_utils

    from pipeline.definition import builder
    from pipeline.tracking import registry

    trainer, evaluator = nodes.get(builder.TRAINER), nodes.get(builder.EVALUATOR)
    judged = (queries.COMPLETE, queries.CACHED)
    if trainer is None or evaluator is None or evaluator.execution.last_known_state not in judged:
        return None
    models, blessings = trainer.outputs.get("model"), evaluator.outputs.get("blessing")
    if not models or not blessings:
        return None
    blessing = blessings[0].custom_properties.get("blessed")
    blessed = bool(blessing and blessing.int_value == 1)
    return registry.log_and_register(
        client, parent, settings.registered_model_name,
        path_utils.serving_model_path(models[0].uri), spec,
        tfx_model_uri=models[0].uri, blessed=blessed,
        evaluated_now=evaluator.execution.last_known_state == queries.COMPLETE,
        description=f"TFX model {models[0].uri}, "
                    f"{'blessed' if blessed else 'not blessed'} by the Evaluator.",
    )


def log_pipeline_run(settings: Settings, spec: DatasetSpec, tfx_run: str | None, *,
                     error: BaseException | None = None,
                     started_ms: int | None = None) -> TrackedRun:
    """Log one pipeline run (and register its model) from ML Metadata.

    tfx_run: the TFX run id (None if the pipeline failed before TFX started a run).
    error: what ended the run early; KeyboardInterrupt marks it KILLED, anything else FAILED."""
    status = FINISHED if error is None else KILLED if isinstance(error, KeyboardInterrupt) \
        else FAILED
    nodes: list[queries.NodeExecution] = []
    store = None
    if tfx_run is not None:
        store = queries.open_store(settings.metadata_path)
        nodes = queries.run_executions(store, settings.full_pipeline_name, tfx_run)

    location = artifact_root(settings) if uses_local_store(settings) else None
    with active_store(settings) as client, tempfile.TemporaryDirectory() as tmp:
        experiment = experiment_id(client, settings, location)
        first_start = min((n.execution.create_time_since_epoch for n in nodes), default=None)
        started = started_ms or first_start or int(time.time() * 1000)
        csv_sha256 = file_sha256(spec.csv_path)
        source = source_tags()
        tags = {TAG_PIPELINE: settings.full_pipeline_name, TAG_PIPELINE_RUN: tfx_run or "none",
                "dataset": spec.name, "dataset.spec_fingerprint": spec.fingerprint(),
                "dataset.csv": str(spec.csv_path), "dataset.data_sha256": csv_sha256, **source}
        parent = client.create_run(experiment, start_time=started, tags=tags,
                                   run_name=tfx_run or f"{settings.full_pipeline_name} (no run)")
        parent_id = parent.info.run_id
        tracked = TrackedRun(parent_id, experiment, tracking_uri(settings), status, {})
        try:
            _log(client, parent_id, params=settings_params(settings))
            inputs = _log_data(client, parent_id, spec, csv_sha256, nodes)
            whole = inputs is not None  # False once any part of the run could not be recorded
            inputs = inputs or {}
            files: list[tuple[Path, str]] = []
            if spec.spec_path is not None:
                files.append((spec.spec_path, "dataset"))
            metrics, series, stage_tags = {}, {}, {}
            for node in nodes:
                child, record, seconds = _log_stage(client, store, experiment, parent_id, node,
                                                    spec, tfx_run, error, Path(tmp), source,
                                                    inputs)
                tracked.children[node.node_id] = child
                whole &= TAG_TRACKING_ERROR not in record.tags
                if node.node_id == stage_names.TUNER:
                    whole &= _log_tuner(client, experiment, parent_id, child, node, tfx_run,
                                        source)
                # The parent carries every stage's figures, for comparing pipeline runs.
                metrics.update({k: v for k, v in record.metrics.items() if k != "duration_s"})
                metrics[f"duration_s/{node.node_id}"] = seconds
                series.update(record.series)
                if "blessed" in record.tags:
                    stage_tags["blessed"] = record.tags["blessed"]
            if nodes:
                ended = max(n.execution.last_update_time_since_epoch for n in nodes)
                metrics["duration_s/total"] = max(0, ended - started) / 1000
            if error is not None:
                stage_tags[TAG_ERROR] = error_summary(error)
                path = Path(tmp) / ERROR_FILE
                path.write_text(error_text(error))
                files.append((path, ""))
            _log(client, parent_id, metrics=metrics, series=series, tags=stage_tags)
            _log_files(client, parent_id, files)
            # A failed or stopped run registers nothing: its model did not finish the pipeline.
            if error is None:
                tracked.model = _register(client, parent_id, settings, spec,
                                          {n.node_id: n for n in nodes})
        except BaseException as e:
            client.set_tag(parent_id, TAG_TRACKING_ERROR, _short(f"{type(e).__name__}: {e}"))
            client.set_terminated(parent_id, FAILED if status == FINISHED else status)
            raise
        finally:
            if store is not None:
                del store
        if not whole:  # its stages' runs and the log say what is missing and why
            tracked.status = FAILED
        client.set_terminated(parent_id, tracked.status)
    return tracked
