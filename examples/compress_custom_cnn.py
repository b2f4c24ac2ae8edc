"""Compress your own functional CNN (residual blocks, BatchNorm) without any data.

keras-layernas is not tied to MobileNet: any functional or Sequential model
whose layers it understands can be slimmed. Here a small residual CNN is
compressed to half its MAdds; the residual blocks' shared width is searched
as one "block filter", every other conv gets its own width.

    python examples/compress_custom_cnn.py      # seconds on CPU
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_layernas as layernas  # noqa: E402


def residual_cnn(classes: int = 10) -> keras.Model:
    """Stem, two residual blocks sharing 64 channels, a widening conv, a head."""
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(64, 3, strides=2, padding="same", use_bias=False, name="stem")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(name="stem_bn")(x))
    for block in range(2):
        y = keras.layers.Conv2D(96, 3, padding="same", use_bias=False, name=f"b{block}_conv1")(x)
        y = keras.layers.ReLU()(keras.layers.BatchNormalization(name=f"b{block}_bn1")(y))
        y = keras.layers.Conv2D(64, 3, padding="same", use_bias=False, name=f"b{block}_conv2")(y)
        y = keras.layers.BatchNormalization(name=f"b{block}_bn2")(y)
        x = keras.layers.ReLU()(keras.layers.Add(name=f"b{block}_add")([x, y]))
    x = keras.layers.Conv2D(256, 1, use_bias=False, name="widen")(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(name="widen_bn")(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="head")(x), name="residual_cnn")


def main() -> None:
    keras.utils.set_random_seed(0)
    model = residual_cnn()
    space = layernas.SearchSpace.from_model(model)
    print(f"{layernas.count_madds(model) / 1e6:.1f} M MAdds; searchable layers:")
    for layer in space.layers:
        print(f"  {layer.name:24s} {layer.kind:13s} options {list(map(str, layer.options))}")

    result = layernas.CompressionSearch(model, target_madds=layernas.count_madds(model) / 2).run()

    x = np.random.default_rng(0).normal(size=(4, 64, 64, 3)).astype("float32")
    print("slim model runs:", result.model(x).shape, "- fine-tune it on your data next.")


if __name__ == "__main__":
    main()
