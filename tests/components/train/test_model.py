"""The Keras model builder: each option's layout from its config, that training with it learns,
and the classic seed MLP one setting away."""
from __future__ import annotations

import os

import numpy as np
import pytest

from components.train.model import LearningRateSchedule, ModelConfig, ModelInput, build_model
from components.train.hyperparameters import model_settings, parse_search_space
from pipeline.config.settings import MODEL_SETTINGS, Settings

INPUTS = [ModelInput("a_xf"), ModelInput("b_xf"), ModelInput("c_xf", cardinality=5)]
# Wider: a 40-id vocabulary and two bucketized numerics, for embeddings and crosses.
WIDE = INPUTS + [ModelInput("d_xf", cardinality=40), ModelInput("a_bucket_xf", 4, True),
                 ModelInput("b_bucket_xf", 3, True)]


@pytest.fixture
def model():
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    return build_model(INPUTS, ModelConfig(num_classes=3, architecture="classic"))


def _batch(n=64, seed=0):
    rng = np.random.default_rng(seed)
    features = {
        "a_xf": rng.normal(size=(n, 1)).astype("float32"),
        "b_xf": rng.normal(size=(n, 1)).astype("float32"),
        "c_xf": rng.integers(0, 5, size=(n, 1)),
        "d_xf": rng.integers(0, 40, size=(n, 1)),
    }
    features["a_bucket_xf"] = np.digitize(features["a_xf"], [-1, 0, 1])
    features["b_bucket_xf"] = np.digitize(features["b_xf"], [-0.5, 0.5])
    labels = (features["a_xf"][:, 0] > 0).astype(int) + (features["c_xf"][:, 0] > 2)
    return features, labels


def _layers(model, kind: str) -> list:
    return [layer for layer in model.layers if type(layer).__name__ == kind]


def _lowers_the_loss(model, steps: int = 1) -> bool:
    features, labels = _batch()
    features = {k: features[k] for k in model.input_names}
    before = model.evaluate(features, labels, verbose=0)[0]
    for _ in range(steps):
        model.train_on_batch(features, labels)
    return model.evaluate(features, labels, verbose=0)[0] < before


def test_classic_is_the_seed_mlp_whatever_the_tabular_settings(model):
    dense = _layers(model, "Dense")
    assert [(d.units, d.activation.__name__) for d in dense] == [
        (64, "relu"), (64, "relu"), (3, "softmax")]
    assert model.optimizer.__class__.__name__ == "Adam"
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert model.loss.__class__.__name__ == "SparseCategoricalCrossentropy"
    # numeric inputs pass through, the categorical one is one-hot: 1 + 1 + 5 features in.
    assert dense[0].kernel.shape == (7, 64)
    # Tabular options do not leak into it: no dropout, no embedding, width stays 64.
    classic = build_model(WIDE, ModelConfig(
        num_classes=2, architecture="classic", hidden_units=256, hidden_layers=4, dropout=0.5,
        batch_norm=True, crosses="bucket_pairs", numeric_embedding_dim=4, learning_rate=0.1))
    assert [d.units for d in _layers(classic, "Dense")] == [64, 64, 2]
    assert not _layers(classic, "Dropout") and not _layers(classic, "Embedding")
    assert not _layers(classic, "BatchNormalization")
    assert float(classic.optimizer.learning_rate) == pytest.approx(1e-3)


def test_outputs_are_class_probabilities(model):
    features, _ = _batch()
    probabilities = model.predict({k: features[k] for k in model.input_names}, verbose=0)
    assert probabilities.shape == (64, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_one_training_step_lowers_the_loss(model):
    assert _lowers_the_loss(model)


def test_width_depth_and_binary_head_follow_the_config():
    model = build_model(INPUTS, ModelConfig(num_classes=2, hidden_units=8, hidden_layers=3))
    assert [d.units for d in _layers(model, "Dense")] == [8, 8, 8, 2]


# Each tabular option: the layers it adds, found by name and shape, and a step that learns.
@pytest.mark.parametrize("options, check", [
    ({"embedding_min_cardinality": 10},
     lambda m: [e.name for e in _layers(m, "Embedding")] == ["d_xf_embedding"]
     and m.get_layer("d_xf_embedding").output_dim == 13  # round(1.6 * 40^0.56)
     and m.get_layer("c_xf_onehot") is not None),
    ({"embedding_min_cardinality": 0, "embedding_dim": 3},
     lambda m: {e.name: e.output_dim for e in _layers(m, "Embedding")} == {
         "c_xf_embedding": 3, "d_xf_embedding": 3, "a_bucket_xf_embedding": 3,
         "b_bucket_xf_embedding": 3}),
    ({"crosses": "bucket_pairs", "cross_embedding_dim": 5},
     lambda m: m.get_layer("a_bucket_xf_x_b_bucket_xf_embedding").input_dim == 4 * 3
     and m.get_layer("a_bucket_xf_x_b_bucket_xf_embedding").output_dim == 5),
    ({"dropout": 0.25, "hidden_layers": 3},
     lambda m: [d.rate for d in _layers(m, "Dropout")] == [0.25] * 3),
    ({"batch_norm": True},
     lambda m: [b.name for b in _layers(m, "BatchNormalization")] == [
         "batch_norm_0", "batch_norm_1"]),
    ({"numeric_embedding_dim": 6},
     lambda m: m.get_layer("a_xf_numeric_embedding").units == 6
     and m.get_layer("b_xf_numeric_embedding").units == 6),
])
def test_each_tabular_option_builds_its_layers_and_learns(options, check):
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = build_model(WIDE, ModelConfig(num_classes=3, **options))
    assert check(model)
    assert _lowers_the_loss(model, steps=3)


def test_cosine_schedule_decays_the_rate_per_epoch_and_constant_keeps_it():
    import tf_keras as keras

    features, labels = _batch()
    rates = {}
    for schedule in ("cosine", "constant"):
        keras.utils.set_random_seed(0)
        model = build_model(INPUTS, ModelConfig(num_classes=3, lr_schedule=schedule,
                                                learning_rate=0.01))
        seen = []
        probe = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs, m=model, s=seen:
                                               s.append(float(m.optimizer.learning_rate)))
        model.fit({k: features[k] for k in model.input_names}, labels, epochs=5, verbose=0,
                  callbacks=[LearningRateSchedule(5), probe])
        rates[schedule] = seen
    assert rates["constant"] == pytest.approx([0.01] * 5)
    assert rates["cosine"][0] == pytest.approx(0.01) and rates["cosine"][-1] == pytest.approx(5e-4)
    assert all(a > b for a, b in zip(rates["cosine"], rates["cosine"][1:]))


