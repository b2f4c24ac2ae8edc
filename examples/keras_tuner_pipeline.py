"""Search a user's own CIFAR-10 CNN with LayerNASOracle inside a plain KerasTuner Tuner.

The hypermodel is ordinary KerasTuner code: ``build(hp)`` reads one
``hp.Choice`` per searchable layer. LayerNASOracle decides which widths each
trial gets, so that the final model fits a MAdds budget.

    python examples/keras_tuner_pipeline.py               # a few minutes on CPU
    python examples/keras_tuner_pipeline.py --overwrite   # start again instead of resuming

Kill it at any point and run it again: the search resumes where it stopped.
Images come from ``../shared/data/cifar10/cifar10_jpeg.npz`` (beside the
checkout) when present, else from ``tensorflow_datasets`` (which downloads).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_tuner  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_layernas as layernas  # noqa: E402
from keras_layernas.profiling.formulas import conv_madds, dense_madds  # noqa: E402

OFFLINE_CIFAR = Path(__file__).resolve().parents[1].parent / "shared/data/cifar10/cifar10_jpeg.npz"

# Searchable layers: name -> widths, the base (widest) first.
WIDTHS = {"conv1": [32, 24, 16], "conv2": [64, 48, 32], "conv3": [128, 96, 64]}
RESOLUTIONS = {"conv1": 32, "conv2": 16, "conv3": 8}  # each conv runs after a 2x pooling


def madds(widths: dict) -> int:
    """MAdds of the CNN in ``build`` for the given widths (3x3 convolutions)."""
    total, channels = 0, 3
    for name, size in RESOLUTIONS.items():
        total += conv_madds((3, 3), channels, widths[name], (size, size))
        channels = widths[name]
    return total + dense_madds(channels, 10)


class CifarHyperModel(keras_tuner.HyperModel):
    """The user's model: three conv blocks whose widths are hyperparameters."""

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Rescaling(1 / 255)(inputs)
        for name, widths in WIDTHS.items():
            x = keras.layers.Conv2D(hp.Choice(name, widths), 3, padding="same",
                                    activation="relu")(x)
            x = keras.layers.MaxPooling2D()(x) if name != "conv3" else x
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
        model.compile(optimizer=keras.optimizers.Adam(2e-3),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


def load_cifar10(train_size: int, test_size: int) -> tuple:
    """``(x_train, y_train), (x_test, y_test)`` as uint8 images and int labels."""
    if OFFLINE_CIFAR.exists():
        data = np.load(OFFLINE_CIFAR)

        def decode(split: str, count: int):
            blob, offsets = data[f"{split}_jpeg"], data[f"{split}_offsets"]
            images = [tf.io.decode_jpeg(blob[offsets[i]:offsets[i + 1]].tobytes()).numpy()
                      for i in range(count)]
            return np.stack(images), data[f"y_{split}"][:count].astype("int32")

        return decode("train", train_size), decode("test", test_size)
    import tensorflow_datasets as tfds

    def take(split: str, count: int):
        x, y = tfds.as_numpy(tfds.load("cifar10", split=f"{split}[:{count}]",
                                       as_supervised=True, batch_size=-1))
        return x, y.astype("int32")

    return take("train", train_size), take("test", test_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=0.55,
                        help="MAdds budget as a fraction of the widest model (default 0.55)")
    parser.add_argument("--max-trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=4000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--directory", default="layernas_runs")
    parser.add_argument("--overwrite", action="store_true", help="start a new search")
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = load_cifar10(args.train_size, args.test_size)
    split = int(0.8 * len(x_train))
    space = layernas.SearchSpace.from_options(WIDTHS, madds)
    base = madds({name: widths[0] for name, widths in WIDTHS.items()})
    target = (0.8 * args.budget * base, args.budget * base)
    oracle = layernas.LayerNASOracle(
        space, objective=keras_tuner.Objective("val_accuracy", "max"), target=target,
        max_trials=args.max_trials, num_buckets=5, per_bucket=1, seed=0)
    tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=CifarHyperModel(),
                              directory=args.directory, project_name="cifar10_cnn",
                              overwrite=args.overwrite)
    tuner.search(x_train[:split], y_train[:split],
                 validation_data=(x_train[split:], y_train[split:]),
                 epochs=args.epochs, batch_size=64, verbose=0)

    tuner.results_summary(num_trials=3)
    print(f"\nTarget: {target[0] / 1e6:.2f}-{target[1] / 1e6:.2f} MMAdds "
          f"(widest model: {base / 1e6:.2f} MMAdds)")
    print("Pareto front (last layer, best per cost bucket):")
    for entry in oracle.pareto_front():
        print(f"  trial {entry['trial_id']}: {entry['arch']}  "
              f"{entry['cost'] / 1e6:.2f} MMAdds  val_accuracy {entry['score']:.4f}")
    if not oracle.get_best_trials():
        # LayerNAS reaches the budget on its last searchable layer only
        print(f"\nNo trial inside the budget yet after {len(oracle.trials)} trials: "
              "run again with a larger --max-trials to continue the search.")
        return
    best_hp = tuner.get_best_hyperparameters()[0]
    best_model = tuner.get_best_models()[0]
    _, test_accuracy = best_model.evaluate(x_test, y_test, verbose=0)
    arch = {name: best_hp.values[name] for name in WIDTHS}
    print(f"\nBest in budget: {arch}, {madds(arch) / 1e6:.2f} MMAdds, "
          f"test accuracy {test_accuracy:.4f} on {len(x_test)} images, "
          f"{len(oracle.trials)} trials")


if __name__ == "__main__":
    main()
