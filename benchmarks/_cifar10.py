"""CIFAR-10 data pipeline and training recipe shared by the compression benchmark.

Data: the offline JPEG copy in ``shared/data/cifar10`` (README beside it). The
50k training images are split 45k train / 5k validation (validation scores
search trials); the 10k test images serve only the final numbers.

BatchNorm, and why it is handled here: keras.applications MobileNetV2 uses
BatchNorm momentum 0.999, i.e. moving statistics that average over the last
~1000 steps. A model trained from scratch for a few hundred steps per epoch
changes its weights faster than that, so in inference mode its moving
statistics describe a network that no longer exists and accuracy sits near
chance (measured on this data set: chance after 9 epochs at 53% training
accuracy). We therefore (1) train with momentum 0.9 (a ~10-step window) and
(2) re-estimate every BatchNorm's statistics on training batches right before
any evaluation, exactly as ``layernas.compress`` does for its trials, so all
methods are scored under the same BN rule.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable, Iterator

import keras
import numpy as np
import tensorflow as tf

from keras_layernas import reestimate_batchnorm

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cifar10" / "cifar10_jpeg.npz"
NUM_CLASSES = 10
TRAIN_SIZE, VALIDATION_SIZE = 45_000, 5_000
# A ~10-step averaging window: short enough to follow weights that change
# every step when training from scratch (the stock 0.999 lags ~1000 steps).
BN_MOMENTUM = 0.9
# Batches (of the benchmark's batch size) averaged when re-estimating BN
# statistics before an evaluation: 20 x 128 = 2560 images.
BN_BATCHES = 20


def _jpegs(blob: np.ndarray, offsets: np.ndarray, count: int) -> list[bytes]:
    return [blob[offsets[i]:offsets[i + 1]].tobytes() for i in range(count)]


def load_splits(path: Path = DATA, train_limit: int | None = None) -> dict[str, tuple[list[bytes], np.ndarray]]:
    """JPEG bytes and labels of the train / validation / test splits.

    Args:
        path: the ``cifar10_jpeg.npz`` file.
        train_limit: keep only the first ``train_limit`` of the 45k training
            images (the file is shuffled, so any prefix is class-mixed).

    Returns:
        ``{"train": (jpegs, labels), "validation": ..., "test": ...}``.

    Raises:
        FileNotFoundError: the data file is missing.
    """
    if not path.exists():
        raise FileNotFoundError(
            f"CIFAR-10 data not found. Expected the offline copy at {path} "
            "(see shared/data/cifar10/README.md). Received: a missing path."
        )
    with np.load(path) as arrays:
        train_all = _jpegs(arrays["train_jpeg"], arrays["train_offsets"], TRAIN_SIZE + VALIDATION_SIZE)
        test = _jpegs(arrays["test_jpeg"], arrays["test_offsets"], len(arrays["y_test"]))
        y_train, y_test = arrays["y_train"].astype(np.int32), arrays["y_test"].astype(np.int32)
    keep = TRAIN_SIZE if train_limit is None else min(train_limit, TRAIN_SIZE)
    return {
        "train": (train_all[:keep], y_train[:keep]),
        "validation": (train_all[TRAIN_SIZE:], y_train[TRAIN_SIZE:]),
        "test": (test, y_test),
    }


def _decode(jpeg: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.io.decode_jpeg(jpeg, channels=3), label


def _augment(size: int) -> Callable:
    """Random horizontal flip + random crop after 4-pixel padding (per 32 px), then scaling."""
    pad = max(1, size // 8)

    def augment(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.image.random_flip_left_right(image)
        image = tf.image.resize_with_crop_or_pad(image, size + 2 * pad, size + 2 * pad)
        image = tf.image.random_crop(image, (size, size, 3))
        return image, label

    return augment


def _to_model_input(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    # MobileNetV2's preprocess_input: pixels to [-1, 1]
    return tf.cast(image, tf.float32) / 127.5 - 1.0, label


def make_dataset(
    split: tuple[list[bytes], np.ndarray],
    batch_size: int,
    input_size: int,
    training: bool,
    seed: int = 0,
) -> tf.data.Dataset:
    """decode -> resize -> cache -> (shuffle, augment) -> batch -> prefetch.

    Decoding and resizing happen once (cached as uint8, 3 KB per 32x32
    image); only the cheap flip/crop runs per epoch, so the input pipeline
    stays far faster than the model on CPU.
    """
    jpegs, labels = split
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(jpegs, tf.string), labels))
    ds = ds.map(_decode, num_parallel_calls=tf.data.AUTOTUNE)
    if input_size != 32:
        ds = ds.map(lambda x, y: (tf.cast(tf.image.resize(x, (input_size, input_size)), tf.uint8), y),
                    num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.cache()
    if training:
        ds = ds.shuffle(len(jpegs), seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(_augment(input_size), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(_to_model_input, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def bn_dataset(split: tuple[list[bytes], np.ndarray], batch_size: int, input_size: int) -> tf.data.Dataset:
    """Unaugmented, shuffled-once training batches for BatchNorm re-estimation."""
    return make_dataset(split, batch_size, input_size, training=False).take(BN_BATCHES)


def mobilenet_v2(alpha: float, input_size: int, seed: int) -> keras.Model:
    """keras.applications MobileNetV2 (10 classes, logits) with BN momentum 0.9.

    The momentum is changed through the config so the model stays a plain
    keras.applications graph that surgery and export understand.
    """
    keras.utils.set_random_seed(seed)
    stock = keras.applications.MobileNetV2(
        input_shape=(input_size, input_size, 3), alpha=alpha, include_top=True,
        weights=None, classes=NUM_CLASSES, classifier_activation=None,
    )
    config = stock.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "BatchNormalization":
            layer["config"]["momentum"] = BN_MOMENTUM
    model = keras.Model.from_config(config)
    model.set_weights(stock.get_weights())
    return model


def compile_for_training(model: keras.Model, learning_rate: float, steps: int, warmup: int = 0) -> None:
    """Adam with a (warmup +) cosine decay to 0 over ``steps``; sparse CE on logits."""
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else learning_rate, decay_steps=max(1, steps - warmup),
        warmup_target=learning_rate if warmup else None, warmup_steps=warmup,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


class StepTimer(keras.callbacks.Callback):
    """Splits the time of ``fit`` into the first step (tracing) and steady steps."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.first_step_s = 0.0
        self.steady_s = 0.0
        self.steady_images = 0
        self._started = 0.0
        self._last = 0.0
        self._steps = 0

    def on_train_begin(self, logs=None):
        self._started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self._steps == 0:
            self.first_step_s = now - self._started
        else:
            self.steady_s += now - self._last
            self.steady_images += self.batch_size
        self._steps += 1
        self._last = now

    @property
    def images_per_s(self) -> float:
        return self.steady_images / self.steady_s if self.steady_s else float("nan")


