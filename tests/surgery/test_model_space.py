"""Search space from a model: options, order, cost and materialize on small models."""
from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

import keras_layernas as layernas
from keras_layernas.surgery import KernelWidth, SearchSpace, default_widths, round_width
from tests.surgery._helpers import (
    concat_model,
    max_abs_diff,
    random_archs,
    random_inputs,
    residual_model,
    squeeze_excite_model,
)


def _layer(space, name):
    return next(l for l in space.layers if l.name == name)


def _with(space, **choices):
    """Base architecture with some searchable layers changed (``.`` spelled ``__``)."""
    chosen = {k.replace("__", "."): v for k, v in choices.items()}
    return tuple(chosen.get(l.name, l.options[0]) for l in space.layers)


@pytest.fixture(scope="module")
def v3_small():
    model = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None)
    return model, SearchSpace.from_model(model)


def test_layers_kinds_and_options_of_a_residual_block():
    space = SearchSpace.from_model(residual_model())
    assert [(l.name, l.kind) for l in space.layers] == [
        ("stem.block_filter", "block_filter"),
        ("expand", "kernel_expand"),
    ]
    assert _layer(space, "stem.block_filter").options == (16, 8)
    expand = _layer(space, "expand").options
    assert expand[0] == KernelWidth(5, 32)
    assert {o.kernel for o in expand} == {3, 5, 7}
    assert {o.width for o in expand} == {32, 24, 16, 8}
    assert space.base_arch == (16, KernelWidth(5, 32))
    assert set(_layer(space, "expand").members) == {"expand", "expand_bn", "depthwise", "project"}
    assert space.options == [list(l.options) for l in space.layers]


def test_default_widths_are_multiples_of_eight_never_below_eight():
    assert default_widths(1280)[:3] == [1280, 1120, 960]
    assert all(w % 8 == 0 and w >= 8 for w in default_widths(20)[1:])
    assert default_widths(20) == [20, 16, 8]
    assert round_width(0.25 * 72) == 24  # MobileNetV3's squeeze-excite width


def test_width_options_by_dict_callable_and_fractions():
    model = residual_model()
    by_dict = SearchSpace.from_model(model, width_options={"expand": [24]}, kernel_options=None)
    assert _layer(by_dict, "expand").options == (32, 24)
    by_callable = SearchSpace.from_model(model, width_options=lambda name, base: [base // 2])
    assert _layer(by_callable, "stem.block_filter").options == (16, 8)
    by_fraction = SearchSpace.from_model(model, width_options=(0.5,), kernel_options=None)
    assert _layer(by_fraction, "expand").options == (32, 16)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width_options": {"expand": [40]}}, r"integers in 1..32.*Received: \[40\]"),
        ({"width_options": (1.5,)}, r"fractions.*Received: width_options=\(1.5,\)"),
        ({"kernel_options": (3, 4)}, r"odd positive.*Received: kernel_options=\(3, 4\)"),
    ],
)
def test_bad_options_raise_naming_what_was_received(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace.from_model(residual_model(), **kwargs)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"exclude": "stem"}, TypeError, r"sequence of layer names.*use exclude=\('stem',\)"),
        ({"exclude": ("stme",)}, ValueError, r"does not have: \['stme'\]"),
        ({"width_options": {"expnad": [8]}}, ValueError, r"does not have: \['expnad'\]"),
    ],
)
def test_misspelled_layer_names_are_reported(kwargs, error, message):
    with pytest.raises(error, match=message):
        SearchSpace.from_model(residual_model(), **kwargs)


def test_exclude_keeps_a_layer_at_its_width_and_kernel():
    space = SearchSpace.from_model(residual_model(), exclude=("expand", "depthwise"))
    assert space.names == ["stem.block_filter"]


def test_nothing_left_to_search_is_an_error():
    with pytest.raises(ValueError, match="no searchable layer"):
        SearchSpace.from_model(residual_model(), exclude=("stem", "expand"), kernel_options=None)


