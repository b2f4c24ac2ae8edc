"""`make demo`: the main job end to end on an embedded default, offline."""
from __future__ import annotations


def main() -> None:
    import keras

    import keras_layernas as layernas

    model = keras.applications.MobileNetV2(weights=None, alpha=1.0, input_shape=(224, 224, 3))
    print(layernas.profile(model))


if __name__ == "__main__":
    main()
