"""Beam runner argument sets, tested by construction: the pipeline is built (and compiled) with
each runner's arguments and Beam parses them into the options each runner reads. Nothing runs on
a cluster."""
from __future__ import annotations

import os

import pytest
from apache_beam.options.pipeline_options import (
    DirectOptions,
    FlinkRunnerOptions,
    GoogleCloudOptions,
    PipelineOptions,
    PortableOptions,
    SetupOptions,
    SparkRunnerOptions,
    StandardOptions,
    WorkerOptions,
)

from pipeline.config.settings import BEAM_RUNNERS, Settings, from_args
from pipeline.definition import builder
from pipeline.runners import single_node

IMAGE = "registry.example/csv2model:1.0"
CLUSTERS = {
    "FlinkRunner": dict(beam_master="flink-jobmanager:8081"),
    "SparkRunner": dict(beam_master="spark://spark-master:7077"),
    "DataflowRunner": dict(gcp_project="my-project", gcp_region="europe-west1",
                           gcs_temp="gs://my-bucket/tmp"),
}


def cluster_settings(runner: str, tmp_path) -> Settings:
    return Settings(dataset="penguins", output_root=tmp_path, beam_runner=runner,
                    cluster_image=IMAGE, **CLUSTERS.get(runner, {}))


def options(args: list[str]) -> PipelineOptions:
    return PipelineOptions(args)


def test_every_runner_has_an_argument_set():
    assert set(BEAM_RUNNERS) == {"DirectRunner"} | set(CLUSTERS)


@pytest.mark.parametrize("runner", BEAM_RUNNERS)
def test_runner_args_reach_the_pipeline_and_beam_knows_each_one(runner, tmp_path):
    settings = cluster_settings(runner, tmp_path)
    pipeline = builder.create_pipeline(settings, settings.load_spec())
    assert pipeline.beam_pipeline_args == settings.beam_pipeline_args()
    known = PipelineOptions([]).get_all_options()
    for arg in pipeline.beam_pipeline_args:
        assert arg.startswith("--") and arg[2:].split("=")[0] in known, arg
    parsed = options(pipeline.beam_pipeline_args)
    if runner != "DirectRunner":
        assert parsed.view_as(StandardOptions).runner == runner
        assert not any(a.startswith("--direct_") for a in pipeline.beam_pipeline_args)


def test_direct_runner_is_the_default(tmp_path):
    # The shipped taxi CSV is 2 MB: `auto` runs Beam in this process.
    parsed = options(Settings().beam_pipeline_args())
    assert parsed.view_as(StandardOptions).runner is None  # Beam's default: DirectRunner
    assert parsed.view_as(DirectOptions).direct_running_mode == "in_memory"
    assert parsed.view_as(DirectOptions).direct_num_workers == 1
    multi = options(Settings(beam_mode="multi_processing").beam_pipeline_args())
    assert multi.view_as(DirectOptions).direct_running_mode == "multi_processing"
    assert multi.view_as(DirectOptions).direct_num_workers == (os.cpu_count() or 1)
    assert parsed.view_as(SetupOptions).pickle_library == "cloudpickle"
    in_memory = options(Settings(beam_mode="in_memory").beam_pipeline_args())
    assert in_memory.view_as(DirectOptions).direct_num_workers == 1


def test_flink_and_spark_run_the_project_image_as_the_beam_worker(tmp_path):
    flink = options(cluster_settings("FlinkRunner", tmp_path).beam_pipeline_args())
    assert flink.view_as(FlinkRunnerOptions).flink_master == "flink-jobmanager:8081"
    spark = options(cluster_settings("SparkRunner", tmp_path).beam_pipeline_args())
    assert spark.view_as(SparkRunnerOptions).spark_master_url == "spark://spark-master:7077"
    for parsed in (flink, spark):
        assert parsed.view_as(PortableOptions).environment_type == "DOCKER"
        assert parsed.view_as(PortableOptions).environment_config == IMAGE
        assert parsed.view_as(WorkerOptions).sdk_container_image == IMAGE


