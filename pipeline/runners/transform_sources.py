"""tf.Transform's graph walks, linear in the table's width: which inputs each output reads.

`TFTransformOutput.transform_features_layer()` (the Trainer's export, and so every Trainer and
Tuner) loads the transform graph and asks, for each output, which input placeholders it reads
(`saved_transform_io_v2._get_output_to_inputs_map`). tf.Transform 1.16 answers with one
`graph_tools.retrieve_sources` walk per output, and that walk pops from an ObjectIdentitySet,
whose `pop` lists the whole set each time: a walk is quadratic in the ops it visits. Every
numeric output here reads one [rows, columns] matrix of all numeric inputs
(components/transform/preprocessing.py, numeric_columns), so each walk visits every numeric
input's ops. On modeldata's grants (690 features, 598 numeric) the Trainer spent 85% of its
483 s there (py-spy); taxi's 17 features do not notice.

Within the block:
- the map is built from one post-order walk over the graph, each op's sources memoized (a set
  of the placeholders it reads, shared between ops that read the same ones); the result is the
  same ObjectIdentitySet per output that tf.Transform builds. A graph with a cycle (TF1 while
  loops) goes back to tf.Transform's walk, with the next item;
- `graph_tools.retrieve_sources` (that walk, also used by tf.Transform's analysis) keeps its
  frontier in a list: the same ops are visited, each once, without the quadratic pop;
- `graph_tools.get_dependent_inputs` (the inputs a set of outputs reads: asked by the Transform
  for its analysis inputs, its transform inputs and each Beam worker's graph state) collects
  the sources of every output first, then looks each input up once. tf.Transform 1.16 looked
  every input up again for every output: 690 outputs x 1,504 inputs on grants, ~30 s of its
  Transform.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator, Mapping

from pipeline.runners.module_attribute import replaced

_IO_V2 = "tensorflow_transform.saved.saved_transform_io_v2"
_GRAPH_TOOLS = "tensorflow_transform.graph_tools"
_NONE: frozenset = frozenset()


class _Cycle(Exception):
    """The graph has a cycle: the memoized walk does not apply."""


def retrieve_sources(sinks: Iterable[Any], ignore_control_dependencies: bool = False):
    """graph_tools.retrieve_sources (tf.Transform 1.16): the placeholders `sinks` read, walking
    inputs (and control inputs unless ignored) from each op once."""
    from tensorflow.python.util import object_identity

    to_visit = list(sinks)
    seen = {id(op) for op in to_visit}
    sources = object_identity.ObjectIdentitySet()
    while to_visit:
        op = to_visit.pop()
        if op.type == "Placeholder":
            sources.update(op.outputs)
        inputs = [t.op for t in op.inputs]
        if not ignore_control_dependencies:
            inputs += list(op.control_inputs)
        for input_op in inputs:
            if id(input_op) not in seen:
                seen.add(id(input_op))
                to_visit.append(input_op)
    return sources


def _memoized_sources(sinks: Iterable[Any], memo: dict[int, frozenset],
                      placeholders: dict[int, Any]) -> frozenset:
    """The ids of the placeholder tensors each sink reads (control inputs ignored), every op's
    answer kept in `memo`; raises _Cycle on a cycle."""
    union: set[int] = set()
    for sink in sinks:
        stack, in_progress = [sink], set()
        while stack:
            op = stack[-1]
            key = id(op)
            if key in memo:
                stack.pop()
                continue
            inputs = [t.op for t in op.inputs]
            pending = [i for i in inputs if id(i) not in memo]
            if pending:
                # An op met again before its inputs are known, or an input still being walked,
                # is on a cycle: its inputs lead back to it.
                if key in in_progress or any(id(i) in in_progress for i in pending):
                    raise _Cycle
                in_progress.add(key)
                stack.extend(pending)
                continue
            stack.pop()
            in_progress.discard(key)
            found = {memo[id(i)] for i in inputs} - {_NONE}
            if op.type == "Placeholder":
                for tensor in op.outputs:
                    placeholders[id(tensor)] = tensor
                found.add(frozenset(id(t) for t in op.outputs))
            memo[key] = (_NONE if not found else next(iter(found)) if len(found) == 1
                         else frozenset().union(*found))
        union |= memo[id(sink)]
    return frozenset(union)


def output_to_inputs_map(output_signature: Mapping[str, Any]) -> dict:
    """saved_transform_io_v2._get_output_to_inputs_map (tf.Transform 1.16) from one memoized
    walk: {output name: ObjectIdentitySet of the placeholders it reads}."""
    from tensorflow.python.util import object_identity
    from tensorflow_transform.saved import saved_transform_io_v2 as io

    memo: dict[int, frozenset] = {}
    placeholders: dict[int, Any] = {}
    result = {}
    for name, output in output_signature.items():
        sinks = [io._as_operation(c) for c in io._get_component_tensors(output)]  # noqa: SLF001
        ids = _memoized_sources(sinks, memo, placeholders)
        result[name] = object_identity.ObjectIdentitySet(placeholders[i] for i in ids)
    return result


def get_dependent_inputs(graph, input_tensors: Mapping[str, Any], output_tensors) -> dict:
    """graph_tools.get_dependent_inputs (tf.Transform 1.16): the entries of input_tensors that
    output_tensors (a dict or a list) transitively read, with one look-up per input."""
    from tensorflow_transform import analyzer_nodes, graph_tools, tf_utils

    outputs = output_tensors if isinstance(output_tensors, list) else output_tensors.values()
    # As tf.Transform does: the tensor replacements are taken as not ready, which changes no
    # dependency.
    ready = [(sink.tensor, False)
             for sink in graph.get_collection(analyzer_nodes.TENSOR_REPLACEMENTS)]
    analyzer = graph_tools._QuietInitializableGraphAnalyzer(  # noqa: SLF001
        graph, input_tensors, ready)
    # tf.Transform's decorator turns a placeholder or table outside the signature into its
    # ValueError naming the output, as before.
    analyzed = graph_tools._reraise_unexpected_error(_analyzed)  # noqa: SLF001
    dependents: set = set()
    for output in outputs:
        dependents.update(analyzed(analyzer, output))
    return {name: tensor for name, tensor in input_tensors.items()
            if any(tf_utils.hashable_tensor_or_op(component) in dependents
                   for component in graph_tools._decompose_tensor_or_op(tensor))}  # noqa: SLF001


def _analyzed(analyzer, output) -> set:
    """The dependent sources of one output's components, as InitializableGraphAnalyzer's
    get_dependent_inputs gathers them before its scan of every input."""
    import tensorflow as tf
    from tensorflow_transform import graph_tools

    if not isinstance(output, (tf.Tensor, tf.SparseTensor, tf.RaggedTensor, tf.Operation)):
        raise TypeError(f"Expected Tensor, SparseTensor, RaggedTensor or Operation got {output} "
                        f"of type {type(output)}")
    found: set = set()
    for component in graph_tools._decompose_tensor_or_op(output):  # noqa: SLF001
        found.update(analyzer._graph_analyzer.analyze_tensor(  # noqa: SLF001
            component).dependent_sources)
    return found


@contextlib.contextmanager
def sources_walked_once() -> Iterator[None]:
    try:
        from tensorflow_transform.saved import saved_transform_io_v2 as io
    except ImportError:  # a task whose stage blocks the library (stage_imports.py)
        yield
        return
    original = io._get_output_to_inputs_map  # noqa: SLF001

    def output_map(output_signature):
        try:
            return output_to_inputs_map(output_signature)
        except _Cycle:
            return original(output_signature)

    with replaced(_GRAPH_TOOLS, "retrieve_sources", retrieve_sources), \
            replaced(_GRAPH_TOOLS, "get_dependent_inputs", get_dependent_inputs), \
            replaced(_IO_V2, "_get_output_to_inputs_map", output_map):
        yield