def test_channels_first_model_is_refused_naming_data_format():
    inputs = keras.Input((3, 16, 16))
    x = keras.layers.Conv2D(16, 3, padding="same", data_format="channels_first", name="c1")(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", data_format="channels_first", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(data_format="channels_first")(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(x))
    with pytest.raises(ValueError, match=r"no searchable layer.*\['c1', 'c2', '[a-z_0-9]+'\] use "
                                         r"data_format='channels_first'.*channels_last"):
        SearchSpace.from_model(model)


def test_compound_options_encode_to_stable_strings_and_decode_back():
    space = SearchSpace.from_model(residual_model())
    arch = (8, KernelWidth(3, 16))
    encoded = space.encode(arch)
    assert encoded == {"stem.block_filter": 8, "expand": "k3_w16"}
    assert space.decode(encoded) == arch


def test_pruned_layers_keep_the_highest_l1_channels_and_readers_follow():
    model = residual_model()
    space = SearchSpace.from_model(model, kernel_options=None)
    slim = space.materialize(_with(space, expand=16))
    source = model.get_layer("expand").kernel.numpy()
    kept = np.sort(np.argsort(-np.abs(source).sum(axis=(0, 1, 2)), kind="stable")[:16])
    np.testing.assert_array_equal(slim.get_layer("expand").kernel, source[..., kept])
    variance = model.get_layer("expand_bn").moving_variance.numpy()
    np.testing.assert_array_equal(slim.get_layer("expand_bn").moving_variance, variance[kept])
    np.testing.assert_array_equal(
        slim.get_layer("depthwise").kernel, model.get_layer("depthwise").kernel.numpy()[:, :, kept]
    )
    np.testing.assert_array_equal(
        slim.get_layer("project").kernel, model.get_layer("project").kernel.numpy()[:, :, kept]
    )


def test_depthwise_kernel_shrinks_to_its_centre_and_grows_with_zeros():
    model = residual_model()
    space = SearchSpace.from_model(model)
    source = model.get_layer("depthwise").kernel.numpy()
    small = space.materialize(_with(space, expand=KernelWidth(3, 32))).get_layer("depthwise")
    np.testing.assert_array_equal(small.kernel, source[1:4, 1:4])
    large = space.materialize(_with(space, expand=KernelWidth(7, 32))).get_layer("depthwise")
    large = large.kernel.numpy()
    np.testing.assert_array_equal(large[1:6, 1:6], source)
    assert np.all(large[0] == 0) and np.all(large[:, 6] == 0)


@pytest.mark.parametrize("make", [residual_model, squeeze_excite_model, concat_model])
def test_small_models_base_equal_and_cost_equals_count_madds(make):
    model = make()
    space = SearchSpace.from_model(model)
    x = random_inputs(model)
    assert max_abs_diff(model(x), space.materialize(space.base_arch)(x)) < 1e-5
    assert space.cost(space.base_arch) == layernas.count_madds(model)
    for arch in random_archs(space, 2):
        slim = space.materialize(arch)
        assert space.cost(arch) == layernas.count_madds(slim)
        assert slim(x).shape == model(x).shape


def test_squeeze_excite_reduce_width_follows_expanded_width():
    space = SearchSpace.from_model(squeeze_excite_model(), kernel_options=None)
    assert space.names == ["expand"]  # the reduce conv is not searched on its own
    slim = space.materialize(_with(space, expand=16))
    assert slim.get_layer("se_reduce").filters == round_width(16 * 8 / 32) == 8
    assert slim.get_layer("se_expand").filters == 16


def test_v3_squeeze_excite_reduce_uses_mobilenet_rounding(v3_small):
    model, space = v3_small
    slim = space.materialize(_with(space, expanded_conv_4_expand=KernelWidth(5, 120)))
    base_ratio = 64 / 240  # keras.applications: _depth(240 * 0.25)
    reduce = slim.get_layer("expanded_conv_4_squeeze_excite_conv")
    assert reduce.filters == round_width(120 * base_ratio)
    assert slim.get_layer("expanded_conv_4_squeeze_excite_conv_1").filters == 120


def test_stride_two_kernel_change_moves_the_explicit_padding(v3_small):
    model, space = v3_small
    base = model.get_layer("expanded_conv_3_depthwise")
    arch = _with(space, expanded_conv_3_expand=KernelWidth(3, 96))
    slim = space.materialize(arch)
    pad = slim.get_layer("expanded_conv_3_depthwise_pad")
    adjust = 1 - pad.input.shape[1] % 2  # keras.applications correct_pad for kernel 3
    assert tuple(map(tuple, pad.padding)) == ((1 - adjust, 1), (1 - adjust, 1))
    assert slim.get_layer("expanded_conv_3_depthwise").output.shape == base.output.shape
    saved = (25 - 9) * 96 * base.output.shape[1] * base.output.shape[2]
    assert space.cost(space.base_arch) - space.cost(arch) == saved
    assert layernas.count_madds(slim) == space.cost(arch)


def test_block_filter_is_searched_before_the_blocks_it_couples():
    model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None)
    names = SearchSpace.from_model(model).names
    block = names.index("block_3_project.block_filter")
    order = [names.index(n) for n in ("block_2_expand", "block_3_expand", "block_4_expand")]
    assert order[0] < block < order[1] < order[2]


