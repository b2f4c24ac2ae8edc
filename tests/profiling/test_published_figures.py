"""count_madds reproduces the published MobileNet MAdds (within 0.5%).

Reference values are the figures of issue 2, to two decimals; rounded to
millions they are the published MobileNetV2/V3 tables (docs/cost-convention.md).
Models are built once per configuration (about 0.7 s each) with ``weights=None``.
"""
from __future__ import annotations

import functools

import keras
import pytest

from keras_layernas.profiling import count_madds, count_params

TOLERANCE = 0.005
# Extra configurations cost a model build each: they run in `make test` only.
slow = pytest.mark.slow


@functools.lru_cache(maxsize=None)
def mobilenet_v2(alpha: float) -> keras.Model:
    return keras.applications.MobileNetV2(weights=None, alpha=alpha, input_shape=(224, 224, 3))


@functools.lru_cache(maxsize=None)
def mobilenet_v3(size: str, alpha: float = 1.0, minimalistic: bool = False) -> keras.Model:
    # Left at the default input (None, None, 3): count_madds(input_shape=...) fixes it.
    build = keras.applications.MobileNetV3Large if size == "large" else keras.applications.MobileNetV3Small
    return build(weights=None, alpha=alpha, minimalistic=minimalistic, include_preprocessing=True)


@pytest.mark.parametrize(
    "alpha, published_millions",
    [
        (0.35, 59.29),
        pytest.param(0.5, 97.13, marks=slow),
        pytest.param(0.75, 209.07, marks=slow),
        (1.0, 300.77),
        pytest.param(1.3, 509.37, marks=slow),
        (1.4, 582.20),
    ],
)
def test_mobilenet_v2_width_multipliers_match_published_madds(alpha, published_millions):
    madds = count_madds(mobilenet_v2(alpha))
    assert madds / 1e6 == pytest.approx(published_millions, rel=TOLERANCE)


@pytest.mark.parametrize(
    "resolution, published_millions", [(192, 221.32), (160, 154.08), (128, 99.07), (96, 56.29)]
)
def test_mobilenet_v2_resolutions_match_published_madds(resolution, published_millions):
    madds = count_madds(mobilenet_v2(1.0), input_shape=(resolution, resolution, 3))
    assert madds / 1e6 == pytest.approx(published_millions, rel=TOLERANCE)


@pytest.mark.parametrize(
    "size, alpha, minimalistic, published_millions",
    [
        ("large", 1.0, False, 216.59),
        pytest.param("large", 0.75, False, 154.56, marks=slow),
        pytest.param("large", 1.0, True, 209.14, marks=slow),
        ("small", 1.0, False, 56.51),
    ],
)
def test_mobilenet_v3_matches_published_madds(size, alpha, minimalistic, published_millions):
    model = mobilenet_v3(size, alpha, minimalistic)
    madds = count_madds(model, input_shape=(224, 224, 3))
    assert madds / 1e6 == pytest.approx(published_millions, rel=TOLERANCE)


def test_mobilenet_v3_without_input_shape_refuses_rather_than_returning_zero():
    with pytest.raises(ValueError, match="input_shape"):
        count_madds(mobilenet_v3("small"))


@pytest.mark.parametrize(
    "model_fn",
    [lambda: mobilenet_v2(0.35), lambda: mobilenet_v2(1.4), lambda: mobilenet_v3("small")],
    ids=["mobilenet_v2_0.35", "mobilenet_v2_1.4", "mobilenet_v3_small"],
)
def test_params_equal_keras_count_params(model_fn):
    model = model_fn()
    assert count_params(model) == model.count_params()
