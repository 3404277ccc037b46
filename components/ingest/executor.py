"""A FileBasedExampleGen executor for CSV: the examples and splits of TFX's CsvExampleGen at
pyarrow speed, in memory that does not grow with the file.

CsvExampleGen parses every line in Python, builds a tf.train.Example per row, keeps every
parsed line in memory to infer the column types before converting any, then reshuffles all
examples before writing them (on the DirectRunner a Reshuffle holds the whole data set in
memory): 4,300 rows/s and 6.6 GB for 1.5M taxi rows. Here:

1. a first streaming pass with pyarrow's CSV reader infers the column types as CsvExampleGen
   does (column_types.py), at pipeline construction;
2. the file is cut into byte ranges at line ends (when no value holds a line break and the
   file is not gzip-compressed; otherwise it is one range), which Beam's workers read in
   parallel in record batches;
3. each batch is encoded by tfx_bsl's C++ encoder into the bytes CsvExampleGen's examples
   serialize to (example_encoding.py), so TFX's hash partition puts every row in the split
   CsvExampleGen puts it in;
4. each range writes its rows to one gzipped TFRecord file per split as they come
   (range_writer.py: no Beam element per row, no Reshuffle). Rows keep the CSV's order within
   a file; the Trainer shuffles its input.

The header is read as every reader of the CSV reads it (csv_format.py: BOM, CRLF, gzip).
The custom config's `missing_values` (the spec's list, docs/ingestion.md) names cells read as
missing: each becomes an empty value list, exactly as an empty cell does, before the columns
are typed (so a column of numbers with `NA` for missing is INT or FLOAT). Without it a cell
such as `NA` is text, as in CsvExampleGen.

Two more options in the custom config, for scoring a new file against a trained model
(`make score`):
`column_types` gives columns the type the model's schema has ({name: "INT"|"FLOAT"|"STRING"}):
a column of whole numbers in a FLOAT column is written as floats, whole decimals (181.0, as
pandas writes an int column with gaps) in an INT column as integers, and a column whose values
do not fit its type (text in a number column, fractions in an INT one) fails naming file and
column.
`row_key_feature` adds an int64 feature holding each row's position (range index * 2**40 + row
within the range: sorting by it gives the file's row order), for joining predictions back to
the rows of the file.
"""
from __future__ import annotations

import os
from typing import Any

import apache_beam as beam
from absl import logging
from tfx.components.example_gen import utils
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.ingest import csv_format
from components.ingest.column_types import ColumnType
from components.ingest.csv_ranges import FileSurvey, survey
from components.ingest.range_writer import WriteRangeSplits


def _survey_input(exec_properties: dict[str, Any], split_pattern: str,
                  missing_values: list[str] = ()) -> tuple[csv_format.CsvFormat, FileSurvey]:
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                           split_pattern)
    files = fileio.glob(pattern)
    if len(files) != 1:
        raise RuntimeError(f"Split pattern {pattern} matches {len(files)} files; the CSV "
                           "ExampleGen reads exactly one")
    fmt = csv_format.inspect(files[0], missing_values)
    found = survey(fmt)
    logging.info("CSV %s: column types %s, %d byte ranges", fmt.path,
                 dict(zip(fmt.header, (t.name for t in found.types))), len(found.ranges))
    return fmt, found


COLUMN_TYPES_KEY = "column_types"
ROW_KEY_FEATURE_KEY = "row_key_feature"
MISSING_VALUES_KEY = "missing_values"


def custom_options(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """The custom config's Struct as a dict ({} when there is none)."""
    from google.protobuf import json_format, struct_pb2

    text = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if not text:
        return {}
    config = example_gen_pb2.CustomConfig()
    proto_utils.json_to_proto(text, config)
    fields = struct_pb2.Struct()
    if not config.custom_config.Unpack(fields):
        return {}
    return json_format.MessageToDict(fields)


def forced_types(fmt: csv_format.CsvFormat, found: list[ColumnType],
                 wanted: dict[str, str], whole: list[bool] | None = None) -> list[ColumnType]:
    """The survey's types with `wanted` laid over them. A column's values may widen to the type
    it is given (whole numbers to FLOAT, numbers to STRING, an empty column to anything), never
    narrow: that is a file whose values the model cannot read, named by file and column. One
    narrowing is safe: FLOAT to INT when every number in the column is a whole int64 (`whole`,
    the survey's, per column: pandas writes an int column with gaps as 181.0), each written as
    that integer (example_encoding.py)."""
    types = []
    whole = whole or [False] * len(found)
    for name, seen, integers in zip(fmt.header, found, whole):
        want = wanted.get(name)
        if want is None:
            types.append(seen)
            continue
        target = ColumnType[want]
        if seen > target and not (seen == ColumnType.FLOAT and target == ColumnType.INT
                                  and integers):
            what = {ColumnType.FLOAT: "decimal numbers", ColumnType.STRING: "text"}[seen]
            raise ValueError(f"{fmt.path}: column '{name}' holds {what}; the model reads it as "
                             f"{'integers' if target == ColumnType.INT else 'numbers'}")
        types.append(target)
    return types


class Executor(BaseExampleGenExecutor):
    """CSV to tf.Examples with pyarrow and tfx_bsl, split by TFX's hash partition, each byte
    range of the file written by one Beam worker.

    Use: FileBasedExampleGen(input_base=..., input_config=..., output_config=...,
    custom_executor_spec=executor_spec.BeamExecutorSpec(Executor)). The output config must
    have a split_config (hash buckets) and the input config one split: the one CSV.
    """

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        # The base class's per-record path (a Beam element per row, then Partition and a
        # Reshuffle) is what this executor avoids; Do below does not call it.
        raise NotImplementedError("the CSV ExampleGen writes its splits in Do, by byte range")

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        split_config = output_config.split_config
        if len(input_config.splits) != 1 or not split_config.splits or \
                split_config.HasField("partition_feature_name"):
            raise ValueError("the CSV ExampleGen takes one input split and hash-bucket output "
                             "splits (output_config.split_config, no partition_feature_name)")
        examples = output_dict[standard_component_specs.EXAMPLES_KEY]
        split_names = utils.generate_output_split_names(input_config, output_config)
        artifact_utils.get_single_instance(examples).split_names = (
            artifact_utils.encode_split_names(split_names))
        split_uris = [artifact_utils.get_split_uri(examples, name) for name in split_names]
        for uri in split_uris:
            fileio.makedirs(uri)
        options = custom_options(exec_properties)
        fmt, found = _survey_input(exec_properties, input_config.splits[0].pattern,
                                   options.get(MISSING_VALUES_KEY) or [])
        types = forced_types(fmt, found.types, options.get(COLUMN_TYPES_KEY) or {}, found.whole)
        write = WriteRangeSplits(fmt, types, split_uris,
                                 [split.hash_buckets for split in split_config.splits],
                                 len(found.ranges), row_key=options.get(ROW_KEY_FEATURE_KEY))
        with self._make_beam_pipeline() as pipeline:
            _ = (pipeline
                 | "ByteRanges" >> beam.Create(
                     [(i, *r) for i, r in enumerate(found.ranges)])
                 | "WriteSplits" >> beam.ParDo(write))
        payload_format = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
        for artifact in examples:
            if payload_format:
                examples_utils.set_payload_format(artifact, payload_format)
            examples_utils.set_file_format(artifact, "tfrecords_gzip")
