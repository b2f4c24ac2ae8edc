"""Train a MobileNetV2 on CIFAR-10, then compress it to a MAdds budget with real data.

The realistic job: a trained model, a budget, and a little labelled data.
Step 1 trains a MobileNetV2 (alpha 0.35, 96x96 inputs) briefly from scratch
(with internet you would start from ImageNet weights instead). Step 2 calls
``layernas.CompressionSearch`` with the data: each trial slices the trained
weights, re-estimates BatchNorm statistics, fine-tunes one epoch and is scored
on validation accuracy; the winner is fine-tuned a little longer. Step 3 ships
it: an int8 TFLite file calibrated on training images scaled as in training,
checked against the Keras model on the test images.

    python examples/compress_mobilenet_cifar10.py             # about 30 min on 2 CPU cores
    python examples/compress_mobilenet_cifar10.py --quick     # a few minutes, tiny subset

Images come from ``../shared/data/cifar10/cifar10_jpeg.npz`` (beside the
checkout) when present, else from ``tensorflow_datasets`` (which downloads).
Kill it during the search and run it again: it resumes from ``--out``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_layernas as layernas  # noqa: E402

OFFLINE_CIFAR = Path(__file__).resolve().parents[1].parent / "shared/data/cifar10/cifar10_jpeg.npz"
SIZE = 96


def load_cifar10(train: int, test: int) -> tuple:
    """``((x_train, y_train), (x_test, y_test))`` as uint8 32x32 images."""
    if OFFLINE_CIFAR.exists():
        arrays = np.load(OFFLINE_CIFAR)

        def split(name: str, n: int):
            jpeg, offsets = arrays[f"{name}_jpeg"], arrays[f"{name}_offsets"]
            images = np.stack([tf.io.decode_jpeg(jpeg[offsets[i]:offsets[i + 1]].tobytes()).numpy()
                               for i in range(n)])
            return images, arrays[f"y_{name}"][:n].astype("int64")

        return split("train", train), split("test", test)
    import tensorflow_datasets as tfds

    def take(name: str, n: int):
        images, labels = tfds.as_numpy(tfds.load("cifar10", split=f"{name}[:{n}]", batch_size=-1,
                                                 as_supervised=True))
        return images, labels.astype("int64")

    return take("train", train), take("test", test)


def preprocess(images: np.ndarray) -> np.ndarray:
    """Resize to the model's input size and scale to [-1, 1] as MobileNetV2 expects."""
    resized = tf.image.resize(images.astype("float32"), (SIZE, SIZE)).numpy()
    return keras.applications.mobilenet_v2.preprocess_input(resized)


def budget(text: str) -> float | str:
    """``--target-madds``: ``"50%"`` stays a share of the base, anything else is MAdds."""
    return text if text.strip().endswith("%") else float(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny subset, 2 search trials")
    parser.add_argument("--target-madds", default="50%",
                        help="MAdds budget: a number (7e6) or a share of the model's own (50%%)")
    parser.add_argument("--out", default="compress_cifar10_out")
    parser.add_argument("--overwrite", action="store_true", help="start the search again")
    args = parser.parse_args()
    n_train, n_test, epochs, trials = (512, 256, 1, 2) if args.quick else (10000, 2000, 5, 12)

    (x_train, y_train), (x_test, y_test) = load_cifar10(n_train, n_test)
    x_train, x_test = preprocess(x_train), preprocess(x_test)

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(SIZE, SIZE, 3),
                                           classes=10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=2)
    print(f"base: {layernas.count_madds(model) / 1e6:.2f} M MAdds, test accuracy "
          f"{model.evaluate(x_test, y_test, verbose=0)[1]:.3f}")

    os.makedirs(args.out, exist_ok=True)  # the CSVLogger below writes there from the first trial
    result = layernas.CompressionSearch(
        model, budget(args.target_madds),
        data=(x_train, y_train), validation_data=(x_test, y_test),
        max_trials=trials, epochs_per_trial=1, finetune_epochs=epochs,
        directory=args.out, overwrite=args.overwrite, batch_size=64,
        exclude=["Conv1"],  # the stem: cheap (3 input channels) and every feature starts there
        callbacks=[keras.callbacks.CSVLogger(os.path.join(args.out, "fits.csv"), append=True)],
        verbose=True,
    ).run()
    result.model.save(os.path.join(args.out, "model.keras"))
    result.save_report(os.path.join(args.out, "report.json"))
    result.plot_pareto(os.path.join(args.out, "pareto.png"))

    # Calibrate on inputs scaled exactly as in training: input_range refuses raw pixels.
    int8_path = layernas.export_tflite(
        result.model, os.path.join(args.out, "model_int8.tflite"), quantize="int8",
        representative_data=x_train[:300], input_range=(-1, 1))
    check = layernas.evaluate_tflite(int8_path, x_test, y_test, keras_model=result.model)
    print(f"int8 file: {check}")
    print(f"slim model, int8 file, report and plot in {args.out}/")


if __name__ == "__main__":
    main()
