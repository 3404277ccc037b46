"""pipeline/mlmd/lock_retry.py: a call ML Metadata's SQLite store refused as locked (Aborted) is
tried again after milliseconds, not ML Metadata's seconds. A real store in a temp folder; the
refusals are injected into its _call_method, the method the client's retry loop calls."""
from __future__ import annotations

import time

import pytest
from ml_metadata import errors
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.mlmd import lock_retry


@pytest.fixture()
def store(tmp_path, monkeypatch):
    # install() replaces the class's method: put the original back after the test.
    monkeypatch.setattr(metadata_store.MetadataStore, "_call",
                        metadata_store.MetadataStore.__dict__["_call"])
    lock_retry.install()
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(tmp_path / "metadata.sqlite")
    config.sqlite.connection_mode = \
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(config)


def _refusing(store, times: int) -> list[int]:
    """Make the store's next `times` calls fail as a locked SQLite database does."""
    calls = []
    real = store._call_method

    def call_method(method_name, request, response):
        calls.append(1)
        if len(calls) <= times:
            raise errors.AbortedError("database is locked")
        return real(method_name, request, response)

    store._call_method = call_method
    return calls


def test_a_refused_call_is_tried_again_after_milliseconds(store):
    calls = _refusing(store, 3)
    started = time.perf_counter()
    type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="Examples"))
    elapsed = time.perf_counter() - started
    assert len(calls) == 4
    assert store.get_artifact_type("Examples").id == type_id
    # 10, 20 and 40 ms, each at most 1.5 times that; ML Metadata's three waits of
    # expovariate(1 / 2) s stay under 0.5 s about once in 500.
    assert elapsed < 0.5


def test_it_gives_up_after_its_tries_with_the_stores_error(store, monkeypatch):
    monkeypatch.setattr(lock_retry, "FIRST_WAIT_S", 0.0001)
    monkeypatch.setattr(lock_retry, "LONGEST_WAIT_S", 0.001)
    calls = _refusing(store, 1000)
    with pytest.raises(errors.AbortedError, match="locked"):
        store.put_artifact_type(metadata_store_pb2.ArtifactType(name="Examples"))
    assert len(calls) == lock_retry.TRIES


def test_the_waits_double_from_10_ms_to_at_most_a_second_drawn_around_that():
    firsts = [lock_retry.wait_s(0) for _ in range(200)]
    assert 0.005 <= min(firsts) and max(firsts) <= 0.015 and len(set(firsts)) > 100
    assert all(0.5 <= lock_retry.wait_s(30) <= 1.5 for _ in range(200))
    # About nine seconds of waiting in all before the error, as the client's five tries.
    mean_total = sum(min(lock_retry.FIRST_WAIT_S * 2 ** i, lock_retry.LONGEST_WAIT_S)
                     for i in range(lock_retry.TRIES - 1))
    assert 7 < mean_total < 10
