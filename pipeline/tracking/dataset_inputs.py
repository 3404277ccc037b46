"""A run's data as MLflow dataset inputs: one input per split (context train / eval), with the
CSV's path as source, the spec's columns as schema and the split's rows as profile, for the
pipeline's run and the stage runs that read the data. The CSV itself is not read: its SHA-256
comes from the caller, the schema from the spec, the row counts from StatisticsGen's output.
Nothing here touches MLflow at import time."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import stage_names
from pipeline.config.dataset_spec import CATEGORICAL, CATEGORICAL_INT, FLOAT, INT, DatasetSpec
from pipeline.mlmd import queries
from pipeline.tracking import run_logging

if TYPE_CHECKING:
    from mlflow.entities import DatasetInput

TAG_DATA_CONTEXT = "mlflow.data.context"

ALL_SPLITS = None
# The stages that read the data, and which of its splits (ALL_SPLITS: every one): CsvExampleGen
# reads the CSV and writes the splits, the Evaluator judges the model on the eval split.
DATA_READERS: dict[str, tuple[str, ...] | None] = {
    stage_names.EXAMPLE_GEN: ALL_SPLITS, stage_names.EXPECTATIONS_VALIDATOR: ALL_SPLITS,
    stage_names.STATISTICS_GEN: ALL_SPLITS, stage_names.TRANSFORM: ALL_SPLITS,
    stage_names.TRAINER: ALL_SPLITS, stage_names.EVALUATOR: ("eval",),
}
# The spec's feature types as MLflow column types (categorical_int: integer codes).
_MLFLOW_TYPES = {FLOAT: "double", INT: "long", CATEGORICAL: "string", CATEGORICAL_INT: "long"}
_DIGEST_LENGTH = 8  # as long as MLflow's own dataset digests; the UI shows it beside the name


def dataset_schema(spec: DatasetSpec) -> str:
    """Every CSV column with its type, from the spec (the CSV is not read), in the JSON form
    MLflow's UI shows as a schema table. Not `required`: a CSV field may be empty."""
    from mlflow.types import ColSpec, Schema

    schema = Schema([ColSpec(_MLFLOW_TYPES[f.type], f.name, required=False)
                     for f in spec.features])
    return json.dumps({"mlflow_colspec": schema.to_dict()})


def dataset_digest(csv_sha256: str, schema: str, split: str | None = None,
                   hash_buckets: dict[str, int] | None = None) -> str:
    """The digest of the data as the pipeline reads it: the CSV's bytes (their SHA-256), the
    spec's columns and, for a split, which hash buckets of the rows it holds. MLflow files a
    dataset once per experiment under its name and digest, so whatever changes what a dataset
    is (and its profile) changes its digest too."""
    config = {"csv_sha256": csv_sha256, "schema": schema, "split": split,
              "hash_buckets": hash_buckets or {}}
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[
        :_DIGEST_LENGTH]


def split_hash_buckets(example_gen: queries.NodeExecution | None) -> dict[str, int]:
    """Split name -> hash buckets out of all, from the CsvExampleGen execution's output config."""
    if example_gen is None:
        return {}
    value = example_gen.execution.custom_properties.get("output_config")
    try:
        config = json.loads(value.string_value) if value is not None else {}
    except ValueError:
        return {}
    splits = config.get("split_config", {}).get("splits", [])
    return {s["name"]: int(s.get("hash_buckets", 0)) for s in splits if "name" in s}


def split_row_counts(statistics_gen: queries.NodeExecution | None) -> dict[str, int]:
    """Split name -> rows, from the StatisticsGen output ({} when the run did not get there)."""
    from pipeline.console import summary_figures

    if statistics_gen is None or \
            statistics_gen.execution.last_known_state not in (queries.COMPLETE, queries.CACHED):
        return {}
    artifacts = statistics_gen.outputs.get("statistics")
    if not artifacts:
        return {}
    try:
        return summary_figures.split_row_counts(artifacts[0].uri)
    except Exception:  # noqa: BLE001 - statistics gone or unreadable: no profile, no splits
        return {}


def dataset_inputs(spec: DatasetSpec, csv_sha256: str, hash_buckets: dict[str, int],
                   row_counts: dict[str, int]) -> dict[str | None, DatasetInput]:
    """The run's data as MLflow dataset inputs, by split.

    One input per split (context train / eval) when the splits and their row counts are known;
    before that (a run that stopped before StatisticsGen) one input for the whole CSV, without a
    context or a profile, keyed None. Each input: the dataset's name, its digest, the CSV as its
    source, the spec's columns as its schema, and the split's rows as its profile."""
    from mlflow.data.sources import LocalArtifactDatasetSource
    from mlflow.entities import Dataset, DatasetInput, InputTag

    source = LocalArtifactDatasetSource(str(Path(spec.csv_path).resolve()))
    schema = dataset_schema(spec)

    def dataset(digest: str, profile: dict | None) -> Dataset:
        return Dataset(name=spec.name, digest=digest, source_type=source._get_source_type(),
                       source=source.to_json(), schema=schema,
                       profile=json.dumps(profile) if profile is not None else None)

    if not hash_buckets or set(row_counts) != set(hash_buckets):
        whole = dataset(dataset_digest(csv_sha256, schema), None)
        return {None: DatasetInput(whole, [])}
    total_buckets, total_rows = sum(hash_buckets.values()), sum(row_counts.values())
    inputs = {}
    for split, buckets in hash_buckets.items():
        # Only what the digest determines: MLflow keeps the first profile logged under it.
        profile = {"num_rows": row_counts[split], "split": split,
                   "hash_buckets": f"{buckets} of {total_buckets}", "csv_rows": total_rows,
                   "csv_sha256": csv_sha256}
        inputs[split] = DatasetInput(
            dataset(dataset_digest(csv_sha256, schema, split, hash_buckets), profile),
            [InputTag(TAG_DATA_CONTEXT, split)])
    return inputs


def stage_inputs(node_id: str, inputs: dict[str | None, DatasetInput]) -> list[DatasetInput]:
    """The inputs of the splits a stage reads (all of them for the whole CSV); [] for a stage
    that does not read the data."""
    if node_id not in DATA_READERS:
        return []
    splits = DATA_READERS[node_id]
    return [i for split, i in inputs.items()
            if splits is ALL_SPLITS or split is None or split in splits]


# ---- ML Metadata lookups ------------------------------------------------------------------


def log_dataset_inputs(client, run_id: str, spec: DatasetSpec, csv_sha256: str,
                       nodes: list[queries.NodeExecution]
                       ) -> dict[str | None, DatasetInput] | None:
    """The data's inputs on the pipeline's run (every split); None if they could not be made
    (the run's tracking_error tag says why)."""
    by_node = {n.node_id: n for n in nodes}
    try:
        inputs = dataset_inputs(
            spec, csv_sha256,
            split_hash_buckets(by_node.get(stage_names.EXAMPLE_GEN)),
            split_row_counts(by_node.get(stage_names.STATISTICS_GEN)))
        client.log_inputs(run_id, datasets=list(inputs.values()))
    except Exception as e:  # noqa: BLE001 - the run's figures matter more than its data inputs
        run_logging.recording_failed(client, run_id, "the dataset inputs", e)
        return None
    return inputs
