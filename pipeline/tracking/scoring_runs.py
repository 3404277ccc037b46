"""MLflow for `make score`: which model is champion, and one MLflow run per scored file.

The champion is resolved from the MLflow registry: the `champion` alias of the dataset's
registered model names a version, whose tag tfx.model_uri is the TFX Model artifact it was
logged from; ML Metadata lineage then gives the statistics of the data it was trained on
(pipeline/mlmd/champion.py). Scoring runs go to an experiment of their own,
`<pipeline>-<dataset>-score`, beside the training runs' `<pipeline>-<dataset>`: each holds the
file, the row count, the model version, the drift figures (drift/<column>), the Evaluator's
metrics when the file had the label, and where the scored CSV went.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from pipeline.config import stage_names
from pipeline.config.dataset_spec import DatasetSpec
from pipeline.config.settings import Settings
from pipeline.console import summary_figures
from pipeline.mlmd import champion as champion_lib
from pipeline.mlmd import queries
from pipeline.tracking import git_source, mlflow_store, registry, run_logging

TAG_KIND = "csv2model.run_kind"
KIND = "scoring"
TAG_MODEL_VERSION = "model.version"
TAG_OUTPUT = "scores.path"


def resolve_champion(settings: Settings) -> champion_lib.Champion:
    """The registry's champion and its training statistics; ChampionNotFound says what to do."""
    name = settings.registered_model_name
    with mlflow_store.active_store(settings) as client:
        version = registry.champion_version(client, name)
        if version is None:
            raise champion_lib.ChampionNotFound(
                f"no champion model to score with: the registered model {name} has no "
                f"`{registry.CHAMPION}` alias in {mlflow_store.display_uri(settings)}; train "
                f"one with `make pipeline DATASET={settings.dataset}` (a blessed model becomes "
                "champion)")
        model_uri = client.get_model_version(name, version).tags.get(registry.TAG_MODEL_URI)
    if not model_uri:
        raise champion_lib.ChampionNotFound(
            f"{name} version {version} (champion) has no {registry.TAG_MODEL_URI} tag: it was "
            "not registered by this pipeline")
    if not Path(settings.metadata_path).exists():
        raise champion_lib.ChampionNotFound(f"no ML Metadata store at {settings.metadata_path}")
    with queries.open_store_context(settings.metadata_path) as store:
        statistics_uri, run = champion_lib.training_statistics(
            store, settings.full_pipeline_name, model_uri, stage_names.STATISTICS_GEN)
        _check_target(store, model_uri, settings, f"{name} version {version}")
    return champion_lib.Champion(name, str(version), model_uri, statistics_uri, run)


def _check_target(store, model_uri: str, settings: Settings, which: str) -> None:
    """ChampionNotFound when the champion predicts another label, task or classes than the
    spec (re-drafted with `init --force`): its scores would answer the old question (the
    tour's case: a species model asked for a binary label scored 3 probabilities, then
    failed)."""
    from components.evaluate import model_target

    wanted = model_target.spec_target(settings.load_spec())
    models = store.get_artifacts_by_uri(model_uri)  # training_statistics found it there
    trained = model_target.trained_target(store, models[0].id) if models else None
    if model_target.mismatch(trained, wanted):
        raise champion_lib.ChampionNotFound(
            f"the champion ({which}) predicts {model_target.describe(trained)}, the spec now "
            f"{model_target.describe(wanted)}: train a model for it with `make pipeline "
            f"DATASET={settings.dataset}` first (a blessed one becomes champion)")


@dataclasses.dataclass
class ScoringRecord:
    """What a scoring run left in ML Metadata, for the summary and for MLflow."""
    rows: int | None = None
    drift: dict | None = None  # DriftGate's report
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)  # the Evaluator's
    stages: dict[str, str] = dataclasses.field(default_factory=dict)  # node id -> state


def read_record(settings: Settings, pipeline_name: str, tfx_run: str | None) -> ScoringRecord:
    record = ScoringRecord()
    if tfx_run is None or not Path(settings.metadata_path).exists():
        return record
    with queries.open_store_context(settings.metadata_path) as store:
        nodes = queries.run_executions(store, pipeline_name, tfx_run)
    for node in nodes:
        record.stages[node.node_id] = node.state
        if node.node_id == stage_names.DRIFT_GATE:
            record.drift = summary_figures.drift_report(node)
        elif node.node_id == stage_names.PREDICTIONS_WRITER and node.state in ("ran", "cached"):
            record.rows = node.output_property("scored", "rows")
        elif node.node_id == stage_names.EVALUATOR and node.state in ("ran", "cached"):
            record.metrics = summary_figures.overall_metrics(node.output_uri("evaluation"))
    return record


def log_scoring_run(settings: Settings, spec: DatasetSpec, champion: champion_lib.Champion,
                    pipeline_name: str, tfx_run: str | None, output: Path | None,
                    record: ScoringRecord, started_ms: int,
                    error: BaseException | None = None) -> str:
    """One MLflow run for the scored file; returns its id."""
    location = mlflow_store.artifact_root(settings) if mlflow_store.uses_local_store(settings) \
        else None
    with mlflow_store.active_store(settings) as client:
        experiment = mlflow_store.experiment_id(client, settings, location,
                                                name=pipeline_name)
        tags = {TAG_KIND: KIND, run_logging.TAG_PIPELINE: pipeline_name,
                run_logging.TAG_PIPELINE_RUN: tfx_run or "none", "dataset": spec.name,
                "dataset.csv": str(spec.csv_path), TAG_MODEL_VERSION: champion.version,
                **git_source.source_tags()}
        if output is not None:
            tags[TAG_OUTPUT] = str(output)
        if error is not None:
            tags[run_logging.TAG_ERROR] = run_logging.short(run_logging.error_summary(error))
        run = client.create_run(experiment, start_time=started_ms, tags=tags,
                                run_name=f"score {spec.csv_path.name} {tfx_run or ''}".strip())
        run_id = run.info.run_id
        params = {"csv": str(spec.csv_path), "model.name": champion.name,
                  "model.version": champion.version, "model.tfx_uri": champion.model_uri,
                  "model.training_run": champion.training_run,
                  "output": str(output) if output else ""}
        metrics = summary_figures.drift_metrics(record.drift)
        if record.rows is not None:
            metrics["rows"] = float(record.rows)
        if record.drift and record.drift.get("rows") is not None:
            metrics.setdefault("rows", float(record.drift["rows"]))
        metrics.update({f"eval/{k}": v for k, v in record.metrics.items()})
        metrics["duration_s"] = max(0, int(time.time() * 1000) - started_ms) / 1000
        status = "FINISHED" if error is None else \
            "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
        try:
            run_logging.log(client, run_id, params=params, metrics=metrics)
            if record.drift is not None:
                report = Path(settings.log_path).parent / f"drift-{run_id}.json"
                report.parent.mkdir(parents=True, exist_ok=True)
                report.write_text(json.dumps(record.drift, indent=2))
                run_logging.log_files(client, run_id, [(report, "")])
                report.unlink()
        except Exception as failure:  # the run ends FAILED saying why, not RUNNING for good
            run_logging.recording_failed(client, run_id, "the scoring run's figures", failure)
            client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id, status)
    return run_id
