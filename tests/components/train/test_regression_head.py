"""The regression head (components/train/model.py): one linear unit on the standardized label,
the scale undone inside the model, MSE or Huber on the standardized error."""
from __future__ import annotations

import numpy as np
import pytest

from components.train.model import (
    LabelScale,
    ModelConfig,
    ModelInput,
    StandardizedError,
    build_model,
    label_scale,
)

INPUTS = [ModelInput("a_xf"), ModelInput("c_xf", cardinality=5)]


def _data(n=2000, seed=0, offset=50_000.0, spread=8_000.0):
    """A label far from zero in large units (a price): a + 2c in standard units, plus noise."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 1)).astype("float32")
    c = rng.integers(0, 5, size=(n, 1))
    signal = a[:, 0] + 0.5 * (c[:, 0] - 2)
    label = (offset + spread * (signal + 0.1 * rng.normal(size=n))).astype("float32")
    return {"a_xf": a, "c_xf": c}, label


def _dataset(features, label, batch=128):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((features, label)).batch(batch)


def test_label_scale_is_the_training_labels_mean_and_standard_deviation():
    features, label = _data()
    scale = label_scale(_dataset(features, label))
    assert scale.mean == pytest.approx(float(np.mean(label.astype(np.float64))), rel=1e-9)
    assert scale.std == pytest.approx(float(np.std(label.astype(np.float64))), rel=1e-6)
    # A constant label has no spread to divide by: the scale leaves it as it is.
    assert LabelScale.of(3, 30.0, 300.0) == LabelScale(mean=10.0, std=1.0, count=3)
    # Far from zero, the spread keeps its digits (sums in float64 would lose it).
    far = np.array([1e9 - 1, 1e9, 1e9 + 1], dtype=np.float64)
    import tensorflow as tf

    far_scale = label_scale(tf.data.Dataset.from_tensor_slices(({"a": far}, far)).batch(2))
    assert far_scale.mean == pytest.approx(1e9) and far_scale.std == pytest.approx(
        np.std(far), rel=1e-9)
    assert scale.count == len(label)
    with pytest.raises(ValueError, match="no labels"):
        LabelScale.of(0, 0.0, 0.0)


@pytest.mark.parametrize("architecture", ["tabular", "classic"])
def test_the_head_is_one_linear_unit_that_starts_at_the_training_mean(architecture):
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    features, label = _data()
    scale = label_scale(_dataset(features, label))
    model = build_model(INPUTS, ModelConfig(num_classes=0, architecture=architecture,
                                            label_scale=scale))
    head = model.get_layer("standardized_prediction")
    assert head.units == 1 and head.activation is keras.activations.linear
    assert model.optimizer.clipnorm == 1.0  # heavy-tailed labels: see REGRESSION_CLIPNORM
    assert model.output_shape == (None, 1)
    # The bias starts at zero and the scale is put back: an untrained model is near the mean.
    keras.utils.set_random_seed(0)
    untrained = build_model(INPUTS, ModelConfig(num_classes=0, architecture=architecture,
                                                label_scale=scale, hidden_layers=1))
    untrained.get_layer("standardized_prediction").kernel.assign(
        np.zeros((untrained.get_layer("standardized_prediction").kernel.shape)))
    assert untrained.predict(features, verbose=0) == pytest.approx(scale.mean, rel=1e-6)


@pytest.mark.parametrize("loss", ["mse", "huber"])
def test_training_learns_the_label_in_its_own_units(loss):
    import tf_keras as keras

    keras.utils.set_random_seed(1)
    features, label = _data()
    train = _dataset(features, label)
    scale = label_scale(train)
    model = build_model(INPUTS, ModelConfig(num_classes=0, label_scale=scale,
                                            regression_loss=loss, hidden_units=32))
    assert isinstance(model.loss, StandardizedError) and model.loss.kind == loss
    history = model.fit(train, validation_data=train, epochs=12, verbose=0).history
    # Metrics in the label's units: the RMSE falls far below the label's spread (8,000), to
    # near the noise (800) and the prediction is in dollars, not in standard deviations.
    assert history["val_rmse"][-1] < 0.25 * scale.std
    assert history["val_rmse"][-1] < history["val_rmse"][0]
    predicted = model.predict(features, verbose=0)[:, 0]
    assert np.sqrt(np.mean((predicted - label) ** 2)) == pytest.approx(
        history["val_rmse"][-1], rel=0.05)
    assert abs(predicted.mean() - label.mean()) < 0.1 * scale.std


def test_the_losses_are_squared_and_huber_errors_in_standard_deviations():
    import tensorflow as tf

    y_true = tf.constant([10.0, 10.0, 10.0])
    y_pred = tf.constant([[12.0], [10.0], [16.0]])  # [batch, 1] against [batch]: no broadcast
    std = 2.0  # errors of 1, 0 and 3 standard deviations
    mse = StandardizedError("mse", std)(y_true, y_pred)
    huber = StandardizedError("huber", std)(y_true, y_pred)
    assert float(mse) == pytest.approx((1 + 0 + 9) / 3)
    # Huber at delta 1: quadratic up to one standard deviation, linear beyond.
    assert float(huber) == pytest.approx((0.5 + 0 + (0.5 + 2)) / 3)


def test_a_small_training_split_trains_in_smaller_batches():
    from components.train.model import regression_batch_size

    assert regression_batch_size(128, 254) == 16  # 16 steps an epoch, not 2
    assert regression_batch_size(128, 1000) == 63
    assert regression_batch_size(128, 10_553) == 128  # taxi_fare: as set
    assert regression_batch_size(128, 40) == 16  # never below 16 rows
    assert regression_batch_size(8, 40) == 8  # nor above what was asked


def test_a_regression_config_is_checked():
    with pytest.raises(ValueError, match="regression_loss"):
        ModelConfig(num_classes=0, regression_loss="mae")
    with pytest.raises(ValueError, match="num_classes"):
        ModelConfig(num_classes=1)
    config = ModelConfig.from_settings(0, {"regression_loss": "huber"}, LabelScale(5.0, 2.0))
    assert config.is_regression and config.label_scale == LabelScale(5.0, 2.0)
    assert not ModelConfig(num_classes=2).is_regression
