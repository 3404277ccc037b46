"""The seed-style plain Keras script, as a whole process: the yardstick for a re-run that only
changed `--epochs` (issue 26: at most 3x this, measured in the same `make bench` invocation).

`python -m pipeline.bench.seed_script --dataset taxi --epochs 7` reads the dataset's CSV with
pandas, prepares it as the pipeline's Transform does (pipeline/bench/baselines.py:
pandas_transformed: mean imputation, z-scores, vocabulary ids), holds out every fourth row,
fits the seed's model (Dense 64 relu, Dense 64 relu, softmax, Adam, sparse categorical
cross-entropy; Keras 3) for exactly that many epochs, scores the held-out rows and prints one line:
`rows N, epochs E, eval accuracy A`. Nothing is tracked, validated, exported or cached: what
the seed's script did. Numbers only; a regression dataset is not its job.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench.seed_script")
    parser.add_argument("--dataset", default="taxi")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    # Plain Keras as a script written today gets it (`import keras`, Keras 3), not the tf_keras
    # the pipeline needs for tf.Transform and TFMA: on tf_keras AutoGraph converts Keras' own
    # training loop first (components/train/model.py:keep_autograph_out_of_keras), ~10 s of a
    # 7-epoch fit here that the seed's script never paid.
    import keras
    import numpy as np

    from pipeline.bench.baselines import pandas_transformed
    from pipeline.config.settings import Settings

    started = time.perf_counter()
    spec = Settings(dataset=args.dataset, data_root=args.data_root).load_spec()
    frame = pandas_transformed(spec.csv_path, spec)
    frame = frame[frame[spec.label] >= 0]
    features = [c for c in frame.columns if c != spec.label]
    x = frame[features].to_numpy("float32")
    y = frame[spec.label].to_numpy("int64")
    held_out = np.arange(len(frame)) % 4 == 0
    keras.utils.set_random_seed(42)
    model = keras.Sequential([
        keras.layers.Input(shape=(len(features),)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(spec.num_classes, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x[~held_out], y[~held_out], epochs=args.epochs, batch_size=args.batch_size,
              verbose=0)
    _, accuracy = model.evaluate(x[held_out], y[held_out], verbose=0)
    print(f"rows {len(frame)}, epochs {args.epochs}, eval accuracy {accuracy:.4f} "
          f"({time.perf_counter() - started:.1f} s after imports)")
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    code = main()
    sys.stdout.flush()
    os._exit(code)  # as the CLI does: TensorFlow's interpreter teardown is not the script's work
