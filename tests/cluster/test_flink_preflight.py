"""A Flink run is refused before TFX starts (exit 2, one line, nothing written) when its input
is bad, or when Beam's job server, the cluster or the worker pool is missing: the order is the
input first, then the cluster. In-process, no JVM started: a fraction of a second each."""
from __future__ import annotations

import shutil
import socket

import pytest
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions

from conftest import DATA
from pipeline.cli import main
from pipeline.config.settings import Settings, from_args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp_path, csv, *extra: str) -> int:
    return main.main(["run", "--dataset", "penguins", "--csv", str(csv),
                      "--output-root", str(tmp_path / "out"), "--beam-runner", "flink",
                      "--beam-master", f"127.0.0.1:{_free_port()}", *extra])


@pytest.fixture
def good_csv(tmp_path):
    return shutil.copy(DATA / "penguins" / "data.csv", tmp_path / "penguins.csv")


def test_a_refused_csv_stops_a_flink_run_first_with_nothing_written(tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    csv.write_text("species,island\nAdelie,Torgersen\n")  # the spec's other columns missing
    assert _run(tmp_path, csv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.csv" in err and "job server" not in err
    assert not (tmp_path / "out").exists()


def test_without_beams_job_server_a_flink_run_is_refused_naming_it(tmp_path, good_csv,
                                                                     capsys):
    assert _run(tmp_path, good_csv, "--flink-job-server-jar", str(tmp_path / "none.jar")) == 2
    err = capsys.readouterr().err
    assert "Flink job server is not installed" in err and "none.jar" in err
    assert not (tmp_path / "out").exists()


def test_without_a_cluster_or_worker_pool_a_flink_run_is_refused(tmp_path, good_csv, capsys):
    jar = tmp_path / "job-server.jar"
    jar.write_bytes(b"")  # present: the next checks are the cluster's
    assert _run(tmp_path, good_csv, "--flink-job-server-jar", str(jar)) == 2
    err = capsys.readouterr().err
    assert "no Flink cluster answers at http://127.0.0.1:" in err and "make flink" in err
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
