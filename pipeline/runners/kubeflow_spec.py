"""Compile the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines: a JSON pipeline spec.

The same create_pipeline as every other runner; this module supplies only the container image
and where to write. Nothing is submitted or pulled: the JSON is what `kfp` or Vertex AI's
PipelineJob uploads. Every step runs in `cluster_image`, which must hold the project and its
venv (the module code runs inside it), and pipeline paths (output_root) must be storage the
cluster sees.
"""
from __future__ import annotations

import re
from pathlib import Path

from pipeline.config.settings import Settings

# What TFX 1.16's Kubeflow v2 compiler accepts (tfx/orchestration/kubeflow/v2/compiler_utils.py,
# step_builder.py): custom artifact types named "<module>.<Class>", which the step container
# imports to rebuild the artifact, and only TFX's two built-in resolver strategies, which it
# turns into ML Metadata queries.
_KFP_TYPE_NAME = re.compile(r"^[a-z][a-z0-9-_]{2,20}[.][A-Z][a-zA-Z0-9-_]{2,49}$")
_KFP_RESOLVER_STRATEGIES = ("LatestArtifactStrategy", "LatestBlessedModelStrategy")


class NotCompilable(ValueError):
    """The pipeline uses something the Kubeflow v2 compiler cannot express."""


def default_output(settings: Settings) -> Path:
    return settings.output_dir / "kubeflow" / f"{settings.full_pipeline_name}.json"


def kfp_problems(pipeline) -> list[str]:
    """Why the Kubeflow v2 compiler would refuse this pipeline, one line each (empty: it won't).

    TFX's own errors name the artifact type or strategy but not the fix."""
    from tfx.dsl.components.common import resolver

    problems = []
    for node in pipeline.components:
        for key, channel in list(node.outputs.items()):
            artifact_type = channel.type
            if artifact_type.__module__.startswith("tfx."):
                continue
            if not _KFP_TYPE_NAME.fullmatch(artifact_type.TYPE_NAME):
                problems.append(
                    f"{node.id}.outputs[{key!r}]: artifact type {artifact_type.TYPE_NAME!r} needs "
                    "a TYPE_NAME of the form '<module>.<Class>' that imports the class (e.g. "
                    f"'components.{artifact_type.__name__}', exported by components/__init__.py)")
        if isinstance(node, resolver.Resolver):
            strategy = node.exec_properties.get(resolver.RESOLVER_STRATEGY_CLASS)
            if strategy is not None and (strategy.__name__ not in _KFP_RESOLVER_STRATEGIES
                                         or not strategy.__module__.startswith("tfx.")):
                problems.append(
                    f"{node.id}: resolver strategy {strategy.__module__}.{strategy.__name__} is "
                    f"not one of TFX's {' or '.join(_KFP_RESOLVER_STRATEGIES)}, the only ones "
                    "Kubeflow v2 can run")
    return sorted(set(problems))


def kubeflow_name(name: str) -> str:
    """A pipeline name Kubeflow v2 accepts ([a-z0-9][a-z0-9-]{0,127}): `csv2model-taxi_fare`
    becomes `csv2model-taxi-fare`; a name it accepts stays as it is."""
    legal = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:128]
    return legal or "csv2model"


def compile_pipeline(settings: Settings, output: Path | None = None) -> Path:
    """Write the Kubeflow v2 pipeline spec JSON; returns its path."""
    from tfx import v1 as tfx

    from pipeline.definition.builder import create_pipeline

    output = Path(output or default_output(settings))
    # Kubeflow v2 turns only TFX's own resolver strategies into ML Metadata queries.
    settings = settings.replace(baseline_strategy="latest_blessed")
    # Compiling writes only the JSON: no schema copy in a pipeline root this machine won't use.
    pipeline = create_pipeline(settings, settings.load_spec(), write_files=False)
    # A dataset named with an underscore (taxi_fare) is fine everywhere but in Kubeflow's name.
    name = kubeflow_name(pipeline.pipeline_info.pipeline_name)
    if name != pipeline.pipeline_info.pipeline_name:
        from tfx.orchestration import data_types

        pipeline.pipeline_info = data_types.PipelineInfo(
            pipeline_name=name, pipeline_root=pipeline.pipeline_info.pipeline_root)
    problems = kfp_problems(pipeline)
    if problems:
        raise NotCompilable("cannot compile for Kubeflow v2:\n  " + "\n  ".join(problems))
    output.parent.mkdir(parents=True, exist_ok=True)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=settings.cluster_image),
        output_dir=str(output.parent),
        output_filename=output.name,
    )
    runner.run(pipeline, write_out=True)
    return output
