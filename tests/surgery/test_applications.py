"""keras.applications models (and wrappers of them) through the whole surgery.

For every model: the base architecture reproduces the original outputs, random
architectures build and run with ``cost == count_madds``, the slim model saves
to ``.keras`` and loads back in safe mode, and its config records no stale
shape. Weights are random (``weights=None``) and inputs small to stay fast.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_layernas as layernas
from keras_layernas.surgery import SearchSpace
from tests.surgery._helpers import max_abs_diff, random_archs, random_inputs, stale_shapes

apps = keras.applications


def _nested_mobilenet_v2() -> keras.Model:
    backbone = apps.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None
    )
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    x = keras.layers.Dense(32, activation="relu", name="new_hidden")(x)
    return keras.Model(inputs, keras.layers.Dense(5, name="new_head")(x), name="wrapper")


def _plain_sequential() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(48, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10),
        ],
        name="plain_cnn",
    )


MODELS = {
    "mobilenet_v2_0.35": lambda: apps.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None
    ),
    "mobilenet_v3_small": lambda: apps.MobileNetV3Small(input_shape=(32, 32, 3), weights=None),
    "nested_mobilenet_v2": _nested_mobilenet_v2,
    "sequential_cnn": _plain_sequential,
    "mobilenet_v2_1.0": lambda: apps.MobileNetV2(input_shape=(64, 64, 3), alpha=1.0, weights=None),
    "mobilenet_v3_large_no_preprocessing": lambda: apps.MobileNetV3Large(
        input_shape=(32, 32, 3), include_preprocessing=False, weights=None
    ),
    "mobilenet_v3_large_minimalistic": lambda: apps.MobileNetV3Large(
        input_shape=(32, 32, 3), minimalistic=True, weights=None
    ),
    "resnet50": lambda: apps.ResNet50(input_shape=(32, 32, 3), weights=None),
}
SLOW = {  # heavy; mobilenet_v3_small's rules are also covered fast in test_model_space
    "mobilenet_v3_small",
    "mobilenet_v2_1.0",
    "mobilenet_v3_large_no_preprocessing",
    "mobilenet_v3_large_minimalistic",
    "resnet50",
}
NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in MODELS]


@pytest.fixture(scope="module", params=NAMES)
def case(request):
    """Model, space and two slim models, built once per model for all checks."""
    model = MODELS[request.param]()
    space = SearchSpace.from_model(model)
    archs = random_archs(space, 2, seed=len(request.param))
    slims = [(arch, space.materialize(arch)) for arch in archs]
    return model, space, slims


def test_base_arch_reproduces_the_original_outputs(case):
    model, space, slims = case
    x = random_inputs(model)
    rebuilt = space.materialize(space.base_arch)
    assert max_abs_diff(model(x), rebuilt(x)) < 1e-5
    assert space.cost(space.base_arch) == layernas.count_madds(model)


def test_random_archs_run_and_cost_equals_count_madds(case):
    model, space, slims = case
    x = random_inputs(model)
    costs = []
    for arch, slim in slims:
        assert space.cost(arch) == layernas.count_madds(slim)
        out = np.asarray(slim(x))
        assert out.shape == tuple(model(x).shape) and np.isfinite(out).all()
        costs.append(space.cost(arch))
    assert costs[0] < space.cost(space.base_arch)  # the narrowest arch really shrinks


def test_slim_model_loads_back_in_safe_mode_with_equal_outputs(case, tmp_path):
    model, _, slims = case
    _, slim = slims[-1]
    slim.save(tmp_path / "slim.keras")
    loaded = keras.saving.load_model(tmp_path / "slim.keras", safe_mode=True)
    x = random_inputs(model)
    assert max_abs_diff(slim(x), loaded(x)) < 1e-5


def test_slim_model_config_records_no_stale_shape(case):
    for _, slim in case[2]:
        assert stale_shapes(slim) == []
