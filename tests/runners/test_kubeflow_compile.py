"""The same pipeline compiled for Kubeflow Pipelines v2 / Vertex AI: every stage is in the JSON
with its dependencies, runs in the project image, and gets the Beam runner's arguments."""
import json

import pytest
from tfx import types
from tfx import v1 as tfx
from tfx.v1.dsl.components import OutputArtifact, component

from pipeline.config.settings import Settings
from pipeline.definition import builder
from pipeline.runners import kubeflow_spec

IMAGE = "registry.example/csv2model:1.0"
RESOLVERS = (builder.BASELINE_RESOLVER, builder.PREVIOUS_STATISTICS_RESOLVER)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    root = tmp_path_factory.mktemp("kfp")
    settings = Settings(dataset="penguins", output_root=root, cluster_image=IMAGE,
                        beam_runner="DataflowRunner", gcp_project="my-project",
                        gcs_temp="gs://my-bucket/tmp")
    path = kubeflow_spec.compile_pipeline(settings, root / "kfp" / "pipeline.json")
    # Compiling writes the JSON and nothing else (no pipeline root, no schema copy).
    assert [p.relative_to(root) for p in root.rglob("*") if p.is_file()] == [
        path.relative_to(root)]
    # What compile_pipeline builds: Kubeflow runs TFX's own resolver strategies only.
    pipeline = builder.create_pipeline(settings.replace(baseline_strategy="latest_blessed"),
                                       settings.load_spec(), write_files=False)
    assert not any(p.is_file() for p in root.rglob("*") if p != path)
    return settings, pipeline, json.loads(path.read_text())


def _node(task: str, node_ids) -> str:
    """Kubeflow task name -> pipeline node id (a resolver becomes '<id>-...-resolver' tasks)."""
    return task if task in node_ids else next(n for n in node_ids if task.startswith(n + "-"))


def test_every_stage_is_a_task_with_its_dependencies(compiled):
    _, pipeline, job = compiled
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    nodes = {c.id: c for c in pipeline.components}
    assert {_node(t, nodes) for t in tasks} == set(nodes)
    for name, task in tasks.items():
        node = nodes[_node(name, nodes)]
        if node.id in RESOLVERS:
            continue  # Kubeflow resolves it with a metadata query, not a task dependency
        depends = {_node(t, nodes) for t in task.get("dependentTasks", [])}
        assert depends == {u.id for u in node.upstream_nodes}, name
    # The data contract still gates training on the cluster.
    assert {builder.ANOMALIES_GATE, builder.EXPECTATIONS_GATE, builder.DRIFT_GATE} <= set(
        tasks[builder.TRAINER]["dependentTasks"])


def test_stages_run_in_the_project_image_with_the_beam_runner_args(compiled):
    settings, _, job = compiled
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    containers = {k: v["container"] for k, v in executors.items() if "container" in v}
    assert f"{builder.TRAINER}_executor" in containers
    assert {c["image"] for c in containers.values()} == {IMAGE}
    transform_args = containers[f"{builder.TRANSFORM}_executor"]["args"]
    for arg in settings.beam_pipeline_args():
        assert arg in transform_args


def test_pipeline_name_and_root_come_from_the_settings(compiled):
    settings, _, job = compiled
    assert job["pipelineSpec"]["pipelineInfo"]["name"] == settings.full_pipeline_name
    assert job["runtimeConfig"]["gcsOutputDirectory"] == str(settings.pipeline_root)


def test_the_baseline_is_the_latest_blessed_model_as_a_metadata_query(compiled):
    """Whatever --baseline-strategy says locally, Kubeflow gets TFX's latest-blessed strategy,
    compiled to ML Metadata queries: a blessed ModelBlessing, then its model."""
    _, _, job = compiled
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    queries = {name: spec["resolver"]["outputArtifactQueries"]
               for name, spec in executors.items() if "resolver" in spec}
    prefix = builder.BASELINE_RESOLVER
    assert queries[f"{prefix}-model-blessing-resolver_executor"]["model_blessing"]["filter"] == (
        'schema_title="tfx.ModelBlessing" AND state=LIVE AND '
        "metadata.blessed.number_value=1")
    assert queries[f"{prefix}-model-resolver_executor"]["model"]["filter"].startswith(
        'schema_title="tfx.Model" AND state=LIVE AND name=')
    # Drift between drops: the newest statistics before this run's StatisticsGen.
    assert queries[f"{builder.PREVIOUS_STATISTICS_RESOLVER}_executor"]["baseline"]["filter"] == (
        'schema_title="tfx.ExampleStatistics" AND state=LIVE')
    assert len(queries) == 3


class _BadName(types.Artifact):
    TYPE_NAME = "BadName"  # not "<module>.<Class>"


@component
def _Producer(out: OutputArtifact[_BadName]) -> None:  # noqa: N802 - a TFX component class
    pass


class _OwnStrategy(tfx.dsl.experimental.ResolverStrategy):
    def resolve_artifacts(self, store, input_dict):
        return input_dict


def test_problems_are_named_with_the_fix():
    """What the Kubeflow v2 compiler cannot express is reported up front, with what to change."""
    resolver = tfx.dsl.Resolver(
        strategy_class=_OwnStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model)).with_id("R")
    pipeline = tfx.dsl.Pipeline(pipeline_name="p", pipeline_root="/tmp/p",
                                components=[_Producer().with_id("Producer"), resolver])
    problems = kubeflow_spec.kfp_problems(pipeline)
    assert len(problems) == 2, problems
    assert "'BadName'" in problems[0] and "'<module>.<Class>'" in problems[0]
    assert "_OwnStrategy" in problems[1] and "LatestBlessedModelStrategy" in problems[1]
