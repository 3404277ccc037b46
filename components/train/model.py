"""The Keras model, built from the transformed features and a ModelConfig.

Two architectures (ModelConfig.architecture):
  tabular  (default) categorical ids with more than `embedding_min_cardinality` values go
           through a learned embedding instead of a wide one-hot; pairs of quantile-bucketized
           features may be crossed (every pair, or none); then Dense relu blocks, each with
           optional batch normalization and dropout; Adam at a constant or cosine-decayed
           learning rate (LearningRateSchedule). The defaults that ship are the Settings'
           (pipeline/config/settings.py), chosen by measurement (README, Results).
  classic  the seed's MLP, as it was: every categorical one-hot, Dense 64 relu x2, softmax,
           Adam at 1e-3; the tabular options do not apply.

Two heads on either body: classification (num_classes > 0) a softmax over the classes; regression
(num_classes 0, docs/regression.md) one linear unit trained on the standardized label (its
training mean and standard deviation, LabelScale), with the scale undone inside the model, so
the model, its signatures and every metric speak the label's own units. The loss is mean squared
error or Huber (delta 1 standard deviation) on the standardized error.

Every Keras layer name derives from the transformed feature names (already TF-safe, see
pipeline/config/dataset_spec.py), never from a CSV column name.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Mapping

import tf_keras as keras

from pipeline.config.settings import MODEL_SETTINGS

TABULAR, CLASSIC_ARCHITECTURE = "tabular", "classic"
ARCHITECTURES = (TABULAR, CLASSIC_ARCHITECTURE)
LR_SCHEDULES = ("constant", "cosine")
CROSSES = ("none", "bucket_pairs")
REGRESSION_LOSSES = ("mse", "huber")
HUBER_DELTA = 1.0  # in standard deviations of the label
PREDICTION = "prediction"  # the regression head's layer (and serving output) name
# Regression: Adam's gradients clipped to this global norm. A heavy-tailed label (taxi fares up
# to 60 standard deviations out) gives the odd batch a squared error, and a gradient, hundreds of
# times the others', and the fit lurched: taxi_fare's eval RMSE was 3.29-3.44 over seeds 42, 1,
# 2, 3 unclipped, 3.08-3.10 clipped on the two worst seeds (docs/regression.md).
REGRESSION_CLIPNORM = 1.0
# The seed's MLP, fixed so that `--model-architecture classic` alone gives it back.
CLASSIC = dict(hidden_units=64, hidden_layers=2, learning_rate=1e-3)


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
    """One transformed feature: numeric (cardinality 0) or a categorical id below cardinality.

    `bucketized` marks quantile-bucket ids of a numeric feature: the ones `crosses` pairs up."""

    name: str
    cardinality: int = 0
    bucketized: bool = False


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    num_classes: int
    architecture: str = TABULAR
    hidden_units: int = 64
    hidden_layers: int = 2
    learning_rate: float = 1e-3
    # tabular only:
    embedding_min_cardinality: int = 10
    embedding_dim: int = 0  # 0: sized from the cardinality (embedding_size)
    crosses: str = "none"
    cross_embedding_dim: int = 8
    numeric_embedding_dim: int = 0  # > 0: each numeric input through its own Dense relu layer
    dropout: float = 0.0
    batch_norm: bool = False
    lr_schedule: str = "constant"  # cosine: see LearningRateSchedule
    # regression only (num_classes 0):
    regression_loss: str = "mse"
    label_scale: "LabelScale | None" = None

    @property
    def is_regression(self) -> bool:
        return self.num_classes == 0

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"model architecture must be one of {ARCHITECTURES}, "
                             f"got {self.architecture!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.crosses not in CROSSES:
            raise ValueError(f"crosses must be one of {CROSSES}, got {self.crosses!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.regression_loss not in REGRESSION_LOSSES:
            raise ValueError(f"regression_loss must be one of {REGRESSION_LOSSES}, "
                             f"got {self.regression_loss!r}")
        if self.num_classes == 1 or self.num_classes < 0:
            raise ValueError(f"num_classes must be 0 (regression) or at least 2, "
                             f"got {self.num_classes}")
        if self.architecture == CLASSIC_ARCHITECTURE:
            for name, value in CLASSIC.items():
                object.__setattr__(self, name, value)

    @classmethod
    def from_settings(cls, num_classes: int, values: Mapping[str, Any],
                      label_scale: "LabelScale | None" = None) -> "ModelConfig":
        """From MODEL_SETTINGS values (settings names; unknown names refused); num_classes 0
        and the training label's scale for regression."""
        unknown = set(values) - set(MODEL_SETTINGS)
        if unknown:
            raise ValueError(f"not model settings: {sorted(unknown)}; known: {MODEL_SETTINGS}")
        fields = {("architecture" if k == "model_architecture" else k): v
                  for k, v in values.items()}
        return cls(num_classes=num_classes, label_scale=label_scale, **fields)


