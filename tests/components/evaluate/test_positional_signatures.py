"""The Evaluator's model wrapper (components/evaluate/positional_signatures.py): TFMA's positional call reaches a
loaded SavedModel signature by its input's name, with the same outputs."""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from apache_beam.internal import pickler

from components.evaluate import evaluator_module, positional_signatures


class _Lengths(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        return {"length": tf.strings.length(examples)}


def test_a_loaded_signature_takes_the_batch_positionally_under_its_input_name(tmp_path):
    module = _Lengths()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    loaded = tf.saved_model.load(str(tmp_path))
    model = positional_signatures.PositionalSignatures(loaded)
    batch = tf.constant([b"a", b"abc", b""])

    signature = model.signatures["serving_default"]
    np.testing.assert_array_equal(signature(batch)["length"], [1, 3, 0])
    np.testing.assert_array_equal(signature(examples=batch)["length"], [1, 3, 0])
    assert signature.structured_input_signature == (
        loaded.signatures["serving_default"].structured_input_signature)
    assert set(model.signatures) == set(loaded.signatures)
    assert model.serve is loaded.serve  # the rest is the loaded model's


def test_a_positional_call_is_passed_on_by_keyword():
    calls = []

    class KeywordsOnly:
        structured_input_signature = ((), {"examples": tf.TensorSpec([None], tf.string)})

        def __call__(self, **kwargs):
            calls.append(kwargs)
            return kwargs

    signature = positional_signatures.OneInputSignature(KeywordsOnly())
    assert signature("batch") == {"examples": "batch"}
    assert calls == [{"examples": "batch"}]


def test_the_evaluators_shared_model_loads_through_the_wrapper_and_pickles(tmp_path):
    module = _Lengths()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    config = tfma.EvalConfig(model_specs=[tfma.ModelSpec(signature_name="serving_default")])
    shared = evaluator_module.custom_eval_shared_model(str(tmp_path), "", config)
    # Beam ships the loader to its workers, pickled as Beam pickles.
    loader = pickler.loads(pickler.dumps(shared.model_loader.construct_fn))
    model = loader()
    assert isinstance(model, positional_signatures.PositionalSignatures)
    np.testing.assert_array_equal(
        model.signatures["serving_default"](tf.constant([b"ab"]))["length"], [2])
