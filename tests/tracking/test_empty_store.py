"""A new local MLflow store is a copy of an empty one made once (pipeline/tracking/empty_store.py):
MLflow opens the copy as its own, its default experiment keeps artifacts beside it, a store that
exists is never replaced, and a template that is not a store is not copied. ~3 s (one store is
made by MLflow)."""
from __future__ import annotations

import pytest

from pipeline.tracking import empty_store


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(empty_store, "CACHE_DIR", tmp_path / "cache")
    return tmp_path / "cache"


def test_a_new_store_is_a_copy_mlflow_opens_with_artifacts_beside_it(cache, tmp_path):
    from mlflow import MlflowClient

    first, second = tmp_path / "a" / "mlflow.db", tmp_path / "b" / "mlflow.db"
    empty_store.seed(first, (tmp_path / "a" / "artifacts").as_uri())
    assert empty_store.template_path().exists() and first.exists()
    made_at = empty_store.template_path().stat().st_mtime_ns
    empty_store.seed(second, (tmp_path / "b" / "artifacts").as_uri())
    assert empty_store.template_path().stat().st_mtime_ns == made_at  # copied, not made again

    client = MlflowClient(f"sqlite:///{second}")
    [default] = client.search_experiments()
    assert default.name == "Default"
    assert default.artifact_location == f"{(tmp_path / 'b' / 'artifacts').as_uri()}/0"
    experiment = client.create_experiment("x")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "m", 1.0)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}
    assert [e.name for e in MlflowClient(f"sqlite:///{first}").search_experiments()] == \
        ["Default"]  # the copies are separate stores
    assert list((tmp_path / "b").iterdir()) == [second]  # no scratch copy left behind


def test_a_store_that_exists_is_left_alone(cache, tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"somebody's store")
    empty_store.seed(db, tmp_path.as_uri())
    assert db.read_bytes() == b"somebody's store"


def test_a_template_that_is_not_a_store_is_not_copied(cache, tmp_path):
    empty_store.template_path().parent.mkdir(parents=True)
    empty_store.template_path().write_bytes(b"not a database" * 100)
    db = tmp_path / "store" / "mlflow.db"
    empty_store.seed(db, tmp_path.as_uri())
    assert not db.exists()  # MLflow makes the store itself, as without a template
    assert list(db.parent.iterdir()) == []
