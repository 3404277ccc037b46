"""The last-success record (pipeline/runners/last_run.py) built from what a run left behind.

Both runners write it after a successful whole run: `make pipeline` (local_dag.py) and the
Airflow DAG's tracking task (single_node.track_run). The record holds the inputs' fingerprint as
the run STARTED (what its stages read, not what the folder holds by the time it ends), the TFX
run id, the MLflow run and the registered model, and where the Pusher put the model: the next
run with byte-identical inputs then says which run and model are current, and skips its stages.
"""
from __future__ import annotations

import time
from pathlib import Path

from pipeline.config.settings import Settings
from pipeline.runners import last_run


def record_success(settings: Settings, inputs: dict[str, str], tracked,
                   tfx_run: str | None = None) -> Path:
    """Write outputs/<dataset>/last_success.json for a run that succeeded.

    inputs: last_run.fingerprint() as the run started. tracked: the pipeline_runs.TrackedRun the
    run was logged as (None if it was not). tfx_run: the run's TFX pipeline run id (an
    orchestrator's run id); None takes the newest run in ML Metadata (LocalDagRunner's)."""
    from pipeline.config.stage_names import PUSHER
    from pipeline.console.summary_figures import pushed_destination
    from pipeline.mlmd import queries

    name = settings.full_pipeline_name
    with queries.open_store_context(settings.metadata_path) as store:
        if tfx_run is None:
            runs = queries.run_ids(store, name)
            tfx_run = runs[-1] if runs else ""
        pusher = next((n for n in queries.run_executions(store, name, tfx_run)
                       if n.node_id == PUSHER), None) if tfx_run else None
        if pusher is None:
            pusher = queries.node_execution(store, name, PUSHER)
    model = tracked.model if tracked else None
    # `model.champion` says whether this run promoted it; a cached re-run of the champion's
    # inputs promotes nothing, so ask the registry where the alias points now.
    if model is None:
        champion = False
    elif tracked.champion_now is not None:  # asked by the process that logged the run
        champion = tracked.champion_now
    else:
        champion = model.champion or _is_champion(settings, model)
    return last_run.record(settings, last_run.LastRun(
        fingerprint=inputs, tfx_run_id=tfx_run, finished=time.time(),
        mlflow_run_id=tracked.run_id if tracked else "",
        model=f"{model.name} version {model.version}" if model else "",
        champion=champion, blessed=bool(model and model.blessed),
        pushed_to=pushed_destination(pusher) if pusher else ""))


def _is_champion(settings: Settings, model) -> bool:
    from pipeline.tracking import mlflow_store, registry

    with mlflow_store.active_store(settings) as client:
        return registry.champion_version(client, model.name) == str(model.version)


def missing_stages(settings: Settings, tfx_run: str) -> list[str]:
    """The pipeline's stages with no finished (run or cached) execution in run `tfx_run`: an
    orchestrated run is whole only when this is empty."""
    from pipeline.config.stage_names import pipeline_stages
    from pipeline.mlmd import queries

    stages = pipeline_stages(settings.tune)
    if not Path(settings.metadata_path).exists():
        return list(stages)
    with queries.open_store_context(settings.metadata_path) as store:
        done = {n.node_id for n in queries.run_executions(store, settings.full_pipeline_name,
                                                          tfx_run)
                if n.state in ("ran", "cached")}
    return [stage for stage in stages if stage not in done]