def test_bad_options_are_refused_by_name():
    with pytest.raises(ValueError, match="architecture"):
        ModelConfig(num_classes=2, architecture="transformer")
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig(num_classes=2, dropout=1.0)
    with pytest.raises(ValueError, match="not model settings: \\['epochs'\\]"):
        ModelConfig.from_settings(2, {"epochs": 3})


def test_settings_defaults_build_the_tabular_model():
    settings = Settings()
    values = {name: getattr(settings, name) for name in MODEL_SETTINGS}
    model = build_model(WIDE, ModelConfig.from_settings(3, values))
    assert [d.units for d in _layers(model, "Dense")] == [settings.hidden_units] * \
        settings.hidden_layers + [3]
    assert [d.rate for d in _layers(model, "Dropout")] == [settings.dropout] * \
        settings.hidden_layers


def test_tuned_values_override_the_settings_and_the_search_space_is_typed():
    training = {"hidden_units": 128, "dropout": 0.3, "epochs": 30, "seed": 1}
    tuned = {"space": [], "values": {"hidden_units": 32, "tuner/epochs": 4}}
    assert model_settings(training, tuned) == {"hidden_units": 32, "dropout": 0.3}
    assert model_settings(training, None) == {"hidden_units": 128, "dropout": 0.3}
    assert parse_search_space("hidden_units=32,64; dropout=0,0.5;batch_norm=true,false;"
                              "lr_schedule=constant,cosine") == {
        "hidden_units": [32, 64], "dropout": [0.0, 0.5], "batch_norm": [True, False],
        "lr_schedule": ["constant", "cosine"]}
    parse_search_space(Settings().tuner_search_space)  # the default parses
    with pytest.raises(ValueError, match="'epochs' is not a model setting"):
        parse_search_space("epochs=1,2")
    with pytest.raises(ValueError, match="hidden_units takes int values"):
        parse_search_space("hidden_units=wide")
    with pytest.raises(ValueError, match="NAME=V1,V2"):
        parse_search_space("hidden_units")


def test_fit_and_save_do_not_autograph_convert_keras_itself(tmp_path):
    """AutoGraph leaves `keras` alone but not `tf_keras`; converting its training loop cost
    ~13 s on the first fit of every Trainer, and its default save signature ~8 s in
    tf.saved_model.save. Counted in a fresh process: the cache is global."""
    import subprocess
    import sys

    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os\nos.environ['TF_USE_LEGACY_KERAS'] = '1'\n"
        "import numpy as np\n"
        "from tensorflow.python.autograph.impl import api\n"
        "from components.train.model import ModelConfig, ModelInput, build_model\n"
        "model = build_model([ModelInput('a'), ModelInput('c', 4)], ModelConfig(num_classes=2))\n"
        "x = {'a': np.zeros((8, 1), 'float32'), 'c': np.zeros((8, 1), 'int64')}\n"
        "model.fit(x, np.zeros(8), validation_data=(x, np.zeros(8)), verbose=0)\n"
        "model.predict(x, verbose=0)\n"
        "import tensorflow as tf\n"
        f"tf.saved_model.save(model, {str(tmp_path / 'saved')!r})\n"
        "for code in api._TRANSPILER._cache._cache:\n"
        "    print(code.co_filename.split('site-packages/')[-1])\n")
    from conftest import REPO

    done = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    converted = done.stdout.split()
    # Left: the few functions Keras itself wraps in tf.function (the step and save-signature
    # wrappers: AutoGraph converts the function it is handed), which then call everything else
    # unconverted. Without the fix: ~130 after fit, layers, losses, metrics and the optimizer
    # among them, and the whole functional model again for the save signature.
    assert len(converted) <= 8, converted
    guts = [f for f in converted if any(part in f for part in (
        "base_layer.py", "functional.py", "compile_utils.py", "optimizers/", "losses.py",
        "layers/"))]
    assert guts == []


@pytest.mark.parametrize("config", [
    ModelConfig(num_classes=3),
    ModelConfig(num_classes=3, architecture="classic"),
    ModelConfig(num_classes=0),
], ids=["tabular", "classic", "regression"])
def test_fit_traces_its_training_step_once(config):
    """build_model makes the optimizer's slots (with_optimizer_slots): a step whose first trace
    creates variables is traced again before it runs. Without it, each of these traced twice."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = build_model(WIDE, config)
    features, labels = _batch()
    model.fit(features, labels.astype("float32") if config.is_regression else labels,
              batch_size=16, epochs=1, verbose=0)
    assert model.train_function.experimental_get_tracing_count() == 1