@dataclasses.dataclass(frozen=True)
class LabelScale:
    """The training split's label mean and standard deviation (1 when the label is constant),
    and how many labels they come from."""

    mean: float = 0.0
    std: float = 1.0
    count: int = 0

    @classmethod
    def of(cls, count: float, total: float, total_squares: float,
           shift: float = 0.0) -> "LabelScale":
        """From the count, sum and sum of squares of the labels less `shift` (a label near
        their mean keeps the variance's digits for labels far from zero)."""
        if count <= 0:
            raise ValueError("the training split has no labels to scale")
        centre = total / count
        std = math.sqrt(max(total_squares / count - centre * centre, 0.0))
        mean = shift + centre
        return cls(mean=mean, std=std if std > 1e-12 * max(1.0, abs(mean)) else 1.0,
                   count=int(count))


# Regression on a small training split: an epoch of batch_size rows is a handful of steps (254
# penguins at 128: two), and early stopping, counted in epochs, ends the fit long before the
# linear head converges (eval RMSE 328 g against HistGradientBoosting's 306; at 16 steps per
# epoch 276, measured: docs/regression.md). So the batch shrinks to give an epoch at least
# MIN_STEPS_PER_EPOCH steps, down to MIN_BATCH rows; a split of 2,048 rows or more keeps it.
MIN_STEPS_PER_EPOCH = 16
MIN_BATCH = 16


def regression_batch_size(batch_size: int, rows: int) -> int:
    """The batch a regression Trainer (and Tuner) uses on a training split of `rows` rows."""
    return min(batch_size, max(MIN_BATCH, math.ceil(rows / MIN_STEPS_PER_EPOCH)))


def label_scale(dataset) -> LabelScale:
    """LabelScale of a finite (features, label) dataset: one pass summing, in float64, the labels
    less the first one (so that labels such as 1e9 +- 1 keep their spread)."""
    import tensorflow as tf

    first = next(iter(dataset.take(1)), None)
    shift = float(tf.reshape(first[1], [-1])[0]) if first is not None and tf.size(first[1]) else 0.0

    def add(state, batch):
        label = tf.reshape(tf.cast(batch[1], tf.float64), [-1]) - shift
        return (state[0] + tf.cast(tf.size(label), tf.float64), state[1] + tf.reduce_sum(label),
                state[2] + tf.reduce_sum(tf.square(label)))

    zero = tf.constant(0.0, tf.float64)
    count, total, squares = dataset.reduce((zero, zero, zero), lambda s, b: add(s, b))
    return LabelScale.of(float(count), float(total), float(squares), shift)


class StandardizedError(keras.losses.Loss):
    """Mean squared error or Huber of the error in standard deviations of the training label:
    the same optimum as on the raw label, at a scale where Adam's defaults and Huber's delta
    mean the same thing whatever the label's units (dollars or millions of them)."""

    def __init__(self, kind: str = "mse", std: float = 1.0, delta: float = HUBER_DELTA,
                 name: str | None = None, **kwargs):
        super().__init__(name=name or f"standardized_{kind}", **kwargs)
        self.kind, self.std, self.delta = kind, float(std), float(delta)

    def call(self, y_true, y_pred):
        import tensorflow as tf

        y_pred = tf.reshape(y_pred, [-1])
        error = (y_pred - tf.reshape(tf.cast(y_true, y_pred.dtype), [-1])) / self.std
        if self.kind == "huber":
            absolute = tf.abs(error)
            quadratic = tf.minimum(absolute, self.delta)
            return 0.5 * tf.square(quadratic) + self.delta * (absolute - quadratic)
        return tf.square(error)

    def get_config(self) -> dict:
        return {**super().get_config(), "kind": self.kind, "std": self.std, "delta": self.delta}


def embedding_size(cardinality: int) -> int:
    """Embedding width for a vocabulary: grows slowly with its size (the fastai rule of thumb,
    1.6 * n^0.56), capped at 32 so a large vocabulary does not dominate the concatenation."""
    return max(2, min(32, round(1.6 * cardinality ** 0.56)))


def _categorical(x, spec: ModelInput, config: ModelConfig):
    embed = (config.architecture == TABULAR
             and spec.cardinality > config.embedding_min_cardinality)
    if not embed:
        return keras.layers.CategoryEncoding(
            num_tokens=spec.cardinality, output_mode="one_hot", name=f"{spec.name}_onehot")(x)
    dim = config.embedding_dim or embedding_size(spec.cardinality)
    x = keras.layers.Embedding(spec.cardinality, dim, name=f"{spec.name}_embedding")(x)
    return keras.layers.Flatten(name=f"{spec.name}_embedding_flat")(x)


def _numeric(x, spec: ModelInput, config: ModelConfig):
    """A numeric input as it is, or (numeric_embedding_dim > 0) the input next to a small
    Dense relu layer of its own: a learned piecewise-linear function of that one value, so a
    threshold in it (a fare above some amount) need not be carved out by the shared layers."""
    if config.architecture != TABULAR or not config.numeric_embedding_dim:
        return x
    hinge = keras.layers.Dense(config.numeric_embedding_dim, activation="relu",
                               name=f"{spec.name}_numeric_embedding")(x)
    return keras.layers.concatenate([x, hinge], name=f"{spec.name}_numeric")


