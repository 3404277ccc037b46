"""Model registry: the trained SavedModel as an MLflow pyfunc, registered, `champion` when blessed.

Every evaluated model is logged and registered, so the registry keeps the rejected ones too (tag
blessed=false) for comparison; only a blessed model gets the `champion` alias that
`make serve` serves. The pyfunc is serving_pyfunc.py around the serving_raw signature: probabilities and class out,
or `prediction` for a regression model.
"""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
import types
from pathlib import Path

import pandas as pd

from components.ingest import csv_format
from pipeline.config.dataset_spec import DatasetSpec
from pipeline.tracking import model_signature, serving_pyfunc

CHAMPION = "champion"
MODEL_NAME = "model"  # the logged model's name inside the pipeline's MLflow run
TAG_MODEL_URI = "tfx.model_uri"  # the Trainer's Model artifact, to register a model only once
TAG_BLESSED = "blessed"
# MlflowException.error_code of a missing registered model, experiment or run.
DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
INPUT_EXAMPLE_ROWS = 3
# Rows read to find complete ones for the input example: a large CSV is not read whole for three.
EXAMPLE_SCAN_ROWS = 1000


@dataclasses.dataclass
class RegisteredVersion:
    name: str
    version: str
    blessed: bool
    created: bool  # False: this TFX model was registered by an earlier pipeline run
    champion: bool  # the alias points at this version now
    # An Evaluator blessed this model, in this run or an earlier one: its version's `blessed`
    # tag. A later run that re-evaluates it against another baseline and does not bless it
    # (its Trainer cached, the gates changed) leaves that tag, its champion alias and its
    # reasons alone; its own verdict goes on its own run.
    version_blessed: bool = False


def model_uri(name: str) -> str:
    """What `mlflow models serve` and `mlflow.pyfunc.load_model` take for the current champion."""
    return f"models:/{name}@{CHAMPION}"


def feature_rows(csv_path: Path, names: list[str], numeric: set[str],
                 rows: int | None = None, missing_values: tuple[str, ...] = ()) -> pd.DataFrame:
    """Raw feature columns from a CSV, typed as the pyfunc's signature says: numbers as float64
    (NaN when missing: empty, or one of the spec's missing_values), the rest as strings (None
    when missing). Column types come from the model, not from pandas' guess: a categorical
    column of digits is still a string column."""
    frame = csv_format.read_frame(csv_path, missing_values, usecols=names, nrows=rows,
                        dtype={n: "float64" if n in numeric else "string" for n in names})
    frame = frame[names]
    for name in names:
        if name not in numeric:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def _save_pyfunc(*, validate_serving_input: bool = True, **kwargs):
    """mlflow.pyfunc.save_model, taking the flag Model.log passes on to its flavor."""
    import mlflow.pyfunc

    return mlflow.pyfunc.save_model(**kwargs)


# mlflow.pyfunc as Model.log's flavor (same flavor name), logged with validate_serving_input=
# False: that check loads the SavedModel once more to predict the three example rows (~2.5 s of
# the logging after the Pusher, profiled on taxi) and only warns in the log if it fails. The
# pyfunc is exercised where it is served (tests/tracking: make serve, pyfunc predictions).
_PYFUNC_UNCHECKED = types.SimpleNamespace(__name__="mlflow.pyfunc", save_model=_save_pyfunc)


def _pip_requirements() -> list[str]:
    # Pinned to what logged the model; listing them skips MLflow's slow requirement inference
    # (it loads the model in a subprocess). `mlflow models serve --env-manager local` does not
    # install them; they document what the model needs elsewhere.
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "tensorflow", "pandas", "numpy")]


def find_version(client, name: str, tfx_model_uri: str):
    """The registered version of this TFX model, if an earlier run registered it."""
    versions = client.search_model_versions(f"name = '{name}'")  # [] before the first one
    matches = [v for v in versions if v.tags.get(TAG_MODEL_URI) == tfx_model_uri]
    return max(matches, key=lambda v: int(v.version)) if matches else None


def log_and_register(client, run_id: str, name: str, saved_model_dir: str, spec: DatasetSpec, *,
                     tfx_model_uri: str, blessed: bool, evaluated_now: bool,
                     description: str = "") -> RegisteredVersion:
    """Log the model in `run_id`, register it under `name`, and move `champion` to it when
    blessed. A model an earlier run registered is not logged again; it becomes champion only if
    it was evaluated in this run (a cached blessing was acted on when it was made)."""
    import mlflow
    from mlflow.models import Model

    existing = find_version(client, name, tfx_model_uri)
    created = existing is None
    if created:
        # An active run, not just run_id: MLflow files the logged model under the active run's
        # experiment, and otherwise under the Default experiment with a cwd-relative artifact path.
        # Ending it marks the run FINISHED; the caller sets the pipeline's status afterwards.
        with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_id=run_id):
            data = Path(tmp) / "data"
            shutil.copytree(saved_model_dir, data / serving_pyfunc.SAVED_MODEL_DIR)
            # The column types from the signature's definition: the model is not loaded here.
            features = model_signature.raw_features(saved_model_dir)
            rows = feature_rows(spec.csv_path, [f.name for f in spec.model_features],
                                set(features.numeric_features), rows=EXAMPLE_SCAN_ROWS,
                                missing_values=spec.missing_values)
            # Complete rows: JSON has no NaN, and the example is what the UI shows callers.
            example = (rows.dropna() if rows.notna().all(axis=1).any() else rows)
            example = example.head(INPUT_EXAMPLE_ROWS).reset_index(drop=True)
            info = Model.log(
                artifact_path=None,  # deprecated in favour of name, but still positional
                name=MODEL_NAME,
                flavor=_PYFUNC_UNCHECKED,
                validate_serving_input=False,
                run_id=run_id,
                loader_module=serving_pyfunc.__name__.rsplit(".", 1)[-1],
                data_path=str(data),
                code_paths=[serving_pyfunc.__file__],
                model_config={serving_pyfunc.CLASSES_KEY: list(spec.classes)},
                signature=model_signature.signature(features, list(spec.classes), example),
                input_example=example,
                pip_requirements=_pip_requirements(),
                registered_model_name=name,
                tags={TAG_MODEL_URI: tfx_model_uri, TAG_BLESSED: str(blessed).lower()},
            )
        version = str(info.registered_model_version)
        client.set_model_version_tag(name, version, TAG_MODEL_URI, tfx_model_uri)
        if description:
            client.update_model_version(name, version, description=description)
    else:
        version = str(existing.version)  # an int in MLflow 3
    version_blessed = blessed or (
        not created and existing.tags.get(TAG_BLESSED) == "true")
    client.set_model_version_tag(name, version, TAG_BLESSED, str(version_blessed).lower())
    promote = blessed and (created or evaluated_now)
    if promote:
        client.set_registered_model_alias(name, CHAMPION, version)
    return RegisteredVersion(name, version, blessed, created, promote, version_blessed)


def champion_version(client, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException as e:
        if e.error_code != DOES_NOT_EXIST:  # an unreachable or broken store is not "no champion"
            raise
        return None
    version = model.aliases.get(CHAMPION)
    return str(version) if version is not None else None

