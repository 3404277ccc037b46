"""pipeline/runners/transform_sources.py: tf.Transform's map of each output to the placeholders
it reads, built in one memoized walk, equals tf.Transform's own; its walk, made linear, finds the
same sources; a graph with a cycle goes back to tf.Transform's walk; the inputs a set of outputs
depends on are tf.Transform's."""
from __future__ import annotations

import types

import pytest
import tensorflow as tf
from tensorflow_transform import graph_tools
from tensorflow_transform.saved import saved_transform_io_v2 as io

from pipeline.runners import transform_sources

NUMERIC = [f"n{i}" for i in range(40)]


def _graph():
    """A transform-like graph: every numeric output reads one stacked matrix of all numeric
    inputs (as preprocessing.numeric_columns builds it), a text output reads its own input, a
    sparse output, an output of constants only, an input passed through, a control dependency."""
    specs = {name: tf.TensorSpec([None], tf.float32, name=name) for name in NUMERIC}
    specs["word"] = tf.TensorSpec([None], tf.string, name="word")
    specs["unused"] = tf.TensorSpec([None], tf.float32, name="unused")

    @tf.function(autograph=False)
    def transform(inputs):
        matrix = tf.stack([inputs[name] for name in NUMERIC], axis=1)
        centred = matrix - tf.reduce_mean(matrix, axis=0)
        outputs = {f"{name}_xf": centred[:, i] * 2.0 for i, name in enumerate(NUMERIC)}
        with tf.control_dependencies([inputs["unused"]]):
            outputs["word_xf"] = tf.strings.length(inputs["word"])
        outputs["sparse_xf"] = tf.sparse.from_dense(tf.reshape(inputs["n0"], [-1, 1]))
        outputs["constant_xf"] = tf.constant([1.0, 2.0]) * 3.0
        outputs["n1_raw"] = tf.identity(inputs["n1"])
        return outputs

    return transform.get_concrete_function(specs).structured_outputs


def _ids(sources) -> set[int]:
    return {id(t) for t in sources}


def test_the_memoized_map_equals_tf_transforms():
    outputs = _graph()
    expected = io._get_output_to_inputs_map(outputs)
    got = transform_sources.output_to_inputs_map(outputs)
    assert set(got) == set(expected)
    for name in expected:
        assert _ids(got[name]) == _ids(expected[name]), name
        assert type(got[name]) is type(expected[name])  # ObjectIdentitySet: .difference works
    assert len(got["n5_xf"]) == len(NUMERIC)  # the shared matrix reads every numeric input
    assert len(got["word_xf"]) == 1  # the control dependency on `unused` is not followed
    assert len(got["constant_xf"]) == 0
    assert len(got["sparse_xf"]) == 1


@pytest.mark.parametrize("ignore_control_dependencies", [True, False])
def test_the_linear_walk_finds_tf_transforms_sources(ignore_control_dependencies):
    outputs = _graph()
    sinks = [outputs["word_xf"].op, outputs["n3_xf"].op]
    expected = graph_tools.retrieve_sources(sinks, ignore_control_dependencies)
    got = transform_sources.retrieve_sources(sinks, ignore_control_dependencies)
    assert _ids(got) == _ids(expected)
    # With control dependencies followed, `unused` is read too.
    assert len(got) == len(NUMERIC) + 1 + (not ignore_control_dependencies)


def _op(name: str, inputs=(), type_: str = "Identity"):
    op = types.SimpleNamespace(name=name, type=type_, inputs=[], control_inputs=[])
    op.outputs = [types.SimpleNamespace(op=op)]
    op.inputs = [i.outputs[0] for i in inputs]
    return op


def test_a_cycle_goes_back_to_tf_transforms_walk(monkeypatch):
    placeholder = _op("x", type_="Placeholder")
    merge = _op("merge", [placeholder])
    body = _op("body", [merge])
    merge.inputs.append(body.outputs[0])  # a TF1 while loop: Merge <- NextIteration <- body
    with pytest.raises(transform_sources._Cycle):
        transform_sources._memoized_sources([body], {}, {})

    # ... and the block answers with tf.Transform's own walk.
    calls = []
    monkeypatch.setattr(io, "_get_output_to_inputs_map",
                        lambda signature: calls.append(signature) or {"looped": "tft"})

    def cyclic(signature):
        raise transform_sources._Cycle

    monkeypatch.setattr(transform_sources, "output_to_inputs_map", cyclic)
    with transform_sources.sources_walked_once():
        assert io._get_output_to_inputs_map({"looped": body.outputs[0]}) == {"looped": "tft"}
    assert len(calls) == 1


def test_the_block_puts_tf_transforms_functions_back():
    original_map, original_walk = io._get_output_to_inputs_map, graph_tools.retrieve_sources
    original_inputs = graph_tools.get_dependent_inputs
    with transform_sources.sources_walked_once():
        assert graph_tools.retrieve_sources is transform_sources.retrieve_sources
        assert graph_tools.get_dependent_inputs is transform_sources.get_dependent_inputs
        assert io._get_output_to_inputs_map is not original_map
    assert io._get_output_to_inputs_map is original_map
    assert graph_tools.retrieve_sources is original_walk
    assert graph_tools.get_dependent_inputs is original_inputs


def test_the_dependent_inputs_are_tf_transforms():
    """graph_tools.get_dependent_inputs, asked of a TF1 graph as the Transform asks it (a dict
    of outputs, and a list)."""
    with tf.compat.v1.Graph().as_default() as graph:
        inputs = {name: tf.compat.v1.placeholder(tf.float32, [None], name=name)
                  for name in NUMERIC[:6]}
        inputs["word"] = tf.compat.v1.placeholder(tf.string, [None], name="word")
        inputs["sparse"] = tf.compat.v1.sparse_placeholder(tf.int64, [None, 1], name="sparse")
        matrix = tf.stack([inputs[name] for name in NUMERIC[:4]], axis=1)
        outputs = {"a": matrix[:, 0] * 2.0, "b": tf.strings.length(inputs["word"]),
                   "c": tf.sparse.reduce_sum(inputs["sparse"], axis=1), "d": tf.constant(1.0)}
        for asked in (outputs, [outputs["b"], outputs["d"]], {"d": outputs["d"]}):
            expected = graph_tools.get_dependent_inputs(graph, inputs, asked)
            got = transform_sources.get_dependent_inputs(graph, inputs, asked)
            assert got.keys() == expected.keys()
            assert all(got[name] is expected[name] for name in got)
        assert sorted(transform_sources.get_dependent_inputs(graph, inputs, outputs)) == [
            *NUMERIC[:4], "sparse", "word"]
        with pytest.raises(TypeError, match="Expected Tensor"):
            transform_sources.get_dependent_inputs(graph, inputs, ["not a tensor"])
