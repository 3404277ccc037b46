"""A dataset folder's schema, refused in one line when it is missing: every command that builds
the pipeline reads it, and without this check each said `[Errno 2] No such file or directory:
.../schema.pbtxt` in its own way (or, for the Airflow DAG's check-inputs, went on to fail at the
first stage)."""
from __future__ import annotations

from pathlib import Path

from pipeline.config import settings as settings_lib
from pipeline.config.dataset_spec import DatasetSpec, SpecError


def check_schema(settings: settings_lib.Settings, spec: DatasetSpec) -> None:
    """Refuse (SpecError) a dataset folder without its schema, saying what drafts one."""
    if spec.schema_path.is_file():
        return
    args = ""
    if Path(settings.data_root).resolve() != Path(settings_lib.Settings().data_root).resolve():
        args = f" ARGS='--data-root {settings.data_root}'"  # make's default would look elsewhere
    raise SpecError(f"schema {spec.schema_path}: file not found; draft one with `make schema "
                    f"DATASET={spec.name}{args}`, review it and copy it there (or draft the "
                    "whole dataset with `make init`)")
