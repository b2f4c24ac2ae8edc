"""Per-layer MAdds of every supported layer type, against hand counts."""
from __future__ import annotations

import warnings

import keras
import pytest
from keras import layers

from keras_layernas.profiling import count_madds, profile


def single_layer_model(input_shape: tuple, layer: keras.layers.Layer) -> keras.Model:
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layer(inputs))


@pytest.mark.parametrize(
    "input_shape, layer, expected",
    [
        ((10, 6), layers.Conv1D(8, 3, strides=2), 4 * 3 * 6 * 8),
        ((10, 6), layers.Conv1D(8, 3, padding="causal", dilation_rate=2), 10 * 3 * 6 * 8),
        ((9, 9, 8), layers.Conv2D(12, 3, groups=4), 7 * 7 * 9 * 2 * 12),
        ((4, 5, 5), layers.Conv2D(3, 3, data_format="channels_first"), 3 * 3 * 9 * 4 * 3),
        ((5, 6, 7, 3), layers.Conv3D(4, 3, padding="same"), 5 * 6 * 7 * 27 * 3 * 4),
        ((10, 4), layers.DepthwiseConv1D(3, depth_multiplier=2), 8 * 3 * 4 * 2),
        ((9, 9, 4), layers.DepthwiseConv2D(3, strides=2, padding="same"), 5 * 5 * 9 * 4),
        ((9, 9, 4), layers.SeparableConv2D(6, 3, depth_multiplier=2), 49 * 9 * 8 + 49 * 8 * 6),
        ((10, 4), layers.SeparableConv1D(6, 3), 8 * 3 * 4 + 8 * 4 * 6),
        ((5, 5, 4), layers.Conv2DTranspose(6, 3, strides=2), 25 * 9 * 4 * 6),
        ((5, 5, 5, 2), layers.Conv3DTranspose(3, 2), 125 * 8 * 2 * 3),
        ((20,), layers.Dense(7), 20 * 7),
        ((7, 5), layers.Dense(3), 7 * 5 * 3),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, keras.layers.Layer) else None,
)
def test_counted_layer_costs_match_hand_formula(input_shape, layer, expected):
    assert count_madds(single_layer_model(input_shape, layer)) == expected


@pytest.mark.parametrize(
    "layer",
    [
        layers.BatchNormalization(),
        layers.LayerNormalization(),
        layers.ReLU(6.0),
        layers.Activation("hard_swish"),
        layers.MaxPooling2D(),
        layers.GlobalAveragePooling2D(),
        layers.Rescaling(1 / 255.0),
        layers.Reshape((8 * 8 * 3,)),
        layers.ZeroPadding2D(1),
        layers.Dropout(0.5),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_convention_free_layers_cost_zero(layer):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # free layers must not look unknown
        assert count_madds(single_layer_model((8, 8, 3), layer)) == 0


def test_residual_add_and_plain_ops_cost_zero():
    inputs = keras.Input((4, 4, 2))
    x = layers.Add()([inputs, inputs])
    outputs = keras.ops.multiply(x, 2.0) + inputs
    assert count_madds(keras.Model(inputs, outputs)) == 0


class Scale(keras.layers.Layer):
    """A layer with a weight that the profiler has no rule for."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.scale


def test_unknown_layer_with_weights_counts_zero_with_one_warning_and_a_mark():
    inputs = keras.Input((6, 6, 3))
    x = Scale(name="scale_a")(inputs)
    x = Scale(name="scale_b")(x)
    outputs = layers.Conv2D(2, 1)(x)
    model = keras.Model(inputs, outputs)

    with pytest.warns(UserWarning, match="Scale") as record:
        report = profile(model)

    assert len([w for w in record if "Scale" in str(w.message)]) == 1
    assert report.madds == 36 * 3 * 2
    unknown = [row.name for row in report.layers if not row.known]
    assert unknown == ["scale_a", "scale_b"]
    assert "(?)" in str(report)


def test_subclassed_conv_reuses_its_base_class_rule():
    class MyConv(layers.Conv2D):
        pass

    assert count_madds(single_layer_model((6, 6, 3), MyConv(4, 3))) == 16 * 9 * 3 * 4
