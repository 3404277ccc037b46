"""The schema a file to score is checked against: the committed schema in TFDV's SERVING
environment, and the ServingExampleValidator that checks statistics in it.

TFX 1.16's ExampleValidator calls tfdv.validate_statistics(statistics, schema) without an
environment, so a schema's `not_in_environment: "SERVING"` on the label does nothing there, and
a file without the label would fail on it. The scoring pipeline validates in SERVING instead,
with a copy of the committed schema derived for the file (serving_schema):

- TRAINING and SERVING are default environments (a schema drafted before environments existed
  gets them);
- the label, and columns the model does not read (role ignore), are left out of SERVING when
  the file lacks them, and kept in it when it has them (TFDV reports a column that is present
  but not in the environment);
- the row key the ingestion adds for joining predictions back (components/ingest/executor.py)
  is a SERVING-only integer feature.
"""
# No `from __future__ import annotations` here: TFX reads the component type hints at runtime.
import os
from typing import List

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from components.score.schema_types import FLOAT, INT, ROW_KEY, STRING, allow_unseen_values
from pipeline.config.dataset_spec import FEATURE, DatasetSpec

TRAINING, SERVING = "TRAINING", "SERVING"
SCHEMA_FILE = "schema.pbtxt"
_TYPES = {schema_pb2.INT: INT, schema_pb2.FLOAT: FLOAT, schema_pb2.BYTES: STRING}


def serving_schema(schema: schema_pb2.Schema, spec: DatasetSpec, header: List[str],
                   in_set_mostly: "dict[str, float] | None" = None) -> schema_pb2.Schema:
    """The committed schema for a file with this header (see the module docstring).
    in_set_mostly: {column: the share of values the data contract wants in its value set}
    (its expect_column_values_to_be_in_set's `mostly`); a column with a value list in the
    schema lets the same share be values it has not seen, as the contract does, rather than
    TFDV's default of none: the model reads an unseen value as an unknown one (its
    out-of-vocabulary bucket), and one new company among 500 rows stopped the file."""
    result = schema_pb2.Schema()
    result.CopyFrom(schema)
    for environment in (TRAINING, SERVING):
        if environment not in result.default_environment:
            result.default_environment.append(environment)
    roles = {f.name: f.role for f in spec.features}
    unread = set(spec.unread_columns)
    for feature in result.feature:
        kept = [e for e in feature.not_in_environment if e != SERVING]
        optional = roles.get(feature.name, FEATURE) != FEATURE
        if (optional and feature.name not in header) or feature.name in unread:
            kept.append(SERVING)  # absent, or no statistics (statistics_columns)
        del feature.not_in_environment[:]
        feature.not_in_environment.extend(kept)
        if feature.name in unread and feature.name in header:
            _anything(feature)
        elif (in_set_mostly or {}).get(feature.name) is not None:
            allow_unseen_values(feature, in_set_mostly[feature.name])
    row_key = result.feature.add()
    row_key.name = ROW_KEY
    row_key.type = schema_pb2.INT
    row_key.presence.min_fraction = 1.0
    row_key.value_count.min = row_key.value_count.max = 1
    row_key.not_in_environment.append(TRAINING)
    return result


def _anything(feature: schema_pb2.Feature) -> None:
    """A column no stage reads, as the file may hold it: text, with no domain, count or
    presence to meet (the ingestion writes it as text: column_types), and outside the SERVING
    environment: the scoring's statistics leave it out (statistics_columns)."""
    feature.type = schema_pb2.BYTES
    for field in ("domain_info", "presence_constraints", "shape_type",
                  "distribution_constraints"):
        feature.ClearField(field)


def column_types(schema: schema_pb2.Schema, header: List[str],
                 unread: "tuple[str, ...]" = ()) -> "dict[str, str]":
    """{column: INT | FLOAT | STRING}: the type the schema gives each of the file's columns, for
    the ingestion to write (a column of whole numbers stays FLOAT where the model reads FLOAT);
    text for the `unread` ones (DatasetSpec.unread_columns), whatever they hold."""
    types = {f.name: _TYPES[f.type] for f in schema.feature if f.type in _TYPES}
    types.update({name: STRING for name in unread})
    return {name: types[name] for name in header if name in types}


def statistics_columns(header: List[str], unread: "tuple[str, ...]" = ()) -> "list[str]":
    """The columns of a file to score that StatisticsGen describes: all but the unread ones
    (DatasetSpec.unread_columns), and the row key. A column no stage reads costs the most
    there, as text: 10 of 17.5 s at 1.5M taxi rows for `tips` and `pickup_census_tract`."""
    return [name for name in header if name not in unread] + [ROW_KEY]


def write_schema(schema: schema_pb2.Schema, folder: str) -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, SCHEMA_FILE)
    tfdv.write_schema_text(schema, path)
    return path


@component
def ServingExampleValidator(  # noqa: N802 - TFX component classes are CamelCase
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: InputArtifact[standard_artifacts.Schema],
    anomalies: OutputArtifact[standard_artifacts.ExampleAnomalies],
    environment: Parameter[str] = SERVING,
    code_fingerprint: Parameter[str] = "",
) -> None:
    """ExampleValidator's check in a schema environment: anomalies per split, in the layout
    ExampleValidator writes (Split-<name>/SchemaDiff.pb), for AnomaliesGate to judge."""
    from tfx.components.statistics_gen import stats_artifact_utils

    loaded = tfdv.load_schema_text(os.path.join(schema.uri, SCHEMA_FILE))
    splits = artifact_utils.decode_split_names(statistics.split_names)
    anomalies.split_names = artifact_utils.encode_split_names(splits)
    for split in splits:
        stats = stats_artifact_utils.load_statistics(statistics, split).proto()
        found = tfdv.validate_statistics(stats, loaded, environment=environment)
        io_utils.write_bytes_file(os.path.join(anomalies.uri, f"Split-{split}", "SchemaDiff.pb"),
                                  found.SerializeToString())
