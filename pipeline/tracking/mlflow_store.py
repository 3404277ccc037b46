"""Where MLflow records go: the store's URI and the pipeline's experiment.

The store is a SQLite database and an artifact folder under the dataset's output folder, unless
the standard MLFLOW_TRACKING_URI variable points elsewhere (a tracking server works unchanged).
Nothing here touches MLflow at import time.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from pipeline.config.secret_urls import mask_url
from pipeline.config.settings import Settings

if TYPE_CHECKING:
    import mlflow

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
# An experiment's kind decides where the MLflow 3 UI opens it: with this value on the runs table
# (the "Model training" view), without the tag on the GenAI overview of traces.
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def tracking_uri(settings: Settings) -> str:
    """MLFLOW_TRACKING_URI when set, else the dataset's own SQLite store."""
    return os.environ.get(TRACKING_URI_ENV) or f"sqlite:///{local_db(settings).resolve()}"


def local_db(settings: Settings) -> Path:
    """The dataset's own store (a SQLite file in its output folder)."""
    return Path(settings.mlflow_dir) / "mlflow.db"


def display_uri(settings: Settings) -> str:
    """tracking_uri for people (summaries, messages): a password in it masked."""
    return mask_url(tracking_uri(settings))


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
        from pipeline.tracking import empty_store

        Path(settings.mlflow_dir).mkdir(parents=True, exist_ok=True)
        empty_store.seed(local_db(settings), artifact_root(settings))
    if mask_url(uri) != uri:
        # MLflow prints "View run <name> at: <tracking URI>/#/..." as each run ends: with the
        # URI's password in it, into every log. The run summary names the run, masked.
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    # Read before set_tracking_uri writes the variable: from here on it is always set.
    saved_env = os.environ.get(TRACKING_URI_ENV)
    mlflow.set_tracking_uri(uri)
    try:
        yield mlflow.MlflowClient(uri)
    finally:
        mlflow.set_tracking_uri(None)
        if saved_env is not None:
            os.environ[TRACKING_URI_ENV] = saved_env


def experiment_id(client, settings: Settings, artifact_location: str | None,
                  name: str | None = None) -> str:
    """The pipeline's experiment (one per pipeline and dataset), created on first use.

    artifact_location: where a new experiment keeps artifacts; None lets the store decide (a
    tracking server has its own), the local store needs one or MLflow picks ./mlruns.
    name: another experiment than the pipeline's (`make score` logs to <pipeline>-score)."""
    from mlflow.exceptions import MlflowException

    name = name or settings.full_pipeline_name
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
