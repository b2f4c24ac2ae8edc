"""Real CIFAR-10 images and a small CNN trained on them, for the int8 deploy tests.

Random weights make int8 look worse than it is (no decision margins) and raw
pixels against [-1, 1] look no different from noise; the deploy loop is only
tested honestly with a model that learnt something from real images.
"""
from __future__ import annotations

import functools
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

TRAIN_IMAGES, TEST_IMAGES = 3000, 500


def cifar10_pixels(shared_dir: Path, split: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` images of a split as raw uint8 RGB pixels, with labels."""
    with np.load(shared_dir / "data" / "cifar10" / "cifar10_jpeg.npz") as arrays:
        jpeg, offsets = arrays[f"{split}_jpeg"], arrays[f"{split}_offsets"]
        labels = arrays[f"y_{split}"][:count].astype(np.int64)
    images = np.stack([
        tf.io.decode_jpeg(jpeg[offsets[i]:offsets[i + 1]].tobytes()).numpy() for i in range(count)
    ])
    return images, labels


def mobilenet_scaling(pixels: np.ndarray) -> np.ndarray:
    """MobileNet's preprocessing: pixels to [-1, 1]."""
    return pixels.astype(np.float32) / 127.5 - 1.0


@functools.lru_cache(maxsize=1)
def trained_cnn(shared_dir: Path) -> keras.Model:
    """A 3-conv CNN trained 3 epochs on 3000 images scaled to [-1, 1] (about 37% test accuracy).

    Cached: test modules share one model per process (tests must not modify it).
    BatchNorm momentum 0.9 so its moving statistics keep up with 150 steps of
    training; the stock 0.99 would leave inference-mode accuracy near chance.
    """
    x, y = cifar10_pixels(shared_dir, "train", TRAIN_IMAGES)
    keras.utils.set_random_seed(0)
    layers = keras.layers
    inputs = keras.Input((32, 32, 3))
    h = inputs
    for filters, strides in ((32, 1), (64, 2), (128, 2)):
        h = layers.Conv2D(filters, 3, strides=strides, padding="same")(h)
        h = layers.BatchNormalization(momentum=0.9)(h)
        h = layers.ReLU(6.0)(h)
    model = keras.Model(inputs, layers.Dense(10)(layers.GlobalAveragePooling2D()(h)))
    model.compile(
        keras.optimizers.Adam(2e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(mobilenet_scaling(x), y, epochs=3, batch_size=64, verbose=0)
    return model
