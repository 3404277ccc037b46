"""The model as the Evaluator's TFMA loads it, with signatures it can call as it does.

TFMA calls a loaded signature (`serving_default`, then `transform_features`) with the batch of
serialized examples as one positional argument. A SavedModel's loaded signatures take keyword
arguments only, so every call first fails to bind, with TensorFlow formatting the whole batch
into the TypeError's message, and then runs through the flat-signature fallback. Profiled, that
message was 5.6% of the Evaluator's worker time at 1.5M rows, and more once the metrics got
cheaper. The signatures here pass a lone positional tensor on under the signature's one input
name; everything else is the loaded model's.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import tensorflow_model_analysis as tfma


class OneInputSignature:
    """A loaded signature that also takes its single input positionally."""

    def __init__(self, signature: Any):
        self._signature = signature
        inputs = signature.structured_input_signature[1] if (
            signature.structured_input_signature) else {}
        self._input_name = next(iter(inputs)) if len(inputs) == 1 else None

    def __call__(self, *args, **kwargs):
        if self._input_name and len(args) == 1 and not kwargs:
            return self._signature(**{self._input_name: args[0]})
        return self._signature(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._signature, name)


class PositionalSignatures:
    """The loaded model, with its signatures wrapped in OneInputSignature."""

    def __init__(self, model: Any):
        self._model = model
        self.signatures = {name: OneInputSignature(signature)
                           for name, signature in model.signatures.items()}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def _load(construct_fn: Callable[[], Any]) -> Any:
    model = construct_fn()
    return PositionalSignatures(model) if hasattr(model, "signatures") else model


def with_positional_signatures(shared_model: tfma.types.EvalSharedModel
                               ) -> tfma.types.EvalSharedModel:
    """The shared model, loading its model through _load (a picklable construct_fn, since
    Beam ships it to its workers)."""
    loader = shared_model.model_loader
    return shared_model._replace(model_loader=tfma.types.ModelLoader(
        construct_fn=functools.partial(_load, loader.construct_fn), tags=loader.tags))
