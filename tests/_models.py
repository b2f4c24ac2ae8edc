"""Small models shared by several test modules."""
from __future__ import annotations

import keras


def depthwise_cnn_32() -> keras.Model:
    """A 32x32 CNN with a depthwise conv: about 1 ms single-thread, seconds to export."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.Conv2D(64, 1, activation="relu", name="c3")(x)
    outputs = keras.layers.Dense(10, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)
