"""The batched BulkInferrer executor's examples (components/score/bulk_inference.py): the
prediction entry it appends on the wire reads back as TFX's executor's example with the column
added (prediction_to_example_utils), whatever the input's layout."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tfx.components.bulk_inferrer import prediction_to_example_utils

from components.score import bulk_inference


def _example(**features) -> tf.train.Example:
    example = tf.train.Example()
    for name, value in features.items():
        feature = example.features.feature[name]
        if isinstance(value[0], bytes):
            feature.bytes_list.value[:] = value
        elif isinstance(value[0], int):
            feature.int64_list.value[:] = value
        else:
            feature.float_list.value[:] = value
    return example


@pytest.mark.parametrize("width", [1, 3, 40])  # a regression value, class probabilities, more
def test_the_appended_entry_reads_as_the_stock_executors_column(width):
    rng = np.random.default_rng(width)
    values = rng.random((5, width)).astype(np.float32)
    inputs = [_example(row_key=[i], fare=[float(i) * 1.5], company=[b"x" * (i * 40)],
                       empty=[b""] if i % 2 else [0.0])
              for i in range(5)]
    prefix = bulk_inference.float_entry_prefix(b"scores", width)
    spec = tf.io.FixedLenFeature([width], tf.float32)
    for i, example in enumerate(inputs):
        ours = bulk_inference.with_entry(example.SerializeToString(),
                                         prefix + values[i].astype("<f4").tobytes())
        stock = prediction_to_example_utils._add_columns(
            tf.train.Example.FromString(example.SerializeToString()),
            [("scores", values[i].tolist())])
        assert tf.train.Example.FromString(ours) == stock
        parsed = tf.io.parse_single_example(ours, {"scores": spec,
                                                   "row_key": tf.io.FixedLenFeature([1], tf.int64)})
        np.testing.assert_array_equal(parsed["scores"].numpy(), values[i])
        assert parsed["row_key"].numpy().tolist() == [i]


def test_an_example_not_in_the_one_field_layout_is_merged_as_a_proto():
    example = _example(a=[1.0]).SerializeToString()
    odd = example + example  # two `features` fields: valid, but not ExampleGen's layout
    assert bulk_inference.features_field(odd) is None
    entry = bulk_inference.float_entry_prefix(b"p", 2) + np.float32([0.25, 0.75]).tobytes()
    merged = tf.train.Example.FromString(bulk_inference.with_entry(odd, entry))
    assert list(merged.features.feature["p"].float_list.value) == [0.25, 0.75]
    assert list(merged.features.feature["a"].float_list.value) == [1.0]
    assert bulk_inference.features_field(b"") == b""


def test_the_component_carries_its_code_fingerprint_where_tfx_caches_on_it():
    """TFX keys its cache on a component's inputs and properties, not its executor's code: the
    fingerprint is a property, compiled into the node's parameters like BulkInferrer's own."""
    from tfx.dsl.compiler import compiler
    from tfx.dsl.components.common import importer
    from tfx.orchestration import pipeline as tfx_pipeline
    from tfx.proto import bulk_inferrer_pb2
    from tfx.types import standard_artifacts

    examples = importer.Importer(source_uri="/nowhere/examples",
                                 artifact_type=standard_artifacts.Examples).with_id("examples")
    model = importer.Importer(source_uri="/nowhere/model",
                              artifact_type=standard_artifacts.Model).with_id("model")
    inferrer = bulk_inference.BulkInferrer(
        examples=examples.outputs["result"], model=model.outputs["result"],
        data_spec=bulk_inferrer_pb2.DataSpec(example_splits=["score"]),
        model_spec=bulk_inferrer_pb2.ModelSpec(model_signature_name=["serving_default"]),
        output_example_spec=bulk_inferrer_pb2.OutputExampleSpec(),
        code_fingerprint="abc123").with_id("BulkInferrer")
    assert isinstance(inferrer.executor_spec.executor_class(), bulk_inference.BatchedExecutor)
    ir = compiler.Compiler().compile(tfx_pipeline.Pipeline(
        pipeline_name="p", pipeline_root="/nowhere", components=[examples, model, inferrer]))
    node = next(n.pipeline_node for n in ir.nodes if n.pipeline_node.node_info.id == "BulkInferrer")
    assert node.parameters.parameters["code_fingerprint"].field_value.string_value == "abc123"
    assert "output_example_spec" in node.parameters.parameters
    assert "output_examples" in node.outputs.outputs
