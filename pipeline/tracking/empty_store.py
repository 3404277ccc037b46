"""A new local MLflow store starts as a copy of an empty one made once per MLflow version.

MLflow makes a SQLite store by running its ~60 schema migrations (alembic), 1.8 s on a quiet
machine and 2 s of CPU inside a run; every first run of a dataset, every `--output-root` and
every test's temp folder paid it. The migrations' result does not depend on where the store
lives, so the first store made by this checkout's MLflow version is kept under .cache/mlflow/
and later ones are copies (0.04 s). MLflow still checks the copy's schema revision when it opens
it, as it does any store's. Only the default experiment's artifact folder depends on the place:
it is set to the new store's own artifact folder (MLflow would have put the store's first
creator's ./mlruns there).
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from pipeline.config.settings import REPO_ROOT

CACHE_DIR = REPO_ROOT / ".cache" / "mlflow"


def template_path() -> Path:
    from importlib.metadata import version

    return CACHE_DIR / f"empty-store-mlflow-{version('mlflow')}.db"


def seed(db_path: Path, artifact_root: str) -> None:
    """Put a copy of the empty store at db_path when nothing is there yet (a store that exists
    is left alone). Whatever goes wrong, MLflow makes the store itself, as before."""
    if db_path.exists():
        return
    try:
        template = template_path()
        if not template.exists():
            _make_template(template)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        fd, copy = tempfile.mkstemp(dir=db_path.parent, prefix=".mlflow-", suffix=".db")
        os.close(fd)
        try:
            shutil.copyfile(template, copy)
            with contextlib.closing(sqlite3.connect(copy)) as db, db:
                db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                           (f"{artifact_root}/0",))
            with contextlib.suppress(FileExistsError):  # another process made it meanwhile
                os.link(copy, db_path)
        finally:
            os.unlink(copy)
    except Exception:  # noqa: BLE001 - only a shortcut
        logging.getLogger(__name__).warning("no copy of the empty MLflow store at %s", db_path,
                                            exc_info=True)


def _make_template(template: Path) -> None:
    """An empty store made by MLflow itself, moved into place whole (a concurrent maker's
    copy is as good as ours)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    template.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=template.parent) as scratch:
        db = Path(scratch) / "mlflow.db"
        store = SqlAlchemyStore(f"sqlite:///{db}", Path(scratch, "artifacts").as_uri())
        store.engine.dispose()
        os.replace(db, template)
