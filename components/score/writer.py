"""PredictionsWriter: BulkInferrer's output back into the scored CSV (what tfx#2478 leaves to
the user).

BulkInferrer writes its examples in no particular order, each with the prediction columns added.
The ingestion gave every row a key (its position in the file, components/ingest/executor.py), so
the writer parses only the keys and the predictions (TensorFlow's example parser, no Python
object per row), sorts them by key, and streams the original CSV alongside, a record batch at a time: each
row's cells go out as the file had them (the same reader as the ingestion: BOM, CRLF, gzip,
blank lines skipped), under the file's own column names, followed by the prediction columns:

- classification: `prediction` (the class name), then `probability_<class>` per class in the
  spec's order;
- regression: `prediction` (the number, in the label's units).

A name the file already uses gets a `_` appended. Memory holds the keys and predictions (a few
numbers per row) and one batch of the CSV.
"""
# No `from __future__ import annotations` here: TFX reads the component type hints at runtime.
import json
import os
from typing import List, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

from components.ingest import arrow_bytes, csv_format
from components.ingest.csv_ranges import ByteRange, read_batches
from components.tf_data_autotune import without_autotune
from components.score.schema_types import ROW_KEY, output_column

PREDICTIONS_FILE = "predictions.csv"
PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "probability_"
DECODE_BATCH = 65_536
_NEEDS_QUOTES = r'[",\r\n]'


class ScoredFile(types.Artifact):
    """The scored CSV (predictions.csv) and its row count."""

    TYPE_NAME = "components.ScoredFile"


def prediction_columns(header: List[str], classes: List[str]) -> List[str]:
    """The columns after the file's own: prediction, then a probability per class."""
    taken = set(header)
    names = []
    for name in [PREDICTION_COLUMN] + [PROBABILITY_PREFIX + c for c in classes]:
        while name in taken:
            name += "_"
        taken.add(name)
        names.append(name)
    return names


def _example_files(examples: standard_artifacts.Examples) -> List[str]:
    from tfx.dsl.io import fileio

    files = []
    for split in artifact_utils.decode_split_names(examples.split_names):
        uri = artifact_utils.get_split_uri([examples], split)
        files += sorted(os.path.join(uri, name) for name in fileio.listdir(uri))
    return files


def read_predictions(files: List[str], key: str) -> Tuple[np.ndarray, np.ndarray]:
    """(row keys, predictions [rows, values per row]) from BulkInferrer's examples, in file
    row order. TensorFlow's example parser reads the two features and skips the rest of each
    example: 0.7 s for 150k taxi rows, where decoding whole examples (tfx_bsl) took 10 s."""
    import tensorflow as tf

    features = {ROW_KEY: tf.io.FixedLenFeature([], tf.int64),
                key: tf.io.VarLenFeature(tf.float32)}
    dataset = without_autotune(tf.data.TFRecordDataset(files, compression_type="GZIP")
                               .batch(DECODE_BATCH)
                               .map(lambda records: tf.io.parse_example(records, features)))
    keys, values = [], []
    for parsed in dataset:
        keys.append(parsed[ROW_KEY].numpy())
        values.append(tf.sparse.to_dense(parsed[key]).numpy())
    if not keys:
        return np.zeros(0, np.int64), np.zeros((0, 1), np.float32)
    keys_all, values_all = np.concatenate(keys), np.concatenate(values)
    order = np.argsort(keys_all, kind="stable")
    return keys_all[order], values_all[order]


def _csv_cells(column: pa.Array) -> pa.Array:
    """A column's cells as CSV text: quoted (quotes doubled) only where needed."""
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        return pc.cast(column, pa.string())
    quote = pc.match_substring_regex(column, _NEEDS_QUOTES)
    if not pc.any(quote).as_py():
        return column
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(column, '"', '""'), '"', "")
    return pc.if_else(quote, quoted, column)


def _text_lines(lines: pa.Array) -> memoryview:
    """The rows, each ended by a line break, as one UTF-8 buffer: no Python string per row."""
    ended = pc.binary_join_element_wise(lines, "\n", "")
    if ended.null_count:  # a null cell would drop its row from the join
        raise ValueError("a row of the scored file has a null cell")
    return arrow_bytes.joined(ended)


def _header_line(names: List[str]) -> str:
    return ",".join(_csv_cells(pa.array(names, pa.string())).to_pylist()) + "\n"


def _predicted(values: np.ndarray, classes: List[str], task: str) -> List[pa.Array]:
    """The prediction columns, as float32: the model's outputs are float32, and Arrow writes a
    float32 with the fewest digits that read back to it ('0.9880111', '0.000032'); widened to
    float64 first they took 17 noise digits ('0.0000017058144976545009')."""
    values = values.astype(np.float32, copy=False)
    if task == "regression":
        return [pa.array(values[:, 0])]
    names = pa.array(classes, pa.string())
    chosen = pc.take(names, pa.array(np.argmax(values, axis=1)))
    return [chosen] + [pa.array(values[:, i]) for i in range(values.shape[1])]


def write_predictions(csv_path: str, files: List[str], output_path: str, classes: List[str],
                      task: str) -> int:
    """Write the scored CSV (see the module docstring); returns its row count."""
    keys, values = read_predictions(files, output_column(task))
    fmt = csv_format.inspect(csv_path)
    header = list(fmt.header)
    written = 0
    with open(output_path, "wb") as out:
        out.write(_header_line(header + prediction_columns(
            header, [] if task == "regression" else classes)).encode("utf-8"))
        for batch in read_batches(fmt, ByteRange(fmt.header_offset, None, skip_header=True)):
            rows = batch.num_rows
            if written + rows > len(keys):
                raise ValueError(f"{csv_path}: {len(keys)} predictions for more rows than that; "
                                 "the file changed while it was being scored")
            cells = [_csv_cells(c) for c in batch.columns]
            cells += [_csv_cells(c) for c in _predicted(values[written:written + rows],
                                                        classes, task)]
            out.write(_text_lines(pc.binary_join_element_wise(*cells, ",")))
            written += rows
    if written != len(keys):
        raise ValueError(f"{csv_path}: {written} rows but {len(keys)} predictions; the file "
                         "changed while it was being scored")
    return written


@component
def PredictionsWriter(  # noqa: N802 - TFX component classes are CamelCase
    examples: InputArtifact[standard_artifacts.Examples],
    scored: OutputArtifact[ScoredFile],
    csv_path: Parameter[str],
    classes: Parameter[str],
    task: Parameter[str],
    csv_sha256: Parameter[str] = "",
    code_fingerprint: Parameter[str] = "",
) -> None:
    """BulkInferrer's examples joined back to the CSV they came from: scored/predictions.csv.
    csv_sha256 ties the cached result to the file's content, not only its path."""
    path = os.path.join(scored.uri, PREDICTIONS_FILE)
    rows = write_predictions(csv_path, _example_files(examples), path, json.loads(classes),
                             task)
    scored.set_int_custom_property("rows", rows)
    scored.set_string_custom_property("path", path)

