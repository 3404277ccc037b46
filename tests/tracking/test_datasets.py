"""The run's data as MLflow dataset inputs: one per split (context train / eval) with the CSV's
digest, its path as source, the spec's columns as schema and the split's rows as profile, on the
pipeline's run, on the runs of the stages that read the data, and so on the registered model's
source run. Unit tests first; the e2e ones read the shared penguin runs of mlflow_runs.py."""
from __future__ import annotations

import csv
import hashlib
import json

import pytest
from ml_metadata.proto import metadata_store_pb2

import mlflow_runs
from mlflow_runs import client, runs  # noqa: F401 - pytest fixtures
from pipeline.config import stage_names
from pipeline.config.settings import Settings
from pipeline.mlmd import queries
from pipeline.tracking import dataset_inputs, registry, run_logging

CONTEXT = dataset_inputs.TAG_DATA_CONTEXT
BUCKETS = {"train": 70, "eval": 30}
# Every stage that reads the data, and the splits it reads.
READS = {stage_names.EXAMPLE_GEN: {"train", "eval"},
         stage_names.EXPECTATIONS_VALIDATOR: {"train", "eval"},
         stage_names.STATISTICS_GEN: {"train", "eval"}, stage_names.TRANSFORM: {"train", "eval"},
         stage_names.TRAINER: {"train", "eval"}, stage_names.EVALUATOR: {"eval"}}


