"""What a file to score needs from the committed schema before anything runs, without TFX or
TensorFlow (the preflight reads it): each column's type, and the name of the row key."""
from __future__ import annotations

from pathlib import Path

# The ingestion's row key in the examples to score (components/ingest/executor.py); a CSV column
# of that name is refused.
ROW_KEY = "__csv2model_row__"
INT, FLOAT, STRING = "INT", "FLOAT", "STRING"
_TYPES = {"INT": INT, "FLOAT": FLOAT, "BYTES": STRING}


def schema_types(schema_path: Path) -> dict[str, str]:
    """{column: INT | FLOAT | STRING} as the schema types them."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = text_format.Parse(Path(schema_path).read_text(), schema_pb2.Schema())
    names = {value: name for name, value in schema_pb2.FeatureType.items()}
    return {f.name: _TYPES[names[f.type]] for f in schema.feature if names[f.type] in _TYPES}
