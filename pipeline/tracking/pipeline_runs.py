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
from pipeline.config.dataset_spec import DatasetSpec
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
                 f"{self.experiment_id}, store {mask_url(self.tracking_uri)}"]
        if self.model is not None:
            m = self.model
            verdict = ("blessed: now champion" if m.champion else "blessed" if m.blessed
                       else "not blessed: champion unchanged")
            lines.append(f"  model {m.name} version {m.version} ({verdict})")
        return "\n".join(lines) + "\n"


def _tag_why_not_blessed(client, run_id: str, model, why: str | None) -> None:
    """The Evaluator's verdict on the pipeline run and the registered version, with the
    champion it fell short of named by its version."""
    if model is None or model.blessed or not why:
        return
    from pipeline.tracking import registry

    why = blessing_verdict.naming_champion(why, registry.champion_version(client, model.name))
    client.set_tag(run_id, blessing_verdict.TAG, why)
    client.set_model_version_tag(model.name, model.version, blessing_verdict.TAG, why)


def settings_params(settings: Settings, spec: DatasetSpec | None = None) -> dict[str, str]:
    """Every setting but the ports (where to serve things, not how the run went), and the Beam
    args the run was given; a classification run (spec) leaves out the regression settings."""
    params = {}
    for field in dataclasses.fields(Settings):
        if field.name.endswith("_port"):
            continue
        if spec is not None and not spec.is_regression and field.name in REGRESSION_SETTINGS:
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
            log(client, parent_id, params=settings_params(settings, spec))
            inputs = dataset_inputs.log_dataset_inputs(client, parent_id, spec, csv_sha256, nodes)
            whole = inputs is not None  # False once any part of the run could not be recorded
            inputs = inputs or {}
            files: list[tuple[Path, str]] = []
            if spec.spec_path is not None:
                files.append((spec.spec_path, "dataset"))
            metrics, series, stage_tags = {}, {}, {}
            for node in nodes:
                child, record, seconds = stage_runs.log_stage(
                    client, store, experiment, parent_id, node, spec, tfx_run, error, Path(tmp),
                    source, inputs)
                tracked.children[node.node_id] = child
                whole &= TAG_TRACKING_ERROR not in record.tags
                if node.node_id == stage_names.TUNER:
                    whole &= tuner_trials.log_tuner(client, experiment, parent_id, child, node,
                                                    tfx_run, source)
                # The parent carries every stage's figures, for comparing pipeline runs.
                metrics.update({k: v for k, v in record.metrics.items() if k != "duration_s"})
                metrics[f"duration_s/{node.node_id}"] = seconds
                series.update(record.series)
                for tag in ("blessed", blessing_verdict.TAG):
                    if tag in record.tags:
                        stage_tags[tag] = record.tags[tag]
            if nodes:
                ended = max(n.execution.last_update_time_since_epoch for n in nodes)
                metrics["duration_s/total"] = max(0, ended - started) / 1000
            if error is not None:
                stage_tags[TAG_ERROR] = error_summary(error)
                path = Path(tmp) / ERROR_FILE
                path.write_text(error_text(error))
                files.append((path, ""))
            log(client, parent_id, metrics=metrics, series=series, tags=stage_tags)
            log_files(client, parent_id, files)
            # A failed or stopped run registers nothing: its model did not finish the pipeline.
            if error is None:
                tracked.model = registration.register(client, parent_id, settings, spec,
                                                      {n.node_id: n for n in nodes})
                _tag_why_not_blessed(client, parent_id, tracked.model,
                                     stage_tags.get(blessing_verdict.TAG))
        except BaseException as e:
            client.set_tag(parent_id, TAG_TRACKING_ERROR, short(f"{type(e).__name__}: {e}"))
            client.set_terminated(parent_id, FAILED if status == FINISHED else status)
            raise
        finally:
            if store is not None:
                del store
        if not whole:  # its stages' runs and the log say what is missing and why
            tracked.status = FAILED
        client.set_terminated(parent_id, tracked.status)
    return tracked
