"""A toy SavedModel with a serving_raw signature like the pipeline's, for the serving and
model-signature tests: a number `x` (NaN when missing, read as 0) and a text `color`.
Classifier: logits are x and the length of color, classes "low" and "high"; regression: x."""
from __future__ import annotations

CLASSES = ["low", "high"]


def write(path, regression: bool = False) -> str:
    import tensorflow as tf

    from pipeline.tracking import serving_pyfunc

    spec = {"x": tf.TensorSpec([None], tf.float64, name="x"),
            "color": tf.TensorSpec([None], tf.string, name="color")}

    class Toy(tf.Module):
        @tf.function(input_signature=[spec])
        def serve(self, features):
            x = tf.where(tf.math.is_nan(features["x"]), tf.zeros_like(features["x"]),
                         features["x"])
            if regression:
                return {serving_pyfunc.SIGNATURE_PREDICTION: tf.cast(x, tf.float32)}
            length = tf.cast(tf.strings.length(features["color"]), tf.float64)
            probabilities = tf.nn.softmax(tf.cast(tf.stack([x, length], axis=1), tf.float32))
            class_id = tf.argmax(probabilities, axis=1)
            return {"probabilities": probabilities, "class_id": class_id,
                    "class": tf.gather(tf.constant(CLASSES), class_id)}

    toy = Toy()
    tf.saved_model.save(toy, str(path),
                        signatures={serving_pyfunc.SIGNATURE: toy.serve.get_concrete_function()})
    return str(path)
