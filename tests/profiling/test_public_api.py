"""The profiler as users reach it: ``import keras_layernas as layernas``."""
from __future__ import annotations

import keras
import pytest

import keras_layernas as layernas
from keras_layernas.profiling import Profile


def tiny_model() -> keras.Model:
    inputs = keras.Input((4, 4, 2))
    return keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))


def test_layernas_profile_is_callable_even_once_the_subpackage_is_imported():
    # Importing keras_layernas.profiling binds the subpackage to the attribute
    # `layernas.profile`; the documented call must still return a Profile.
    import keras_layernas.profiling  # noqa: F401

    report = layernas.profile(tiny_model())
    assert isinstance(report, Profile)
    assert report.madds == 16 * 2 * 3


def test_top_level_exports_are_the_profile_functions():
    model = tiny_model()
    assert layernas.count_madds(model) == 16 * 2 * 3
    assert layernas.count_params(model) == 2 * 3 + 3
    assert layernas.Profile is Profile


def test_unbuilt_sequential_cannot_be_counted_and_the_error_says_how_to_build():
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"model\.build\(.*Received: model of type Sequential"):
        layernas.count_madds(model)
