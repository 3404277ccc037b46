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
