"""A Flink run is refused before TFX starts (exit 2, one line, nothing written) when its input
is bad, or when Beam's job server, the cluster or the worker pool is missing: the order is the
input first, then the cluster. Through the real CLI, no JVM started: under a second for the bad
CSV; the others pass the suite's check first (it imports Great Expectations), 5-12 s each, so
they are e2e."""
from __future__ import annotations

import shutil
import socket
import subprocess

import pytest
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions

from conftest import DATA, pipeline_command
from pipeline.config.settings import Settings, from_args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp_path, csv, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        pipeline_command("run", "--dataset", "penguins", "--csv", str(csv), "--output-root",
                         str(tmp_path / "out"), "--beam-runner", "flink", "--beam-master",
                         f"127.0.0.1:{_free_port()}", *extra),
        capture_output=True, text=True, timeout=300)


@pytest.fixture
def good_csv(tmp_path):
    return shutil.copy(DATA / "penguins" / "data.csv", tmp_path / "penguins.csv")


def test_a_refused_csv_stops_a_flink_run_first_with_nothing_written(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("species,island\nAdelie,Torgersen\n")  # the spec's other columns missing
    result = _run(tmp_path, csv)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and "bad.csv" in result.stderr
    assert "job server" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.e2e  # the real CLI through the suite's check (Great Expectations): ~5-12 s
def test_without_beams_job_server_a_flink_run_is_refused_naming_it(tmp_path, good_csv):
    result = _run(tmp_path, good_csv, "--flink-job-server-jar", str(tmp_path / "none.jar"))
    assert result.returncode == 2, result.stderr
    assert "Flink job server is not installed" in result.stderr
    assert "none.jar" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.e2e  # the real CLI through the suite's check (Great Expectations): ~5-12 s
def test_without_a_cluster_or_worker_pool_a_flink_run_is_refused(tmp_path, good_csv):
    jar = tmp_path / "job-server.jar"
    jar.write_bytes(b"")  # present: the next checks are the cluster's
    result = _run(tmp_path, good_csv, "--flink-job-server-jar", str(jar))
    assert result.returncode == 2, result.stderr
    assert "no Flink cluster answers at http://127.0.0.1:" in result.stderr
    assert "make flink" in result.stderr
    assert not (tmp_path / "out").exists()


def test_flink_on_this_machine_uses_the_worker_pool_and_the_installed_jar():
    local = from_args(["--beam-runner", "flink", "--beam-master", "127.0.0.1:8081"])
    assert local.beam_runner == "FlinkRunner"
    assert local.resolved_beam_environment() == "external"
    parsed = PipelineOptions(local.beam_pipeline_args()).get_all_options()
    assert parsed["environment_type"] == "EXTERNAL"
    assert parsed["environment_config"] == "127.0.0.1:50000"
    assert parsed["flink_job_server_jar"] == str(Settings().flink_job_server_jar)
    assert parsed["flink_version"] == "1.18"
    # A master elsewhere keeps the image (Docker workers), unless told otherwise.
    remote = local.replace(beam_master="flink-jobmanager:8081")
    assert PipelineOptions(remote.beam_pipeline_args()).view_as(
        PortableOptions).environment_type == "DOCKER"
    assert remote.replace(beam_environment="external").resolved_beam_environment() == "external"
    for spelling in ("flink", "Flink", "FlinkRunner", "flinkrunner"):
        assert from_args(["--beam-runner", spelling]).beam_runner == "FlinkRunner"
    with pytest.raises(SystemExit):
        from_args(["--beam-runner", "storm"])


def test_workers_from_the_worker_pool_get_no_tfx_package_but_docker_workers_an_image(
        tmp_path, monkeypatch):
    """The pool's workers run this virtualenv: TFX must not build and stage a package of itself
    before each Beam stage (~2 s and ~50 MB of /tmp each), as on the DirectRunner."""
    import tempfile

    from tfx.components.statistics_gen.executor import Executor
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor

    from pipeline.runners.beam_packaging import no_tfx_package_for_local_workers

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    local = Settings(output_root=tmp_path, beam_runner="FlinkRunner",
                     beam_master="127.0.0.1:8081")

    def packed(settings: Settings) -> list[str]:
        context = BaseBeamExecutor.Context(beam_pipeline_args=settings.beam_pipeline_args(),
                                           tmp_dir=str(tmp_path), unique_id="1")
        with no_tfx_package_for_local_workers(settings):
            args = Executor(context)._beam_pipeline_args  # noqa: SLF001
        return [a for a in args if a.startswith("--extra_package")]

    assert packed(local) == [] and list(tmp_path.iterdir()) == []
    # Told to use Docker on the same master: the image, not a package, as for any cluster.
    assert packed(local.replace(beam_environment="docker")) == []
    # A worker pool anywhere: its workers start without Beam's boot step, which is what would
    # install staged packages, so a package would be built for nothing.
    remote_pool = local.replace(beam_master="flink-jobmanager:8081", beam_environment="external")
    assert packed(remote_pool) == []
    # (Outside the switch TFX packs itself: tests/runners/test_beam_runners.py.)
