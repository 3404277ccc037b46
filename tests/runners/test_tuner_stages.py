"""--tune puts TFX's Tuner between the Transform and the Trainer for every orchestrator: the
local pipeline, the Airflow DAG (one task per stage) and the Kubeflow v2 spec; without it, no
Tuner anywhere."""
import json

import pytest

from pipeline.config.settings import Settings, from_args
from pipeline.config.stage_names import STAGES, TUNED_STAGES, TUNER
from pipeline.definition import builder
from pipeline.runners import kubeflow_spec
from pipeline.runners.airflow import scheduler


@pytest.mark.parametrize("tune", [True, False])
def test_pipeline_dag_and_kubeflow_spec_carry_the_tuner_only_when_asked(tmp_path, tune):
    settings = Settings(dataset="penguins", output_root=tmp_path, tune=tune)
    nodes = [c.id for c in builder.create_pipeline(settings, settings.load_spec()).components]
    assert nodes == list(TUNED_STAGES if tune else STAGES)

    tasks = {t["task_id"]: t for t in scheduler.dag_spec(settings)["tasks"]}
    assert (TUNER in tasks) is tune
    if tune:
        assert "Transform" in tasks[TUNER]["upstream"]
        assert TUNER in tasks["Trainer"]["upstream"]
        # The task's command rebuilds the same settings, --tune included.
        command = tasks[TUNER]["command"]
        assert from_args(command[command.index("--node") + 2:][2:]).tune is True

    path = kubeflow_spec.compile_pipeline(settings, tmp_path / "kfp.json")
    kfp_tasks = json.loads(path.read_text())["pipelineSpec"]["root"]["dag"]["tasks"]
    assert (TUNER in kfp_tasks) is tune
    if tune:
        assert TUNER in kfp_tasks["Trainer"]["dependentTasks"]


def test_a_bad_search_space_is_refused_before_any_work(tmp_path):
    settings = Settings(dataset="penguins", output_root=tmp_path, tune=True,
                        tuner_search_space="hidden_units=wide")
    with pytest.raises(ValueError, match="hidden_units takes int values"):
        builder.create_pipeline(settings, settings.load_spec())
