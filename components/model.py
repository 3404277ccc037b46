"""The Keras model: by default the classic MLP (Dense 64 relu x2, softmax head, Adam)."""
from __future__ import annotations

import dataclasses

import tf_keras as keras


def keep_autograph_out_of_keras() -> None:
    """Put `tf_keras` on AutoGraph's do-not-convert list, as TensorFlow does for `keras`.

    AutoGraph rewrites every Python function a tf.function reaches unless its package is on that
    list. `keras` is; `tf_keras` (the Keras 2 that tf.Transform and TFMA need) is not, so each
    process converted Keras' own code, which is written to run unconverted: ~13 s on the first
    `fit` (the training loop) and ~8 s in `tf.saved_model.save` (the model's default signature)
    of every Trainer (measured). Same graphs, same numbers. Idempotent."""
    from tensorflow.python.autograph.core import config

    if not any(isinstance(rule, config.DoNotConvert) and rule._prefix == "tf_keras"  # noqa: SLF001
               for rule in config.CONVERSION_RULES):
        config.CONVERSION_RULES = (config.DoNotConvert("tf_keras"), *config.CONVERSION_RULES)


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
    keep_autograph_out_of_keras()
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
    return model
