"""Running an ExampleGen executor for real (Beam DirectRunner) on one CSV, outside a pipeline, and
reading back what it wrote: for tests that compare executors and inputs."""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from pipeline.config.settings import Settings
from pipeline.runners.beam_packaging import no_tfx_package_for_local_workers

# The pipeline's split at the default --train-ratio 0.7.
SPLITS = (("train", 70), ("eval", 30))


def read_examples(split_folder: Path) -> list[bytes]:
    """A split's examples, canonically (deterministically) serialized and sorted: executors write
    them in different orders (CsvExampleGen shuffles) and map orders."""
    files = sorted(str(p) for p in split_folder.iterdir())
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator()
    return sorted(tf.train.Example.FromString(r).SerializeToString(deterministic=True)
                  for r in records)


def run_example_gen(executor_class, csv: Path, out: Path, beam_args: tuple[str, ...] = (),
                    splits=SPLITS, custom_config: dict | None = None) -> dict[str, list[bytes]]:
    """Run an ExampleGen executor on one CSV into out; each split's examples (read_examples).
    custom_config: the options the builder packs into the ExampleGen's custom config."""
    examples = standard_artifacts.Examples()
    examples.uri = str(out)
    output_config = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
        for name, buckets in splits]))
    exec_properties = {
        "input_base": str(csv.parent),
        "input_config": proto_utils.proto_to_json(example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="single_split", pattern=csv.name)])),
        "output_config": proto_utils.proto_to_json(output_config),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
    }
    if custom_config:
        from google.protobuf import any_pb2, struct_pb2

        options = struct_pb2.Struct()
        options.update(custom_config)
        packed = any_pb2.Any()
        packed.Pack(options)
        exec_properties["custom_config"] = proto_utils.proto_to_json(
            example_gen_pb2.CustomConfig(custom_config=packed))
    context = BaseBeamExecutor.Context(
        beam_pipeline_args=["--runner=DirectRunner", *beam_args], tmp_dir=str(out / ".tmp"))
    # As the pipeline's runners do: else TFX leaves a 50 MB copy of itself in /tmp per call.
    with no_tfx_package_for_local_workers(Settings(output_root=out)):
        executor_class(context).Do({}, {"examples": [examples]}, exec_properties)
    return {name: read_examples(out / f"Split-{name}") for name, _ in splits}


# A CSV with what a reader may get wrong: Python-only number forms, an integer beyond int64, an
# all-empty column, quoted commas, quotes and line breaks, a blank line, non-ASCII text.
EDGE_CASES = (
    'id,spaced_int,big_int,float,text,empty,int_then_float,quoted\n'
    '1," 12",12345678901234567890,inf,"a, b",,1,"two\nlines"\n'
    '2,1_000,5,1e5,,,2.5,"x"\n'
    '\n'
    '3,,7,.5,ünï,,3,"say ""hi"""\n'
    '4,-0,-8,-0,plain text,,,""\n'
)
