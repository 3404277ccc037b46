"""The up-to-date check: a run whose inputs are byte-identical to the last successful run's
ends in a second, without importing TensorFlow, TFX, Great Expectations or MLflow.

"Inputs" are everything that can change what the pipeline produces: the CSV, the spec, the
schema, the data contract (suite), the code of every stage (all Python under pipeline/ and
components/, and the locked package versions), every setting that shapes the run, and where
MLflow logs. After a successful whole run (not `--until`), local_dag records their fingerprint
with what the run produced in outputs/<dataset>/last_success.json. Anything different goes
through TFX as before; TFX's cache stays the source of truth for which stages re-run.
Such a run is not logged to MLflow: nothing ran, and the recorded run is the one to look at.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

from pipeline.config.dataset_spec import DatasetSpec
from pipeline.config.file_digest import file_sha256
from pipeline.config.secret_urls import mask_url
from pipeline.config.settings import REPO_ROOT, Settings

RECORD_FILE = "last_success.json"
CODE_FOLDERS = ("pipeline", "components")
NOT_STAGE_CODE = ("pipeline", "bench")
LOCK_FILE = REPO_ROOT / "requirements" / "lock.txt"
# Settings that do not change what a run produces: where things are served, and the switches
# of this check itself. `until` runs are never recorded.
_NOT_INPUTS = ("serve_port", "serve_workers", "mlflow_ui_port", "airflow_port", "force", "until",
               "wait")


def code_sha256(root: Path = REPO_ROOT) -> str:
    """One hash over the source of every stage (and of the runners), plus the locked versions.
    The benchmark is no stage's code: editing it does not make a run out of date."""
    digest = hashlib.sha256()
    files = sorted(p for folder in CODE_FOLDERS for p in (root / folder).rglob("*.py")
                   if not p.relative_to(root).parts[:2] == NOT_STAGE_CODE)
    lock = root / "requirements" / "lock.txt"
    for path in files + ([lock] if lock.exists() else []):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def settings_values(settings: Settings) -> dict[str, str]:
    return {f.name: str(getattr(settings, f.name)) for f in dataclasses.fields(Settings)
            if f.name not in _NOT_INPUTS}


def fingerprint(settings: Settings, spec: DatasetSpec) -> dict[str, str]:
    """What the run's result depends on, each part hashed (so a mismatch can say which)."""
    from components.contract.suite_loading import suite_path

    parts = {
        "csv": file_sha256(spec.csv_path),
        "spec": file_sha256(spec.spec_path) if spec.spec_path else "",
        "schema": file_sha256(spec.schema_path),
        "suite": file_sha256(suite_path(spec)),
        "code": code_sha256(),
        "settings": hashlib.sha256(json.dumps(settings_values(settings), sort_keys=True)
                                   .encode()).hexdigest(),
        # Masked: this lands in last_success.json, and a new password is the same store.
        "mlflow_tracking_uri": mask_url(os.environ.get("MLFLOW_TRACKING_URI", "")),
    }
    return parts


@dataclasses.dataclass
class LastRun:
    fingerprint: dict[str, str]
    tfx_run_id: str
    finished: float  # epoch seconds
    mlflow_run_id: str = ""
    model: str = ""  # "<registered name> version <n>"
    champion: bool = False  # that version held the `champion` alias when the run ended
    blessed: bool = False
    pushed_to: str = ""  # serving folder of a pushed model

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.finished))
        model = ""
        if self.model:
            model = f"; model {self.model} ({'champion' if self.champion else 'not champion'})"
        mlflow_run = f", MLflow run {self.mlflow_run_id}" if self.mlflow_run_id else ""
        return f"run {self.tfx_run_id} of {when}{mlflow_run}{model}"


def record_path(settings: Settings) -> Path:
    return settings.output_dir / RECORD_FILE


def record(settings: Settings, run: LastRun) -> Path:
    """Write the record atomically: a concurrent reader sees the old one or the new one."""
    path = record_path(settings)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(run), indent=2, sort_keys=True))
    os.replace(tmp, path)
    return path


def load(settings: Settings) -> LastRun | None:
    try:
        raw = json.loads(record_path(settings).read_text())
        return LastRun(**raw)
    except (OSError, ValueError, TypeError):
        return None


def up_to_date(settings: Settings, spec: DatasetSpec) -> LastRun | None:
    """The last successful run, if this run's inputs are byte-identical to its inputs and what
    it produced is still there; else None."""
    if settings.until or settings.force:
        return None
    last = load(settings)
    if last is None:
        return None
    if not settings.metadata_path.exists():
        return None
    if last.pushed_to and not Path(last.pushed_to).exists():
        return None
    try:
        current = fingerprint(settings, spec)
    except OSError:  # a missing input: the preflight will say which
        return None
    return last if current == last.fingerprint else None
