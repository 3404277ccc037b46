"""What a file to score needs from the committed schema before anything runs, without TFX or
TensorFlow (the preflight reads it): each column's type, and the name of the row key."""
from __future__ import annotations

from pathlib import Path

# The ingestion's row key in the examples to score (components/ingest/executor.py); a CSV column
# of that name is refused.
ROW_KEY = "__csv2model_row__"
INT, FLOAT, STRING = "INT", "FLOAT", "STRING"
# What the exported serving_default signature outputs (components/train/export_signatures.py).
PROBABILITIES_OUTPUT, PREDICTION_OUTPUT = "probabilities", "prediction"


def output_key(task: str) -> str:
    """The serving_default output BulkInferrer adds to each example."""
    return PREDICTION_OUTPUT if task == "regression" else PROBABILITIES_OUTPUT


def output_column(task: str) -> str:
    """The feature BulkInferrer writes it to: a name no CSV column has (the preflight refuses
    it), since BulkInferrer fails on a feature the example already holds."""
    return f"{ROW_KEY[:-2]}_{output_key(task)}__"


def reserved_columns() -> tuple[str, ...]:
    """Names a file to score may not use: the row key and the prediction features."""
    return (ROW_KEY, output_column("binary"), output_column("regression"))
_TYPES = {"INT": INT, "FLOAT": FLOAT, "BYTES": STRING}


def required_columns(schema_path: Path) -> list[str]:
    """Columns the schema requires a value of in every row: `value_count { min: 1 }` (or a
    fixed shape), which TFDV drafts when the training data had no empty cell there. An empty
    cell is a feature with an empty value list (components/ingest/example_encoding.py): TFDV
    counts it present for `presence`, and refuses it against value_count ("Missing values")."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = text_format.Parse(Path(schema_path).read_text(), schema_pb2.Schema())
    return [f.name for f in schema.feature if f.name != ROW_KEY and (
        (f.HasField("value_count") and f.value_count.min >= 1) or
        (f.HasField("shape") and all(d.size >= 1 for d in f.shape.dim)))]


def allow_unseen_values(feature, in_list: float) -> None:
    """Ask only `in_list` of a column's values to be ones its value list has (TFDV's
    min_domain_mass; unset, TFDV asks for all: no unseen value), unless the schema already asks
    for less. A column without a value list (a string domain) has nothing to check."""
    if feature.WhichOneof("domain_info") not in ("domain", "string_domain"):
        return
    constraints = feature.distribution_constraints
    asked = constraints.min_domain_mass if feature.HasField("distribution_constraints") else 1.0
    constraints.min_domain_mass = min(asked, in_list)


def schema_types(schema_path: Path) -> dict[str, str]:
    """{column: INT | FLOAT | STRING} as the schema types them."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = text_format.Parse(Path(schema_path).read_text(), schema_pb2.Schema())
    names = {value: name for name, value in schema_pb2.FeatureType.items()}
    return {f.name: _TYPES[names[f.type]] for f in schema.feature if names[f.type] in _TYPES}
