"""BulkInferrer with a batched executor: TFX's BulkInferrer component (its spec, inputs, outputs
and output examples), run by an executor that calls the model once per batch of examples.

TFX 1.16's executor parses every serialized example into a Python proto, has tfx_bsl's
RunInference build a PredictionLog per example (the request's example, the response's tensors),
then converts each log back into an example in Python: ~2,000-2,750 rows/s on taxi here, most of
`make score`'s time. This executor gives Beam one element per input file (files spread over
the workers); each file is read in batches of serialized examples (tf.data: one tensor per
batch), the SavedModel's signature is called on each batch as tfx_bsl calls it, and the
prediction is added to each example on the wire: an Example is one `features` field holding map
entries, so the output example is the input's entries followed by one more entry (the prediction
as a packed float list), written without parsing the input. tf.io.parse_example reads it as TFX's
executor's example with the column added. It writes the same files (`examples-*.gz` per split).

Anything else the stock executor supports (an inference_result output, classify/regress output
specs, several signatures, a model whose signature does not take serialized examples, examples
that are not gzipped tf.Examples) runs the stock executor.
"""
from __future__ import annotations

from typing import Iterator

import apache_beam as beam
from absl import logging
import numpy as np
from tfx.components.bulk_inferrer import component as bulk_inferrer_component
from tfx.components.bulk_inferrer import executor as bulk_inferrer_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import bulk_inferrer_pb2
from tfx.types import artifact_utils, channel, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import io_utils

from components.tf_data_autotune import without_autotune

BATCH = 32_768  # examples per call of the signature (~20 MB of taxi examples)
GZIP_LEVEL = 1  # the examples are read once, by the PredictionsWriter


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def features_field(example: bytes) -> bytes | None:
    """The inside of a serialized Example's one `features` field (its map entries), or None
    when the bytes are not exactly that (then the caller parses them as a proto)."""
    if not example:
        return b""
    if example[0] != 0x0A:  # field 1 (features), length-delimited
        return None
    length, at = _read_varint(example, 1)
    return example[at:] if at + length == len(example) else None


def float_entry_prefix(column: bytes, width: int) -> bytes:
    """The bytes of one Features map entry up to its floats: the entry (key, then
    Feature{float_list{value}}) of a packed list of `width` float32s, which follow it."""
    packed = 4 * width
    float_list = b"\x0a" + _varint(packed)  # FloatList.value (1), packed
    feature = b"\x12" + _varint(len(float_list) + packed) + float_list  # Feature.float_list (2)
    entry = (b"\x0a" + _varint(len(column)) + column  # entry key (1)
             + b"\x12" + _varint(len(feature) + packed) + feature)  # entry value (2)
    return b"\x0a" + _varint(len(entry) + packed) + entry  # Features.feature (1)


def with_entry(example: bytes, entry: bytes) -> bytes:
    """A serialized Example with one more serialized Features map entry."""
    inner = features_field(example)
    if inner is None:  # not the one-field layout ExampleGen writes: merge as protos
        import tensorflow as tf

        parsed = tf.train.Example.FromString(example)
        parsed.MergeFromString(b"\x0a" + _varint(len(entry)) + entry)
        return parsed.SerializeToString()
    return b"\x0a" + _varint(len(inner) + len(entry)) + inner + entry


class _ScoreFile(beam.DoFn):
    """(index, input file) -> output file `examples-<index>-of-<count>.gz`: the file's examples
    in batches of BATCH, each batch read as one tensor (tf.data), passed to the signature as
    it is, and written with the prediction entry appended to each example. One Beam element per
    file rather than per example: Beam's per-element cost was most of the stage."""

    def __init__(self, model_path: str, signature: str, output_key: str, column: str,
                 output_dir: str, count: int):
        self._model_path = model_path
        self._signature = signature
        self._output_key = output_key
        self._column = column
        self._output_dir = output_dir
        self._count = count

    def setup(self) -> None:
        import tensorflow as tf

        self._model = tf.saved_model.load(self._model_path)
        self._fn = self._model.signatures[self._signature]
        [self._input] = self._fn.structured_input_signature[1]

    def process(self, element: tuple[int, str]) -> Iterator[int]:
        import tensorflow as tf

        index, path = element
        target = (f"{self._output_dir}/{bulk_inferrer_executor._EXAMPLES_FILE_NAME}-"
                  f"{index:05d}-of-{self._count:05d}.gz")
        column = self._column.encode()
        rows = 0
        options = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=GZIP_LEVEL)
        with tf.io.TFRecordWriter(target, options) as out:
            records = tf.data.TFRecordDataset(path, compression_type="GZIP").batch(BATCH)
            for batch in without_autotune(records):
                values = self._fn(**{self._input: batch})[self._output_key].numpy()
                examples = batch.numpy()
                if rows == 0:  # TFX's executor refuses a column the examples already hold
                    first = tf.train.Example.FromString(examples[0])
                    if self._column in first.features.feature:
                        raise ValueError(f"column name {self._column} already exists in "
                                         "example")
                values = values.reshape(len(examples), -1).astype("<f4", copy=False)
                width = 4 * values.shape[1]
                prefix = float_entry_prefix(column, values.shape[1])
                packed = values.tobytes()
                for i, example in enumerate(examples):
                    out.write(with_entry(example, prefix + packed[i * width:(i + 1) * width]))
                rows += len(examples)
        yield rows