@pytest.mark.parametrize("runner", CLUSTERS)
def test_cluster_workers_get_the_image_not_a_tfx_package_to_install(runner, tmp_path):
    from tfx.utils import dependency_utils

    args = cluster_settings(runner, tmp_path).beam_pipeline_args()
    assert dependency_utils.make_beam_dependency_flags(args) == args


def test_dataflow_gets_project_region_temp_and_image(tmp_path):
    parsed = options(cluster_settings("DataflowRunner", tmp_path).beam_pipeline_args())
    cloud = parsed.view_as(GoogleCloudOptions)
    assert (cloud.project, cloud.region, cloud.temp_location) == (
        "my-project", "europe-west1", "gs://my-bucket/tmp")
    assert parsed.view_as(WorkerOptions).sdk_container_image == IMAGE


def test_extra_beam_args_come_last_so_they_win(tmp_path):
    settings = cluster_settings("FlinkRunner", tmp_path).replace(
        beam_args=("--parallelism=8", "--environment_type=LOOPBACK"))
    args = settings.beam_pipeline_args()
    assert args[-2:] == ["--parallelism=8", "--environment_type=LOOPBACK"]
    assert options(args).view_as(PortableOptions).environment_type == "LOOPBACK"


@pytest.mark.parametrize("runner, missing", [
    ("FlinkRunner", "--beam-master"), ("SparkRunner", "--beam-master"),
    ("DataflowRunner", "--gcp-project"),
])
def test_a_cluster_runner_without_its_address_is_refused(runner, missing):
    with pytest.raises(ValueError) as error:
        Settings(beam_runner=runner).beam_pipeline_args()
    assert runner in str(error.value) and missing in str(error.value)


def test_dataflow_temp_location_must_be_on_gcs():
    settings = Settings(beam_runner="DataflowRunner", gcp_project="p", gcs_temp="/tmp/x")
    with pytest.raises(ValueError, match="gs://"):
        settings.beam_pipeline_args()


def test_runner_is_a_cli_setting_with_allowed_values(capsys):
    settings = from_args(["--beam-runner", "SparkRunner", "--beam-master", "spark://m:7077"])
    assert settings.beam_runner == "SparkRunner"
    with pytest.raises(SystemExit) as exit_:
        from_args(["--beam-runner", "WarpRunner"])
    assert exit_.value.code == 2
    assert "argument --beam-runner: invalid choice: 'WarpRunner'" in capsys.readouterr().err


def test_compiled_beam_stages_carry_the_runner_args(tmp_path):
    """What the orchestrators execute is the compiled IR: its Beam executors get the args."""
    from tfx.orchestration.local import runner_utils

    settings = cluster_settings("FlinkRunner", tmp_path)
    ir = single_node.compile_ir(settings, settings.load_spec())
    deployment = runner_utils.extract_local_deployment_config(ir)
    for node in (builder.EXAMPLE_GEN, builder.STATISTICS_GEN, builder.TRANSFORM,
                 builder.EVALUATOR):
        spec = runner_utils.extract_executor_spec(deployment, node)
        assert list(spec.beam_pipeline_args) == settings.beam_pipeline_args(), node


def test_direct_runner_stages_do_not_pack_tfx_for_their_workers(tmp_path, monkeypatch):
    """TFX would copy itself into a new temp folder and build an sdist before each Beam stage."""
    import tempfile

    from tfx.components.statistics_gen.executor import Executor
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor

    from pipeline.runners.beam_packaging import no_tfx_package_for_local_workers

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    settings = Settings(output_root=tmp_path)

    def executor_args() -> list[str]:
        context = BaseBeamExecutor.Context(beam_pipeline_args=settings.beam_pipeline_args(),
                                           tmp_dir=str(tmp_path), unique_id="1")
        return Executor(context)._beam_pipeline_args  # noqa: SLF001

    with no_tfx_package_for_local_workers(settings):
        packed = [a for a in executor_args() if a.startswith("--extra_package")]
    assert packed == [] and list(tmp_path.iterdir()) == []
    # Outside the block TFX packs itself, as it does for a cluster without an image.
    assert any(a.startswith("--extra_package") for a in executor_args())
    assert list(tmp_path.iterdir())
