"""A regression dataset runs the same stages on every runner: the one builder's pipeline, as the
local runner, Airflow (one task per stage) and Kubeflow (the compiled JSON) get it."""
from __future__ import annotations

import json

from pipeline.config.settings import Settings
from pipeline.definition import builder
from pipeline.runners import kubeflow_spec


def _stages(settings: Settings) -> dict[str, list[str]]:
    pipeline = builder.create_pipeline(settings, settings.load_spec(), write_files=False)
    return {c.id: sorted(u.id for u in c.upstream_nodes) for c in pipeline.components}


def test_regression_and_classification_pipelines_have_the_same_stages(tmp_path):
    taxi = Settings(dataset="taxi", output_root=tmp_path)
    assert _stages(taxi.replace(dataset="taxi_fare")) == _stages(taxi)
    tuned = taxi.replace(dataset="taxi_fare", tune=True)
    assert builder.TUNER in _stages(tuned)


def test_kubeflow_compiles_the_regression_pipeline_with_its_gates(tmp_path):
    settings = Settings(dataset="taxi_fare", output_root=tmp_path)
    path = kubeflow_spec.compile_pipeline(settings, tmp_path / "kfp" / "pipeline.json")
    job = json.loads(path.read_text())
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    assert job["pipelineSpec"]["pipelineInfo"]["name"] == "csv2model-taxi-fare"
    assert builder.EVALUATOR in tasks and builder.TRAINER in tasks
    text = json.dumps(job)
    # The Evaluator's eval config travels in the spec: RMSE, lower is better.
    assert "root_mean_squared_error" in text and "LOWER_IS_BETTER" in text
    assert "components.train.trainer_module.run_fn" in text


def test_kubeflow_names_keep_legal_names_and_mend_the_others():
    assert kubeflow_spec.kubeflow_name("csv2model-taxi") == "csv2model-taxi"
    assert kubeflow_spec.kubeflow_name("csv2model-taxi_fare") == "csv2model-taxi-fare"
    assert kubeflow_spec.kubeflow_name("CSV2Model-Prix (€)") == "csv2model-prix"
