"""The Keras model builder: layout, compile settings, and that training actually learns."""
from __future__ import annotations

import numpy as np
import pytest

from components.model import ModelConfig, ModelInput, build_model

INPUTS = [ModelInput("a_xf"), ModelInput("b_xf"), ModelInput("c_xf", cardinality=5)]


@pytest.fixture
def model():
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    return build_model(INPUTS, ModelConfig(num_classes=3))


def _batch(n=64, seed=0):
    rng = np.random.default_rng(seed)
    features = {
        "a_xf": rng.normal(size=(n, 1)).astype("float32"),
        "b_xf": rng.normal(size=(n, 1)).astype("float32"),
        "c_xf": rng.integers(0, 5, size=(n, 1)),
    }
    labels = (features["a_xf"][:, 0] > 0).astype(int) + (features["c_xf"][:, 0] > 2)
    return features, labels


def test_default_architecture_is_the_classic_mlp(model):
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    assert [(d.units, d.activation.__name__) for d in dense] == [
        (64, "relu"), (64, "relu"), (3, "softmax")]
    assert model.optimizer.__class__.__name__ == "Adam"
    assert model.loss.__class__.__name__ == "SparseCategoricalCrossentropy"
    # numeric inputs pass through, the categorical one is one-hot: 1 + 1 + 5 features in.
    assert dense[0].kernel.shape == (7, 64)


def test_outputs_are_class_probabilities(model):
    features, _ = _batch()
    probabilities = model.predict(features, verbose=0)
    assert probabilities.shape == (64, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_one_training_step_lowers_the_loss(model):
    features, labels = _batch()
    before = model.evaluate(features, labels, verbose=0)[0]
    model.train_on_batch(features, labels)
    after = model.evaluate(features, labels, verbose=0)[0]
    assert after < before


def test_width_depth_and_binary_head_follow_the_config():
    model = build_model(INPUTS, ModelConfig(num_classes=2, hidden_units=8, hidden_layers=3))
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    assert [d.units for d in dense] == [8, 8, 8, 2]
