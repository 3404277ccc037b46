"""End to end: the real pipeline on a small taxi sample in a temp dir, run twice."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, pipeline_command, write_csv_sample
from pipeline.config import stage_names
from pipeline.config.settings import Settings
from pipeline.definition import builder
from pipeline.mlmd import queries

pytestmark = pytest.mark.e2e

EXECUTED_NODES = [  # every node but the resolver, which looks artifacts up instead of executing
    builder.EXAMPLE_GEN, builder.EXPECTATIONS_VALIDATOR, builder.EXPECTATIONS_GATE,
    builder.STATISTICS_GEN, builder.SCHEMA_IMPORTER, builder.EXAMPLE_VALIDATOR,
    builder.ANOMALIES_GATE, builder.TRANSFORM, builder.TRAINER, builder.EVALUATOR, builder.PUSHER,
]


def run(settings: Settings, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        pipeline_command("run", "--dataset", settings.dataset, "--csv", str(settings.csv),
                         "--output-root", str(settings.output_root), "--epochs",
                         str(settings.epochs), "--min-auc", str(settings.min_auc), *extra),
        capture_output=True, text=True, timeout=900,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    sample = write_csv_sample(DATA / "taxi" / "data.csv", tmp / "input" / "data.csv", rows=500)
    # 500 rows reach AUC ~0.93 with the default model, just short of the production bar.
    settings = Settings(dataset="taxi", csv=sample, output_root=tmp / "outputs", min_auc=0.8)
    first = run(settings)
    assert first.returncode == 0, first.stderr[-3000:] + first.stdout[-3000:]
    # Nothing changed: the up-to-date check answers without TFX; --force goes through TFX,
    # whose cache serves every stage.
    unchanged = run(settings)
    assert unchanged.returncode == 0, unchanged.stderr[-3000:]
    assert unchanged.stdout.startswith("Up to date: "), unchanged.stdout
    second = run(settings, "--force")
    assert second.returncode == 0, second.stderr[-3000:]
    return settings, first, second


def _executions(settings: Settings) -> dict[str, list]:
    with queries.open_store_context(settings.metadata_path) as store:
        node_ids = {}
        for node in EXECUTED_NODES:
            ctx = store.get_context_by_type_and_name(
                "node", f"{settings.full_pipeline_name}.{node}")
            executions = sorted(store.get_executions_by_context(ctx.id), key=lambda e: e.id)
            node_ids[node] = [queries.STATE_NAMES[e.last_known_state] for e in executions]
        return node_ids


def test_every_component_ran_once_then_came_from_cache(runs):
    # Three runs: the unchanged one in between recorded no execution at all.
    settings, _, _ = runs
    assert _executions(settings) == {node: ["ran", "cached"] for node in EXECUTED_NODES}


def test_the_checks_ran_beside_the_transform_and_the_trainer_after_their_gates(runs):
    """pipeline/runners/check_branch.py: the first run's contract check ran in a process of its
    own while the Transform ran; the Trainer started after every gate."""
    settings, _, _ = runs
    with queries.open_store_context(settings.metadata_path) as store:
        first = queries.run_ids(store, settings.full_pipeline_name)[0]
        spans = {e.node_id: (e.execution.create_time_since_epoch,
                             e.execution.last_update_time_since_epoch)
                 for e in queries.run_executions(store, settings.full_pipeline_name, first)}
    transform = spans[stage_names.TRANSFORM]
    contract = spans[stage_names.EXPECTATIONS_VALIDATOR]  # both start once the schema exists
    assert contract[0] < transform[1] and transform[0] < contract[1], spans
    for gate in (stage_names.EXPECTATIONS_GATE, stage_names.ANOMALIES_GATE,
                 stage_names.DRIFT_GATE):
        assert spans[stage_names.TRAINER][0] >= spans[gate][1], (gate, spans)


def test_summary_shows_each_stage_and_the_log_keeps_the_noise(runs):
    settings, first, second = runs
    for node in EXECUTED_NODES:
        assert any(line.split()[:2] == [node, "ran"] for line in first.stdout.splitlines()), node
        assert any(line.split()[:2] == [node, "cached"]
                   for line in second.stdout.splitlines()), node
    assert "500 rows" in first.stdout and "blessed yes" in first.stdout
    # The Transform's outputs are the label and taxi's 24 model inputs (its 25 outputs were
    # said to be 25 features).
    assert "24 transformed features and the label" in first.stdout, first.stdout
    assert "oneDNN" not in first.stdout + first.stderr
    assert "Component Trainer is finished" in settings.log_path.read_text()


def test_summary_reads_the_same_metrics_as_tfmas_loader_without_the_plots(runs):
    """summary_figures reads the Evaluator's metrics file alone (load_eval_result also turns
    every plot into dicts): the same slices and numbers as TFMA's own loader."""
    import tensorflow_model_analysis as tfma

    from pipeline.console import summary_figures

    settings, _, _ = runs
    with queries.open_store_context(settings.metadata_path) as store:
        evaluator = queries.node_execution(store, settings.full_pipeline_name, builder.EVALUATOR)
    uri = evaluator.outputs["evaluation"][0].uri
    full = tfma.load_eval_result(uri)
    assert full.plots  # the file the summary skips is there
    assert summary_figures._MetricsOnly(uri).slicing_metrics == full.slicing_metrics  # noqa: SLF001
    overall = summary_figures.overall_metrics(uri)
    assert overall == {n: v for k, _, n, v in summary_figures.eval_metrics(full) if k == ()}
    assert overall and all(isinstance(v, float) for v in overall.values())
    # The tracking record's reader: every slice's metrics, the overall slice's plots alone.
    from pipeline.tracking import stage_records

    record = stage_records.candidate_result(uri)
    assert record.slicing_metrics == full.slicing_metrics
    assert record.plots == [(k, p) for k, p in full.plots if k == ()] and len(full.plots) > 1
    assert (record.config, record.model_location, record.data_location) == (
        full.config, full.model_location, full.data_location)