def train(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    warmup_epochs: float = 0.0,
    verbose: int = 0,
    callbacks: list | None = None,
) -> StepTimer:
    """Train with the benchmark's recipe; returns the timing of the run."""
    steps_per_epoch = int(train_ds.cardinality())
    total = max(1, steps_per_epoch * epochs)
    compile_for_training(model, learning_rate, total, int(warmup_epochs * steps_per_epoch))
    timer = StepTimer(batch_size)
    model.fit(train_ds, epochs=epochs, verbose=verbose, callbacks=[timer, *(callbacks or [])])
    return timer


def evaluate(model: keras.Model, bn_ds: tf.data.Dataset, eval_ds: tf.data.Dataset) -> float:
    """Accuracy in inference mode after re-estimating BatchNorm on ``bn_ds``."""
    reestimate_batchnorm(model, bn_ds, num_batches=BN_BATCHES)
    if not model.compiled:
        compile_for_training(model, 1e-3, 1)
    return float(model.evaluate(eval_ds, verbose=0, return_dict=True)["accuracy"])


@contextlib.contextmanager
def graph_optimizer(enabled: bool) -> Iterator[None]:
    """Turn TensorFlow's graph optimizer (Grappler) off for functions traced inside.

    Per-trial models run ~40 steps; Grappler's rewrite of MobileNetV2's
    training graph costs more first-step time than its faster steps win back
    in that many steps (measured: see docs/benchmark-cifar10.md). Long
    training keeps it on.
    """
    previous = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not enabled})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": previous})


def kendall_tau(x: list[float], y: list[float]) -> float:
    """Kendall's tau-b (ties in either list handled), no SciPy needed."""
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif dx == dy:
                concordant += 1
            else:
                discordant += 1
    denominator = np.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return float((concordant - discordant) / denominator) if denominator else float("nan")
