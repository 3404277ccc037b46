"""A registered version's blessing and the reason a run's model was not blessed, when a run
evaluates an already registered model again (its Trainer cached, the gates changed) and the
Evaluator compares it with another blessed model than the champion."""
from __future__ import annotations

import pytest

from pipeline.console import blessing_verdict
from pipeline.tracking import pipeline_runs, registry

WHY = ("AUC 0.955 is 0.043 below the champion (allowed drop 0.001: gates.max_metric_drop in "
       "spec.yaml)")


@pytest.fixture
def store(tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    client.create_registered_model("m")
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    for uri in ("/tfx/Trainer/model/1", "/tfx/Trainer/model/3"):  # both blessed when registered
        version = client.create_model_version(
            "m", source=str(tmp_path / "model"), run_id=run_id,
            tags={registry.TAG_MODEL_URI: uri, registry.TAG_BLESSED: "true"}).version
    client.set_registered_model_alias("m", registry.CHAMPION, version)  # the second
    return client, run_id


def test_a_blessed_version_judged_again_keeps_its_blessing_and_the_reason_names_the_baseline(
        store):
    client, run_id = store
    again = registry.log_and_register(client, run_id, "m", "unused", None,
                                      tfx_model_uri="/tfx/Trainer/model/3", blessed=False,
                                      evaluated_now=True)
    assert (again.version, again.blessed, again.created, again.champion) == ("2", False, False,
                                                                             False)
    assert again.version_blessed
    assert client.get_model_version("m", "2").tags[registry.TAG_BLESSED] == "true"
    assert registry.champion_version(client, "m") == "2"

    pipeline_runs._tag_why_not_blessed(client, run_id, again, WHY, "/tfx/Trainer/model/1")
    said = client.get_run(run_id).data.tags[blessing_verdict.TAG]
    assert "0.043 below blessed version 1 (allowed" in said  # the model it was compared with
    assert blessing_verdict.TAG not in client.get_model_version("m", "2").tags


def test_a_version_never_blessed_gets_the_reason_with_the_champion_named(store):
    client, run_id = store
    client.create_model_version("m", source="/x", run_id=run_id,
                                tags={registry.TAG_MODEL_URI: "/tfx/Trainer/model/5"})
    judged = registry.log_and_register(client, run_id, "m", "unused", None,
                                       tfx_model_uri="/tfx/Trainer/model/5", blessed=False,
                                       evaluated_now=True)
    assert not judged.version_blessed
    assert client.get_model_version("m", "3").tags[registry.TAG_BLESSED] == "false"
    pipeline_runs._tag_why_not_blessed(client, run_id, judged, WHY, "/tfx/Trainer/model/3")
    tag = client.get_model_version("m", "3").tags[blessing_verdict.TAG]
    assert "0.043 below champion version 2 (allowed" in tag