def _pushed_model(settings: Settings) -> Path:
    pushed = sorted(p for p in settings.serving_dir.iterdir() if p.is_dir())
    assert len(pushed) == 1, pushed  # pushed once; the cached run pushed nothing new
    return pushed[0]


def _rows(settings: Settings, n: int = 40) -> pd.DataFrame:
    return pd.read_csv(settings.csv, nrows=n, keep_default_na=True)


def _as_examples(frame: pd.DataFrame, schema) -> list[bytes]:
    """The rows as CsvExampleGen would encode them: an empty cell is a feature with no values."""
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import schema_pb2

    types = {f.name: f.type for f in schema.feature}
    examples = []
    for _, row in frame.iterrows():
        feature = {}
        for name, value in row.items():
            missing = pd.isna(value)
            if types[name] == schema_pb2.INT:
                feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(
                    value=[] if missing else [int(value)]))
            elif types[name] == schema_pb2.FLOAT:
                feature[name] = tf.train.Feature(float_list=tf.train.FloatList(
                    value=[] if missing else [float(value)]))
            else:
                feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(
                    value=[] if missing else [str(value).encode()]))
        examples.append(tf.train.Example(features=tf.train.Features(feature=feature))
                        .SerializeToString())
    return examples


def test_raw_signature_matches_serving_default(runs):
    import tensorflow as tf
    import tensorflow_data_validation as tfdv

    settings, _, _ = runs
    spec = settings.load_spec()
    model = tf.saved_model.load(str(_pushed_model(settings)))
    frame = _rows(settings)
    raw_inputs = {}
    for feature in spec.model_features:
        column = frame[feature.name]
        if model.signatures["serving_raw"].structured_input_signature[1][feature.name].dtype \
                == tf.string:
            raw_inputs[feature.name] = tf.constant(column.fillna("").astype(str).tolist())
        else:
            raw_inputs[feature.name] = tf.constant(column.astype("float64").to_numpy())
    raw = model.signatures["serving_raw"](**raw_inputs)
    probabilities = raw["probabilities"].numpy()
    assert probabilities.shape == (len(frame), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert set(raw["class"].numpy().astype(str)) <= {"0", "1"}

    schema = tfdv.load_schema_text(str(spec.schema_path))
    from_examples = model.signatures["serving_default"](
        examples=tf.constant(_as_examples(frame, schema)))["probabilities"].numpy()
    np.testing.assert_allclose(probabilities, from_examples, atol=1e-5)


def test_bench_baselines_measure_this_run(runs):
    """`make bench`'s training and serving figures, smoke-run on this small run (seconds)."""
    import json

    from components.train.trainer_module import TIMING_FILE
    from pipeline.bench import baselines
    from pipeline.console import summary_figures

    settings, _, _ = runs
    # One round of the interleaved fits (the bench makes three on short fits): the figures'
    # arithmetic is what is checked here, and each fit costs seconds.
    training = baselines.keras_in_memory(settings, rounds=1)
    # The Trainer's own record (epochs run, seconds in fit) and the train split's row count,
    # read here from the run's artifacts: the baseline trains on the same rows as often.
    with queries.open_store_context(settings.metadata_path) as store:
        trainer = queries.node_execution(store, settings.full_pipeline_name, builder.TRAINER)
        stats = queries.node_execution(store, settings.full_pipeline_name,
                                       builder.STATISTICS_GEN)
    timing = json.loads(Path(trainer.outputs["model_run"][0].uri, TIMING_FILE).read_text())
    train_rows = summary_figures.split_row_counts(stats.outputs["statistics"][0].uri)["train"]
    assert training["epochs"] == timing["epochs"]
    assert training["trainer_examples_per_s"] == pytest.approx(
        train_rows * timing["epochs"] / timing["fit_seconds"])
    assert training["keras_examples_per_s"] > 0
    # Interleaved: arrays, the Trainer's input path, input path, arrays; the best of each.
    assert len(training["keras_seconds"]) == len(training["input_path_seconds"]) == 2
    assert training["input_ratio"] == pytest.approx(
        min(training["keras_seconds"]) / min(training["input_path_seconds"]))
    # The Trainer's single fit against the median plain fit.
    assert training["keras_examples_per_s"] == pytest.approx(
        train_rows * timing["epochs"] / float(np.median(training["keras_seconds"])))
    assert training["ratio"] == pytest.approx(
        training["trainer_examples_per_s"] / training["keras_examples_per_s"])
    # One server worker (the bench serves with one per core): each loads TensorFlow and the
    # model, seconds of both cores while the other pytest worker runs its own tests.
    served = baselines.serving(settings.replace(serve_workers=1), requests=5)
    assert set(served) == {f"{way}_{n}_rows" for way in ("http", "in_process") for n in (1, 100)}
    assert served["http_1_rows"]["concurrent"]["workers"] == 1
    for figures in served.values():
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] and figures["rps"] > 0
