"""Walking the call graph: nesting, sharing, input sizes, errors, params."""
from __future__ import annotations

import keras
import pytest
from keras import layers

from keras_layernas.profiling import Profile, count_madds, count_params, profile

CONV_3X3_3_TO_4_AT_8X8 = 8 * 8 * 9 * 3 * 4


def conv_block(input_shape=(None, None, 3), name="block") -> keras.Model:
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    return keras.Model(inputs, layers.ReLU(name="relu")(x), name=name)


def test_shared_layer_counts_once_per_call_and_its_params_once():
    shared = layers.Dense(10, name="shared")
    inputs = keras.Input((10,))
    model = keras.Model(inputs, shared(shared(inputs)))

    report = profile(model)

    assert report.madds == 2 * 10 * 10
    assert [(row.name, row.params) for row in report.layers] == [("shared", 110), ("shared#1", 0)]
    assert report.params == model.count_params() == 110


def test_functional_wrapper_around_nested_model_counts_inner_layers():
    inner = conv_block()  # built with an unknown spatial size
    inputs = keras.Input((8, 8, 3))
    outputs = layers.Dense(2, name="head")(layers.GlobalAveragePooling2D()(inner(inputs)))
    model = keras.Model(inputs, outputs)

    report = profile(model)

    assert report.madds == CONV_3X3_3_TO_4_AT_8X8 + 4 * 2
    names = [row.name for row in report.layers]
    assert "block/conv" in names and "head" in names
    assert report.params == model.count_params()


def test_base_model_called_with_training_false_is_walked_at_the_outer_size():
    # The transfer-learning pattern: base(inputs, training=False) inside a wrapper.
    base = conv_block()
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, base(inputs, training=False))
    assert count_madds(model) == CONV_3X3_3_TO_4_AT_8X8
    assert count_madds(model, input_shape=(4, 4, 3)) == CONV_3X3_3_TO_4_AT_8X8 // 4


def test_sequential_inside_functional_is_walked():
    sequential = keras.Sequential([layers.Conv2D(4, 3, padding="same"), layers.ReLU()], name="seq")
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, sequential(inputs))
    assert count_madds(model) == CONV_3X3_3_TO_4_AT_8X8


def test_built_sequential_model_is_profiled():
    model = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(4, 3, padding="same")])
    assert count_madds(model) == CONV_3X3_3_TO_4_AT_8X8


def test_unknown_spatial_size_without_input_shape_names_the_argument():
    with pytest.raises(ValueError, match=r"input_shape=\(224, 224, 3\).*Received: input_shape=None"):
        count_madds(conv_block())


def test_input_shape_evaluates_an_unknown_size_model_at_that_size():
    model = conv_block()
    assert count_madds(model, input_shape=(8, 8, 3)) == CONV_3X3_3_TO_4_AT_8X8
    assert count_madds(model, input_shape=(16, 4, 3)) == 16 * 4 * 9 * 3 * 4


def test_input_shape_re_evaluates_a_fixed_size_model_without_changing_it():
    model = conv_block((8, 8, 3))
    assert count_madds(model, input_shape=(4, 4, 3)) == CONV_3X3_3_TO_4_AT_8X8 // 4
    assert count_madds(model) == CONV_3X3_3_TO_4_AT_8X8
    assert tuple(model.output.shape) == (None, 8, 8, 4)


@pytest.mark.parametrize(
    "bad_shape", [(8, 8), (8, 8, 3, 1), (0, 8, 3), (8.0, 8, 3), ((8, 8, 3), (8, 8, 3))]
)
def test_malformed_input_shape_is_rejected_with_what_was_received(bad_shape):
    with pytest.raises(ValueError, match=r"Received: input_shape="):
        count_madds(conv_block(), input_shape=bad_shape)


def test_input_shape_a_layer_cannot_take_names_that_layer():
    inputs = keras.Input((4, 4, 3))
    x = layers.Flatten()(inputs)
    model = keras.Model(inputs, layers.Dense(2, name="classifier")(x))
    with pytest.raises(ValueError, match="classifier"):
        count_madds(model, input_shape=(5, 5, 3))


def test_subclassed_model_is_rejected_with_a_fix():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs)

    net = Net()
    net(keras.ops.zeros((1, 3)))
    with pytest.raises(ValueError, match="functional API.*Received: model of type Net"):
        count_madds(net)


def test_unbuilt_sequential_params_error_says_how_to_build():
    with pytest.raises(ValueError, match="build"):
        count_params(keras.Sequential([layers.Dense(2)]))


def test_multi_input_model_takes_one_input_shape_per_input():
    a, b = keras.Input((None, 3)), keras.Input((None, 3))
    conv = layers.Conv1D(2, 1)
    model = keras.Model([a, b], layers.Concatenate(axis=1)([conv(a), conv(b)]))
    assert count_madds(model, input_shape=[(5, 3), (7, 3)]) == (5 + 7) * 3 * 2


def test_profile_table_and_rows_agree_with_totals():
    model = conv_block((8, 8, 3))
    report = profile(model)

    assert isinstance(report, Profile)
    rows = report.to_list()
    assert [row["name"] for row in rows] == ["conv", "bn", "relu"]
    assert rows[0] == {
        "name": "conv",
        "type": "Conv2D",
        "output_shape": (None, 8, 8, 4),
        "madds": CONV_3X3_3_TO_4_AT_8X8,
        "params": 9 * 3 * 4 + 4,
        "known": True,
    }
    assert sum(row["params"] for row in rows) == report.params == model.count_params()
    text = str(report)
    assert f"{CONV_3X3_3_TO_4_AT_8X8:,}" in text
    assert f"Total MAdds: {report.madds:,}" in text
    assert f"Total params: {report.params:,}" in text
