"""The local Flink session cluster (`make flink`, pipeline/cluster/flink_session.py) for real:
Flink's JobManager and TaskManager JVMs from the installed distribution and Beam's worker pool,
on free ports of 127.0.0.1; a Beam pipeline's SDK worker started by the pool; every process gone
when the block ends, also when it ends by an error. One cluster start (~10-20 s) for all."""
from __future__ import annotations

import os
import time

import pytest

from pipeline.cluster import flink_install, processes
from pipeline.cluster.flink_session import local_flink

pytestmark = pytest.mark.e2e


def _listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port` (read from the kernel's socket
    table: no traffic)."""
    import psutil

    return {c.laddr.ip for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


def _beam_job_through_the_pool(worker_pool: str, out_dir) -> list:
    """A small Beam pipeline whose SDK worker the pool starts (Beam's portable runner with its
    embedded job service: the same Fn API and worker pool a Flink job uses); what the worker
    saw, written by it to out_dir."""
    import json

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(["--runner=PortableRunner", "--job_endpoint=embed",
                               "--environment_type=EXTERNAL",
                               f"--environment_config={worker_pool}",
                               "--pickle_library=cloudpickle"])
    with beam.Pipeline(options=options) as pipeline:
        _ = (pipeline | beam.Create([1, 2, 3])
             | beam.Map(lambda x: json.dumps(
                 [x * 2, os.getpid(), os.environ.get("TF_USE_LEGACY_KERAS"),
                  __import__("components").__file__]))
             | beam.io.WriteToText(str(out_dir / "rows")))
    return [json.loads(line) for path in out_dir.glob("rows*")
            for line in path.read_text().splitlines()]


def test_cluster_starts_serves_and_stops_every_process_even_on_error(tmp_path):
    assert flink_install.missing_flink() is None, "make flink-install (make test runs it)"
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="the block failed"):
        with local_flink(workdir=tmp_path / "flink", slots=2) as cluster:
            pids = cluster.pids()
            overview = cluster.rest("/overview")
            assert overview["taskmanagers"] == 1 and overview["slots-total"] == 2
            assert overview["flink-version"] == flink_install.FLINK_VERSION
            assert cluster.jobs() == []
            assert len(pids) == 3 and all(processes.group_alive(p) for p in pids)
            # Servers bind 127.0.0.1 only: Flink's REST API and the worker pool (Beam's own
            # pool would listen on every interface).
            loopback = {"127.0.0.1", "::ffff:127.0.0.1"}
            for port in (cluster.rest_port, cluster.worker_pool_port):
                assert _listening_addresses(port) and _listening_addresses(port) <= loopback
            # The pool starts SDK workers that run this virtualenv, with the project's code and
            # Keras 2 for tf.Transform and TFMA.
            rows = _beam_job_through_the_pool(cluster.worker_pool, tmp_path)
            assert sorted(r[0] for r in rows) == [2, 4, 6]
            assert all(r[1] != os.getpid() for r in rows)
            assert {r[2] for r in rows} == {"1"}
            assert all(r[3].startswith(str(flink_install.REPO_ROOT)) for r in rows)
            raise RuntimeError("the block failed")
    deadline = time.monotonic() + 5
    while any(processes.group_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pids and not any(processes.group_alive(p) for p in pids)
    assert (tmp_path / "flink" / "logs" / "jobmanager.log").stat().st_size > 0
    assert not (tmp_path / "flink" / "tmp").exists()