def test_unknown_spatial_size_needs_input_shape():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(16, 3, name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(4, 1)(x))
    expected = r"input_shape=\(height, width, channels\).*\(None, None, None, 3\)"
    with pytest.raises(ValueError, match=expected):
        SearchSpace.from_model(model)
    space = SearchSpace.from_model(model, input_shape=(12, 12, 3))
    slim = space.materialize(_with(space, conv=8))
    assert tuple(slim.inputs[0].shape) == (None, 12, 12, 3)
    by_hand = 10 * 10 * 9 * 3 * 8 + 10 * 10 * 8 * 4
    assert space.cost(_with(space, conv=8)) == layernas.count_madds(slim) == by_hand
    x = random_inputs(slim)
    assert max_abs_diff(model(x), space.materialize(space.base_arch)(x)) < 1e-5
    with pytest.raises(ValueError, match=r"3 positive integers.*Received: input_shape=\(12, 12\)"):
        SearchSpace.from_model(model, input_shape=(12, 12))


def test_unknown_layer_type_in_a_group_warns_once_and_freezes_it():
    inputs = keras.Input((4, 4, 3))
    a = keras.layers.Conv2D(16, 1, name="a")(inputs)
    odd = keras.layers.Permute((2, 1, 3), name="odd")(a)
    b = keras.layers.Conv2D(16, 1, name="b")(odd)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(b))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        space = SearchSpace.from_model(model, kernel_options=None)
    messages = [str(w.message) for w in caught if "not understood" in str(w.message)]
    assert len(messages) == 1 and "odd (Permute)" in messages[0]
    assert space.names == ["b"]


def test_per_channel_constant_freezes_the_channels_it_scales():
    inputs = keras.Input((4, 4, 3))
    a = keras.layers.Conv2D(8, 1, name="a")(inputs)
    scaled = a * np.arange(8, dtype="float32")
    x = keras.layers.Conv2D(16, 1, name="c")(scaled)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, name="b")(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        space = SearchSpace.from_model(model)
    assert space.names == ["c"]


def test_sequential_with_flatten_slices_the_dense_input_per_position():
    model = keras.Sequential(
        [keras.Input((6, 6, 3)), keras.layers.Conv2D(16, 3, name="conv"), keras.layers.Flatten(),
         keras.layers.Dense(4, name="dense")]
    )
    space = SearchSpace.from_model(model, width_options={"conv": [8]})
    slim = space.materialize((8,))
    scores = np.abs(model.get_layer("conv").kernel.numpy()).sum(axis=(0, 1, 2))
    kept = np.sort(np.argsort(-scores, kind="stable")[:8])
    source = model.get_layer("dense").kernel.numpy().reshape(16, 16, 4)
    np.testing.assert_array_equal(slim.get_layer("dense").kernel, source[:, kept].reshape(128, 4))
    assert space.cost((8,)) == layernas.count_madds(slim)


def test_space_keeps_the_weights_the_model_had_when_it_was_made():
    model = residual_model()
    space = SearchSpace.from_model(model)
    x = random_inputs(model)
    before = np.asarray(model(x))
    head = model.get_layer("head")
    head.kernel.assign(np.zeros(head.kernel.shape, "float32"))
    assert max_abs_diff(space.materialize(space.base_arch)(x), before) < 1e-5


def _around(layer: keras.layers.Layer) -> keras.Model:
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(32, 3, padding="same", name="c1")(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", name="c2")(layer(x))
    return keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x)))


def test_python_lambda_layer_is_refused_before_any_search_naming_the_fix():
    model = _around(keras.layers.Lambda(lambda t: t * 2.0, name="double"))
    with pytest.raises(ValueError, match=r"cannot be rebuilt.*\['double'\].*Replace a Lambda.*"
                                         r"enable_unsafe_deserialization"):
        SearchSpace.from_model(model)


class _Doubling(keras.layers.Layer):  # deliberately not registered
    def call(self, x):
        return x * 2.0


class _Scaling(keras.layers.Layer):  # get_config drops the constructor's argument
    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {"name": self.name}


def test_unregistered_custom_layer_is_rebuilt_with_the_slim_model():
    model = _around(_Doubling(name="double"))
    space = SearchSpace.from_model(model)
    slim = space.materialize(tuple(layer.options[-1] for layer in space.layers))
    assert isinstance(slim.get_layer("double"), _Doubling)
    assert slim.get_layer("c2").filters < 32


def test_custom_layer_that_cannot_be_rebuilt_is_refused_naming_get_config():
    with pytest.raises(ValueError, match=r"cannot be rebuilt.*\['scale'\].*get_config"):
        SearchSpace.from_model(_around(_Scaling(3.0, name="scale")))
