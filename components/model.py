"""The Keras model: by default the classic MLP (Dense 64 relu x2, softmax head, Adam)."""
from __future__ import annotations

import dataclasses

import tensorflow as tf
import tf_keras as keras


@dataclasses.dataclass(frozen=True)
class ModelInput:
    """One transformed feature: numeric (cardinality 0) or a categorical id below cardinality."""

    name: str
    cardinality: int = 0


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    num_classes: int
    hidden_units: int = 64
    hidden_layers: int = 2
    learning_rate: float = 1e-3


def build_model(inputs: list[ModelInput], config: ModelConfig) -> keras.Model:
    """Numeric inputs as they are, categorical ids one-hot, concatenated into the MLP.

    A binary task is 2 classes with a softmax, so binary and multiclass share one head, one loss
    (sparse categorical cross-entropy) and one serving output layout.
    """
    keras_inputs, encoded = [], []
    for spec in inputs:
        if spec.cardinality:
            x = keras.layers.Input(shape=(1,), name=spec.name, dtype="int64")
            keras_inputs.append(x)
            encoded.append(
                keras.layers.CategoryEncoding(
                    num_tokens=spec.cardinality, output_mode="one_hot", name=f"{spec.name}_onehot"
                )(x)
            )
        else:
            x = keras.layers.Input(shape=(1,), name=spec.name, dtype="float32")
            keras_inputs.append(x)
            encoded.append(x)
    x = keras.layers.concatenate(encoded) if len(encoded) > 1 else encoded[0]
    for i in range(config.hidden_layers):
        x = keras.layers.Dense(config.hidden_units, activation="relu", name=f"dense_{i}")(x)
    outputs = keras.layers.Dense(config.num_classes, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs=keras_inputs, outputs=outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    # AutoGraph rewrites every Python function a tf.function reaches unless its package is on
    # TensorFlow's do-not-convert list. `keras` is on it; `tf_keras` (the Keras 2 that
    # tf.Transform and TFMA need) is not, so the first fit of every process spent ~13 s
    # converting Keras' own training loop, which was written to run unconverted. Same numbers.
    for step in ("train_step", "test_step", "predict_step"):
        setattr(model, step, tf.autograph.experimental.do_not_convert(getattr(model, step)))
    return model