class BatchedExecutor(bulk_inferrer_executor.Executor):
    """TFX's BulkInferrer executor, with the batched path above for a predict output column
    from one signature taking serialized examples."""

    def _run_model_inference(self, data_spec, output_example_spec, examples, output_examples,
                             inference_result, inference_endpoint) -> None:
        from tfx.components.util import tfxio_utils
        from tfx.proto import example_gen_pb2

        plan = self._batched_plan(output_example_spec, output_examples, inference_result,
                                  inference_endpoint)
        payload, _ = tfxio_utils.resolve_payload_format_and_data_view_uri(examples)
        if payload != example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE:
            plan = None
        if plan is None:
            logging.info("Not a batched case: TFX's BulkInferrer executor runs")
            return super()._run_model_inference(data_spec, output_example_spec, examples,
                                                output_examples, inference_result,
                                                inference_endpoint)
        import tensorflow as tf

        model_path, signature, output_key, column = plan
        logging.info("Batched inference: %s signature %s, output %s -> column %s", model_path,
                     signature, output_key, column)
        example_uris = {}
        for artifact in examples:
            for split in artifact_utils.decode_split_names(artifact.split_names):
                if not data_spec.example_splits or split in data_spec.example_splits:
                    example_uris[split] = artifact_utils.get_split_uri([artifact], split)
        output_examples.split_names = artifact_utils.encode_split_names(sorted(example_uris))
        with self._make_beam_pipeline() as pipeline:
            for split, uri in example_uris.items():
                files = sorted(tf.io.gfile.glob(io_utils.all_files_pattern(uri)))
                if not all(f.endswith(".gz") for f in files):
                    raise ValueError(f"{uri}: examples not gzipped TFRecord files: {files}")
                out_uri = artifact_utils.get_split_uri([output_examples], split)
                tf.io.gfile.makedirs(out_uri)
                _ = (pipeline
                     | f"InputFiles[{split}]" >> beam.Create(list(enumerate(files)))
                     | f"Reshuffle[{split}]" >> beam.Reshuffle()  # files to all workers
                     | f"Predict[{split}]" >> beam.ParDo(_ScoreFile(
                         model_path, signature, output_key, column, out_uri, len(files))))

    @staticmethod
    def _batched_plan(output_example_spec, output_examples, inference_result,
                      inference_endpoint) -> tuple[str, str, str, str] | None:
        specs = output_example_spec.output_columns_spec
        saved = inference_endpoint.saved_model_spec
        if (inference_result is not None or output_examples is None or len(specs) != 1
                or not specs[0].HasField("predict_output")
                or len(specs[0].predict_output.output_columns) != 1
                or len(saved.signature_name) != 1 or list(saved.tag) not in ([], ["serve"])):
            return None
        from tensorflow.core.framework import types_pb2
        from tensorflow.python.tools import saved_model_utils

        # The signature as saved_model.pb declares it (read, not loaded).
        graph = saved_model_utils.get_meta_graph_def(saved.model_path, "serve")
        signature = graph.signature_def.get(saved.signature_name[0])
        [col] = specs[0].predict_output.output_columns
        if (signature is None or len(signature.inputs) != 1
                or next(iter(signature.inputs.values())).dtype != types_pb2.DT_STRING
                or col.output_key not in signature.outputs
                or signature.outputs[col.output_key].dtype not in (types_pb2.DT_FLOAT,
                                                                   types_pb2.DT_DOUBLE)):
            return None
        return saved.model_path, saved.signature_name[0], col.output_key, col.output_column


class BulkInferrerSpec(standard_component_specs.BulkInferrerSpec):
    """BulkInferrer's spec and one more property, the fingerprint of this module's code: TFX
    caches a component on its inputs and properties, not on its executor's code, so without it
    an edited executor would be served from cache when the same file is scored again."""

    PARAMETERS = {**standard_component_specs.BulkInferrerSpec.PARAMETERS,
                  "code_fingerprint": ExecutionParameter(type=str, optional=True)}


class BulkInferrer(bulk_inferrer_component.BulkInferrer):
    """TFX's BulkInferrer (its spec, inputs and outputs, plus code_fingerprint) with
    BatchedExecutor, writing examples with the prediction added (output_example_spec)."""

    SPEC_CLASS = BulkInferrerSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(BatchedExecutor)

    def __init__(self, examples: channel.BaseChannel, model: channel.BaseChannel,
                 data_spec: bulk_inferrer_pb2.DataSpec, model_spec: bulk_inferrer_pb2.ModelSpec,
                 output_example_spec: bulk_inferrer_pb2.OutputExampleSpec,
                 code_fingerprint: str = ""):
        # TFX's __init__ builds the stock spec, which has no place for the fingerprint: the
        # same spec here, from the arguments the scoring pipeline passes.
        spec = BulkInferrerSpec(
            examples=examples, model=model, model_blessing=None, data_spec=data_spec,
            model_spec=model_spec, output_example_spec=output_example_spec,
            inference_result=None,
            output_examples=channel.Channel(type=standard_artifacts.Examples),
            code_fingerprint=code_fingerprint)
        base_component.BaseComponent.__init__(self, spec=spec)

