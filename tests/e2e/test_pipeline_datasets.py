"""The pipeline on the other shipped dataset, whole: penguins trained, blessed and pushed.

Taxi runs end to end on a sample in test_pipeline_e2e.py (`make pipeline` runs it whole). The
penguin run is the one the MLflow tests share (tests/mlflow_runs.py), so it is not paid twice."""
from __future__ import annotations

import pytest
from mlflow_runs import penguin_runs

from pipeline.console import summary_figures
from pipeline.definition import builder
from pipeline.mlmd import queries

pytestmark = pytest.mark.e2e


def test_penguins_is_trained_blessed_and_pushed(tmp_path_factory):
    settings = penguin_runs(tmp_path_factory).settings
    with queries.open_store_context(settings.metadata_path) as store:
        ctx = store.get_context_by_type_and_name(
            "node", f"{settings.full_pipeline_name}.{builder.EVALUATOR}")
        first = min(store.get_executions_by_context(ctx.id), key=lambda e: e.id)
        evaluation = queries.output_artifacts(store, first.id)["evaluation"][0]
        ctx = store.get_context_by_type_and_name(
            "node", f"{settings.full_pipeline_name}.{builder.STATISTICS_GEN}")
        stats_run = min(store.get_executions_by_context(ctx.id), key=lambda e: e.id)
        statistics = queries.output_artifacts(store, stats_run.id)["statistics"][0]
    metrics = summary_figures.overall_metrics(evaluation.uri)
    splits = summary_figures.split_row_counts(statistics.uri)
    assert sum(splits.values()) == 344  # every row of the CSV, in one split or the other
    assert metrics["example_count"] == splits["eval"]  # TFMA scored the whole eval split
    assert metrics["sparse_categorical_accuracy"] >= 0.9  # the default multiclass gate
    # The first (good) run pushed; the forced-worse second run was not blessed, so not pushed.
    pushed = [p for p in settings.serving_dir.iterdir() if p.is_dir()]
    assert len(pushed) == 1 and (pushed[0] / "saved_model.pb").exists()