def _crossed(pairs, config: ModelConfig) -> list:
    """Each pair of bucket-id inputs as one id (a * |b| + b), embedded: the joint cell of two
    bucketized features (a location from its latitude and longitude buckets, say), which a
    Dense layer over the two one-hots can only approximate."""
    out = []
    for (xa, a), (xb, b) in pairs:
        name = f"{a.name}_x_{b.name}"
        cell = keras.layers.Lambda(
            lambda t, n=b.cardinality: t[0] * n + t[1], name=f"{name}_id")([xa, xb])
        embedded = keras.layers.Embedding(
            a.cardinality * b.cardinality, config.cross_embedding_dim, name=f"{name}_embedding",
        )(cell)
        out.append(keras.layers.Flatten(name=f"{name}_flat")(embedded))
    return out


class LearningRateSchedule(keras.callbacks.Callback):
    """The model's learning-rate schedule, per epoch: with lr_schedule=cosine the rate goes from
    learning_rate down to 5% of it over `epochs`; otherwise it stays. Per epoch rather than per
    step, so it needs no row count (the Trainer's datasets do not know theirs), and read from
    the model it is fitting (build_model leaves its config there), so one callback serves every
    Tuner trial whatever schedule the trial drew."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        config = getattr(self.model, "model_config", None)
        if config is None or config.architecture != TABULAR or config.lr_schedule != "cosine":
            return
        start, floor = config.learning_rate, 0.05 * config.learning_rate
        progress = min(epoch / max(self.epochs - 1, 1), 1.0)
        rate = floor + (start - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        keras.backend.set_value(self.model.optimizer.learning_rate, rate)


def build_model(inputs: list[ModelInput], config: ModelConfig) -> keras.Model:
    """Numeric inputs as they are, categorical ids one-hot or embedded, into the MLP.

    A binary task is 2 classes with a softmax, so binary and multiclass share one head, one loss
    (sparse categorical cross-entropy) and one serving output layout. Regression (num_classes
    0): see the module docstring.
    """
    keep_autograph_out_of_keras()
    tabular = config.architecture == TABULAR
    keras_inputs, encoded, buckets = [], [], []
    for spec in inputs:
        if spec.cardinality:
            x = keras.layers.Input(shape=(1,), name=spec.name, dtype="int64")
            encoded.append(_categorical(x, spec, config))
            if spec.bucketized:
                buckets.append((x, spec))
        else:
            x = keras.layers.Input(shape=(1,), name=spec.name, dtype="float32")
            encoded.append(_numeric(x, spec, config))
        keras_inputs.append(x)
    if tabular and config.crosses == "bucket_pairs":
        encoded += _crossed(itertools.combinations(buckets, 2), config)
    x = keras.layers.concatenate(encoded) if len(encoded) > 1 else encoded[0]
    for i in range(config.hidden_layers):
        x = keras.layers.Dense(config.hidden_units, activation="relu", name=f"dense_{i}")(x)
        if tabular and config.batch_norm:
            x = keras.layers.BatchNormalization(name=f"batch_norm_{i}")(x)
        if tabular and config.dropout:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    if config.is_regression:
        return _regression_head(keras_inputs, x, config)
    outputs = keras.layers.Dense(config.num_classes, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs=keras_inputs, outputs=outputs)
    model.model_config = config  # for LearningRateSchedule
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return with_optimizer_slots(model)


def _regression_head(keras_inputs: list, x, config: ModelConfig) -> keras.Model:
    """One linear unit in standard deviations (its bias starts at 0: the first prediction is
    the training mean), then the label's scale put back: prediction = z * std + mean."""
    scale = config.label_scale or LabelScale()
    z = keras.layers.Dense(1, name="standardized_prediction")(x)
    outputs = keras.layers.Rescaling(scale.std, offset=scale.mean, name=PREDICTION)(z)
    model = keras.Model(inputs=keras_inputs, outputs=outputs)
    model.model_config = config  # for LearningRateSchedule
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=REGRESSION_CLIPNORM),
        loss=StandardizedError(config.regression_loss, scale.std),
        # In the label's units: what the summary and the tracked run show.
        metrics=[keras.metrics.RootMeanSquaredError(name="rmse"),
                 keras.metrics.MeanAbsoluteError(name="mae")],
    )
    return with_optimizer_slots(model)


def with_optimizer_slots(model: keras.Model) -> keras.Model:
    """The compiled model with its optimizer's variables (Adam's moments) made now, as the first
    training step would make them.

    A tf.function whose first trace creates variables is traced a second time, without variable
    creation, before it runs (TensorFlow's polymorphic_function); Keras' train step makes the
    optimizer's slots in its first trace, so every fit traced its step twice. With no variable
    left to create, TensorFlow runs the first trace: one trace of the step, ~0.3-0.4 s of each
    Trainer and Tuner trial (a 10.5k-row taxi-shaped epoch 1.55-1.73 s -> 1.18-1.25 s), the
    same weights (the slots start at zero either way). The metrics' and loss' variables are
    made with their objects, at compile."""
    model.optimizer.build(model.trainable_variables)
    return model
