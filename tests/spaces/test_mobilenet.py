"""The from-scratch MobileNet builder: structure, analytic MAdds, saving."""
from __future__ import annotations

import numpy as np
import pytest

from keras_layernas.profiling import count_madds
from keras_layernas.spaces import BneckSpec, MobileNetSpec, build_mobilenet, mobilenet_madds
from keras_layernas.spaces._mobilenet import se_width


def _small_spec(input_size: int = 33) -> MobileNetSpec:
    return MobileNetSpec(
        stem_filters=8,
        stem_activation="hard_swish",
        bnecks=(
            BneckSpec("b0", 3, None, 8, 1, True, "relu"),        # same width: residual
            BneckSpec("b1", 5, 24, 16, 2, False, "relu6"),       # stride 2: none
            BneckSpec("b2", 7, 40, 16, 1, True, "hard_swish"),   # residual
            BneckSpec("b3", 3, 48, 24, 1, False, "relu"),        # width changes: none
        ),
        pre_pool_convs=(32,),
        post_pool_convs=(40,),
        head_activation="hard_swish",
        num_classes=7,
        input_size=input_size,
    )


def test_residual_add_only_where_stride_is_one_and_width_is_kept():
    model = build_mobilenet(_small_spec())
    adds = sorted(layer.name for layer in model.layers if layer.name.endswith("_add"))
    assert adds == ["b0_add", "b2_add"]


def test_first_bneck_without_expansion_has_no_expand_conv():
    names = {layer.name for layer in build_mobilenet(_small_spec()).layers}
    assert "b0_expand" not in names and "b1_expand" in names
    assert {"b0_se_reduce", "b2_se_reduce"} <= names and "b1_se_reduce" not in names


@pytest.mark.parametrize("input_size", [32, 33])
def test_analytic_madds_equal_the_built_model_count(input_size):
    # An odd size checks the "same"-padding rounding of strided layers.
    spec = _small_spec(input_size)
    assert mobilenet_madds(spec) == count_madds(build_mobilenet(spec))


def test_output_is_a_probability_vector_per_class():
    model = build_mobilenet(_small_spec(32))
    probabilities = np.asarray(model(np.random.default_rng(0).random((2, 32, 32, 3))))
    assert probabilities.shape == (2, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_saved_model_loads_in_safe_mode_without_custom_objects(tmp_path):
    import keras

    model = build_mobilenet(_small_spec(32))
    path = tmp_path / "small.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    images = np.random.default_rng(1).random((1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(images)), np.asarray(model(images)), atol=1e-6)


def test_squeeze_excite_width_follows_mobilenet_v3_rounding():
    # MobileNetV3-Large's SE widths for expanded 72, 120, 480 and 672.
    assert [se_width(e) for e in (72, 120, 480, 672)] == [24, 32, 120, 168]


def test_unknown_activation_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match=r"\['swish'\].*hard_swish"):
        MobileNetSpec(8, "swish", (), (), (16,), "relu")
