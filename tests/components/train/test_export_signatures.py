"""components/train/export_signatures.py: the SavedModel the Trainer writes."""
from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def _functions(saved_model_dir) -> set[str]:
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((saved_model_dir / "saved_model.pb").read_bytes())
    return {f.signature.name for f in proto.meta_graphs[0].graph_def.library.function}


def test_the_export_skips_keras_layer_traces_and_serves_the_same_numbers(tmp_path):
    """save_for_serving leaves out Keras' per-layer traces (~2 s of every Trainer) and nothing
    else: the loaded signature answers as the model does. A plain tf.saved_model.save of the
    same model does write the traces, so the first assertion is the lever itself."""
    import tensorflow as tf

    from components.train.export_signatures import save_for_serving
    from components.train.model import ModelConfig, ModelInput, build_model

    model = build_model([ModelInput("a"), ModelInput("c", 4)], ModelConfig(num_classes=3))
    x = {"a": np.array([[0.5], [-1.0], [2.0]], "float32"), "c": np.array([[0], [3], [1]], "int64")}

    @tf.function(input_signature=[{"a": tf.TensorSpec([None, 1], tf.float32, name="a"),
                                   "c": tf.TensorSpec([None, 1], tf.int64, name="c")}],
                 autograph=False)
    def serve(features):
        return {"probabilities": model(features)}

    signatures = {"serving_default": serve.get_concrete_function()}
    save_for_serving(model, str(tmp_path / "lean"), signatures)
    tf.saved_model.save(model, str(tmp_path / "traced"), signatures=signatures)

    traced = [f for f in _functions(tmp_path / "traced")
              if "call_and_return_conditional_losses" in f]
    lean = [f for f in _functions(tmp_path / "lean")
            if "call_and_return_conditional_losses" in f]
    assert traced and not lean

    loaded = tf.saved_model.load(str(tmp_path / "lean")).signatures["serving_default"]
    served = loaded(a=tf.constant(x["a"]), c=tf.constant(x["c"]))["probabilities"].numpy()
    np.testing.assert_allclose(served, model(x).numpy(), atol=1e-6)


# Column names that are words of Python's or TensorFlow's own calls (`self` stopped the Trainer:
# Ecdat's Hmda has one), and names TensorFlow cannot take as they are.
ODD_NAMES = ["self", "args", "kwargs", "inputs", "training", "mask", "name", "class",
             "a name", "with-dash", "1st"]


class _ToyTransform:
    """What make_signatures reads of a tf.Transform output: the raw feature spec, and a layer
    turning parsed features into transformed ones (text hashed into 4 ids, numbers as float32)."""

    def __init__(self, spec):
        import tensorflow as tf

        from pipeline.config.dataset_spec import transformed_name

        self._raw = {f.name: tf.io.VarLenFeature(tf.string if f.is_categorical else tf.float32)
                     for f in spec.features}

        class Layer(tf.Module):
            def __call__(self, parsed):
                out = {}
                for name, value in parsed.items():
                    dense = tf.reshape(tf.sparse.to_dense(value), [-1, 1])
                    out[transformed_name(name)] = tf.strings.to_hash_bucket_fast(dense, 4) \
                        if value.dtype == tf.string else dense
                return out

        self._layer = Layer()

    def raw_feature_spec(self):
        return dict(self._raw)

    def transform_features_layer(self):
        return self._layer


def test_a_column_of_any_name_is_served_under_the_input_the_export_maps_it_to(tmp_path):
    """A column named `self` stopped the Trainer's export: `Function._get_concrete_function_
    garbage_collected() got multiple values for argument 'self'`. Every name here exports, and
    serving_raw answers a request built from the export's map, as the MLflow pyfunc builds it."""
    import json

    import tensorflow as tf

    from components.train.export_signatures import (
        SERVING_RAW, SERVING_RAW_COLUMNS_FILE, make_signatures, save_for_serving,
        write_serving_raw_columns)
    from components.train.model import ModelConfig, ModelInput, build_model
    from pipeline.config.dataset_spec import DatasetSpec, Feature, transformed_name

    features = [Feature("y", "categorical", role="label"), Feature("self", "categorical")] + [
        Feature(name, "float") for name in ODD_NAMES[1:]]
    spec = DatasetSpec(name="toy", csv_path=tmp_path / "toy.csv", task="binary", label="y",
                       classes=("no", "yes"), features=tuple(features))
    model = build_model([ModelInput(transformed_name("self"), 4)] + [
        ModelInput(transformed_name(name)) for name in ODD_NAMES[1:]], ModelConfig(2))
    transform = _ToyTransform(spec)
    export = tmp_path / "export"
    save_for_serving(model, str(export), make_signatures(model, transform, spec))
    write_serving_raw_columns(str(export), spec)

    inputs = json.loads((export / "assets.extra" / SERVING_RAW_COLUMNS_FILE).read_text())[
        "inputs"]
    assert sorted(inputs) == sorted(ODD_NAMES)
    signature = tf.saved_model.load(str(export)).signatures[SERVING_RAW]
    assert sorted(signature.structured_input_signature[1]) == sorted(inputs.values())
    rows = {"self": tf.constant(["yes", "no", ""])}
    rows.update({name: tf.constant([0.5, -1.0, float(i)], tf.float64)
                 for i, name in enumerate(ODD_NAMES[1:])})
    served = signature(**{inputs[column]: value for column, value in rows.items()})
    parsed = {name: tf.sparse.from_dense(tf.reshape(tf.cast(value, tf.float32)
                                                    if value.dtype != tf.string else value,
                                                    [-1, 1]))
              for name, value in rows.items()}
    expected = model(transform.transform_features_layer()(parsed)).numpy()
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-6)