@pytest.fixture(scope="module")
def spec():
    return Settings(dataset="penguins").load_spec()


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _csv_rows(path) -> int:
    with open(path, newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1  # less the header


def _contexts(inputs) -> dict[str, object]:
    """Context tag -> dataset input (None for an input without one)."""
    found = {}
    for i in inputs:
        tags = {t.key: t.value for t in i.tags}
        found[tags.get(CONTEXT)] = i
    return found


# ---- unit ---------------------------------------------------------------------------------

def test_schema_is_every_csv_column_typed_from_the_spec(spec):
    columns = json.loads(dataset_inputs.dataset_schema(spec))["mlflow_colspec"]
    assert [c["name"] for c in columns] == list(spec.column_names)
    types = {c["name"]: c["type"] for c in columns}
    assert types["species"] == "string" and types["island"] == "string"
    assert types["bill_length_mm"] == "double" and types["year"] == "long"
    assert not any(c["required"] for c in columns)  # a CSV field may be empty


def test_one_input_per_split_with_context_source_schema_and_rows(spec):
    sha = _sha256(spec.csv_path)
    inputs = dataset_inputs.dataset_inputs(spec, sha, BUCKETS, {"train": 240, "eval": 104})
    assert set(inputs) == {"train", "eval"}
    schema = dataset_inputs.dataset_schema(spec)
    for split, data_input in inputs.items():
        dataset = data_input.dataset
        assert [(t.key, t.value) for t in data_input.tags] == [(CONTEXT, split)]
        assert dataset.name == "penguins"
        assert dataset.digest == dataset_inputs.dataset_digest(sha, schema, split, BUCKETS)
        assert dataset.source_type == "local"
        assert json.loads(dataset.source) == {"uri": str(spec.csv_path.resolve())}
        assert dataset.schema == schema
        profile = json.loads(dataset.profile)
        assert profile == {"num_rows": {"train": 240, "eval": 104}[split], "split": split,
                           "hash_buckets": f"{BUCKETS[split]} of 100", "csv_rows": 344,
                           "csv_sha256": sha}


def test_digest_changes_with_what_makes_the_data():
    """MLflow keeps one dataset per name and digest in an experiment, with the first profile and
    schema logged under them: the digest must differ wherever those would."""
    digest = dataset_inputs.dataset_digest
    base = digest("a" * 64, "schema", "train", BUCKETS)
    assert base == digest("a" * 64, "schema", "train", dict(BUCKETS))
    assert len(base) == 8
    others = {digest("b" * 64, "schema", "train", BUCKETS),  # other bytes
              digest("a" * 64, "other schema", "train", BUCKETS),  # other spec columns
              digest("a" * 64, "schema", "eval", BUCKETS),  # the other split
              digest("a" * 64, "schema", "train", {"train": 80, "eval": 20}),  # other ratio
              digest("a" * 64, "schema")}  # the whole CSV
    assert len(others) == 5 and base not in others


def test_before_the_splits_are_counted_the_whole_csv_is_the_input(spec):
    sha = _sha256(spec.csv_path)
    for buckets, counts in (({}, {}), (BUCKETS, {}), (BUCKETS, {"train": 240})):
        inputs = dataset_inputs.dataset_inputs(spec, sha, buckets, counts)
        assert list(inputs) == [None]
        whole = inputs[None]
        assert whole.tags == [] and whole.dataset.profile is None
        assert whole.dataset.digest == dataset_inputs.dataset_digest(
            sha, dataset_inputs.dataset_schema(spec))


def test_each_stage_gets_the_splits_it_reads(spec):
    inputs = dataset_inputs.dataset_inputs(spec, "a" * 64, BUCKETS, {"train": 2, "eval": 1})
    for node in stage_names.STAGES:
        got = {t.value for i in dataset_inputs.stage_inputs(node, inputs) for t in i.tags}
        assert got == READS.get(node, set()), node
    whole = dataset_inputs.dataset_inputs(spec, "a" * 64, {}, {})
    assert dataset_inputs.stage_inputs(stage_names.EVALUATOR, whole) == [whole[None]]
    assert dataset_inputs.stage_inputs(stage_names.PUSHER, whole) == []


def test_split_buckets_come_from_the_example_gen_execution():
    execution = metadata_store_pb2.Execution(last_known_state=queries.COMPLETE)
    execution.custom_properties["output_config"].string_value = json.dumps(
        {"split_config": {"splits": [{"name": "train", "hash_buckets": 80},
                                     {"name": "eval", "hash_buckets": 20}]}})
    node = queries.NodeExecution(stage_names.EXAMPLE_GEN, "ran", execution, {})
    assert dataset_inputs.split_hash_buckets(node) == {"train": 80, "eval": 20}
    assert dataset_inputs.split_hash_buckets(None) == {}
    # No statistics yet (a run stopped before StatisticsGen): no row counts.
    assert dataset_inputs.split_row_counts(None) == {}
    running = queries.NodeExecution(stage_names.STATISTICS_GEN, "running",
                                    metadata_store_pb2.Execution(
                                        last_known_state=queries.Execution.RUNNING), {})
    assert dataset_inputs.split_row_counts(running) == {}


# ---- end to end: the shared penguin runs -------------------------------------------------

def _run_inputs(client, run_id: str) -> dict[str, object]:
    return _contexts(client.get_run(run_id).inputs.dataset_inputs)


def _check_split_inputs(found: dict, runs: mlflow_runs.PenguinRuns, metrics: dict) -> None:
    spec = runs.settings.load_spec()
    sha = _sha256(spec.csv_path)
    train_buckets = round(runs.settings.train_ratio * 100)
    buckets = {"train": train_buckets, "eval": 100 - train_buckets}
    assert set(found) == {"train", "eval"}
    rows = {}
    for split, data_input in found.items():
        dataset = data_input.dataset
        assert dataset.name == spec.name
        assert dataset.digest == dataset_inputs.dataset_digest(
            sha, dataset_inputs.dataset_schema(spec), split, buckets)
        assert json.loads(dataset.source)["uri"] == str(spec.csv_path.resolve())
        columns = json.loads(dataset.schema)["mlflow_colspec"]
        assert [c["name"] for c in columns] == list(spec.column_names)
        profile = json.loads(dataset.profile)
        assert profile["split"] == split and profile["csv_sha256"] == sha
        rows[split] = profile["num_rows"]
    assert rows["train"] + rows["eval"] == _csv_rows(spec.csv_path) == 344
    assert rows == {"train": metrics["examples/train"], "eval": metrics["examples/eval"]}


@pytest.mark.e2e
def test_pipeline_run_has_an_input_per_split(runs, client):
    for tfx_run in (runs.first_tfx_run, runs.second_tfx_run):
        parent = mlflow_runs.parent_run(client, runs.settings, tfx_run)
        _check_split_inputs(_run_inputs(client, parent.info.run_id), runs, parent.data.metrics)


@pytest.mark.e2e
def test_stages_that_read_the_data_have_its_splits(runs, client):
    for tfx_run in (runs.first_tfx_run, runs.second_tfx_run):  # the second: stages cached
        parent = mlflow_runs.parent_run(client, runs.settings, tfx_run)
        parent_inputs = _run_inputs(client, parent.info.run_id)
        children = mlflow_runs.child_runs(client, parent)
        assert READS.keys() <= children.keys()
        for node, child in children.items():
            found = {k: i.dataset.digest
                     for k, i in _run_inputs(client, child.info.run_id).items()}
            assert found == {k: parent_inputs[k].dataset.digest for k in READS.get(node, ())}, \
                node


@pytest.mark.e2e
def test_the_registered_models_source_run_has_the_data(runs, client):
    name = runs.settings.registered_model_name
    for version in client.search_model_versions(f"name = '{name}'"):
        source_run = client.get_run(version.run_id)
        assert run_logging.TAG_PARENT not in source_run.data.tags  # the pipeline's run
        _check_split_inputs(_run_inputs(client, version.run_id), runs, source_run.data.metrics)
    champion = client.get_model_version_by_alias(name, registry.CHAMPION)
    assert set(_run_inputs(client, champion.run_id)) == {"train", "eval"}
