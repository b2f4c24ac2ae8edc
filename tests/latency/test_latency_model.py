"""LatencyModel: per-op cost features, the non-negative fit, calibration and its cache."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import keras_layernas as layernas
from keras_layernas.latency import LatencyModel
from keras_layernas.latency import _model as _latency
from keras_layernas.latency._model import calibration_archs, fit_nonnegative
from keras_layernas.surgery import SearchSpace
from keras_layernas.surgery.space import SearchLayer
from tests._models import depthwise_cnn_32


def conv_then_pointwise() -> keras.Model:
    """8x8 input, a 3x3 conv of width 16 (searched: 16 or 8), a 1x1 conv to 8, a Dense(4)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(8, 1, activation="relu", name="c2")(x)
    outputs = keras.layers.Dense(4, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def tiny_space() -> SearchSpace:
    return SearchSpace.from_model(conv_then_pointwise())


@pytest.fixture(scope="module")
def cnn_space() -> SearchSpace:
    return SearchSpace.from_model(depthwise_cnn_32(), kernel_options=None)


def linear_measurements(space: SearchSpace, archs, weights: dict, intercept: float) -> list:
    """Records of a machine whose latency is exactly linear in the features."""
    return [
        {"arch": list(space.encode(a).values()), "seconds": 1.0,
         "latency_ms": intercept + sum(w * space.features(a)[n] for n, w in weights.items())}
        for a in archs
    ]


# -- features -------------------------------------------------------------------------
@pytest.mark.parametrize("width", [16, 8])
def test_features_count_madds_by_op_kind_and_elements_written(tiny_space, width):
    features = tiny_space.features((width,))
    assert features == {
        "conv_madds": 64 * 9 * 3 * width + 64 * width * 8,
        "depthwise_madds": 0,
        "dense_madds": 8 * 4,
        "activations": 64 * width + 64 * 8 + 4,  # c1, c2 and head outputs
    }


def test_madds_features_add_up_to_the_space_cost(cnn_space):
    for arch in calibration_archs(cnn_space, 8, seed=3):
        features = cnn_space.features(arch)
        assert features["depthwise_madds"] > 0
        madds = features["conv_madds"] + features["depthwise_madds"] + features["dense_madds"]
        assert madds == cnn_space.cost(arch)


def test_space_without_features_says_how_to_get_them():
    space = SearchSpace.from_options({"a": [2, 1]}, cost_fn=lambda v: v["a"])
    assert not space.has_features
    with pytest.raises(NotImplementedError, match="SearchSpace.from_model"):
        space.features((2,))


def test_with_cost_swaps_only_the_cost(tiny_space):
    doubled = tiny_space.with_cost(lambda arch: 2 * tiny_space.cost(arch))
    assert doubled.cost((8,)) == 2 * tiny_space.cost((8,))
    assert doubled.features((8,)) == tiny_space.features((8,))
    assert doubled.options == tiny_space.options
    assert doubled.materialize((8,)).get_layer("c1").filters == 8
    with pytest.raises(TypeError, match="Received: cost_fn of type int"):
        tiny_space.with_cost(3)


def test_with_layers_swaps_only_the_options(tiny_space):
    import dataclasses

    (layer,) = tiny_space.layers
    reordered = tiny_space.with_layers([dataclasses.replace(layer, options=layer.options[::-1])])
    assert reordered.options == [list(layer.options[::-1])]
    assert reordered.cost((8,)) == tiny_space.cost((8,))
    assert reordered.features((8,)) == tiny_space.features((8,))
    assert reordered.materialize((8,)).get_layer("c1").filters == 8
    with pytest.raises(ValueError, match="keeps every searchable layer"):
        tiny_space.with_layers([])


# -- the fit --------------------------------------------------------------------------
def test_nonnegative_fit_recovers_nonnegative_coefficients_exactly():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(10, 3)) * [1.0, 1e6, 1e3]
    truth = np.array([0.5, 2e-6, 0.0])
    np.testing.assert_allclose(fit_nonnegative(x, x @ truth), truth, atol=1e-12)


def test_nonnegative_fit_sets_a_would_be_negative_weight_to_zero():
    x = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 4.0]])
    weights = fit_nonnegative(x, np.array([4.0, 3.0, 1.0]))
    assert weights[1] == 0.0 and weights[0] == pytest.approx(8 / 3)


def test_nonnegative_fit_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"Received: features of shape \(3, 2\), targets of shape \(2,\)"):
        fit_nonnegative(np.ones((3, 2)), np.ones(2))


def test_fit_reproduces_a_linear_machine_and_predicts_wider_as_slower(cnn_space):
    weights = {"conv_madds": 1e-8, "depthwise_madds": 4e-8, "activations": 2e-6}
    archs = calibration_archs(cnn_space, 8)
    model = LatencyModel.fit(cnn_space, linear_measurements(cnn_space, archs, weights, 0.05))
    assert max(abs(e) for e in model.errors()) < 1e-6
    for name, weight in weights.items():
        assert model.weights[name] == pytest.approx(weight, rel=1e-6)
    assert model.intercept == pytest.approx(0.05, rel=1e-6)
    # c2's width 64 -> 32 with everything else at the base
    wide, narrow = cnn_space.base_arch, (64, 32) + cnn_space.base_arch[2:]
    assert model.predict(wide) > model.predict(narrow)


def test_fit_needs_two_measurements(cnn_space):
    with pytest.raises(ValueError, match="Received: 1; raise num_archs"):
        LatencyModel.fit(cnn_space, linear_measurements(cnn_space, [cnn_space.base_arch], {}, 1))


def test_calibration_archs_start_at_base_and_cheapest_and_are_seeded(cnn_space):
    archs = calibration_archs(cnn_space, 7, seed=5)
    assert len(set(archs)) == 7
    assert archs[0] == cnn_space.base_arch
    assert cnn_space.cost(archs[1]) == min(cnn_space.cost(a) for a in archs)
    assert archs == calibration_archs(cnn_space, 7, seed=5)
    assert archs[5:] != calibration_archs(cnn_space, 7, seed=6)[5:]


# -- calibration on real TFLite timings ------------------------------------------------
@pytest.mark.slow
def test_calibration_fit_reproduces_measured_latencies(cnn_space, tmp_path):
    model = LatencyModel.calibrate(cnn_space, num_archs=6, runs=10, repeats=3,
                                   cache=tmp_path / "c.json")
    assert len(model.measurements) == 6
    assert all(w >= 0 for w in model.weights.values()) and model.intercept >= 0
    # How close the fit comes to real timings depends on the machine's load:
    # benchmarks/latency_model.py measures that. Here: the errors are the
    # fit's own against the recorded timings, and the timings are real.
    recorded = np.array([m["latency_ms"] for m in model.measurements])
    predicted = np.array([model.predict(a) for a in calibration_archs(cnn_space, 6)])
    assert model.errors() == pytest.approx(list((predicted - recorded) / recorded))
    assert np.all(np.isfinite(recorded)) and np.all(recorded > 0)
    assert model.calibration_seconds > 0
    measured = model.measure(cnn_space.materialize(cnn_space.base_arch))
    assert np.isfinite(measured) and measured > 0


def test_cache_is_reused_so_a_second_calibration_measures_only_new_archs(
    cnn_space, tmp_path, monkeypatch
):
    measured = []

    def fake_timing(model, **settings):  # the real export + timing is the slow test above
        measured.append(settings)
        return 0.1 + layernas.count_madds(model) / 1e8

    monkeypatch.setattr(_latency, "measure_model_latency", fake_timing)
    cache = tmp_path / "latency.json"
    first = LatencyModel.calibrate(cnn_space, num_archs=3, cache=cache)
    assert len(measured) == 3
    saved = json.loads(cache.read_text())
    assert saved["settings"] == measured[0] == {"runs": 20, "warmup": 3, "num_threads": 1,
                                                 "repeats": 5}
    expected = [0.1 + cnn_space.cost(a) / 1e8 for a in calibration_archs(cnn_space, 3)]
    assert [m["latency_ms"] for m in saved["measurements"].values()] == pytest.approx(expected)

    again = LatencyModel.calibrate(cnn_space, num_archs=3, cache=cache)
    assert len(measured) == 3  # nothing measured twice
    assert again.measurements == first.measurements
    LatencyModel.calibrate(cnn_space, num_archs=4, cache=cache)
    assert len(measured) == 4


def test_a_timing_the_fit_misses_is_retaken_once_and_the_faster_kept(cnn_space, monkeypatch):
    calls = []

    def machine_busy_at_first(model, **settings):
        calls.append(model)
        ms = 0.2 + layernas.count_madds(model) / 1e8
        return 3 * ms if len(calls) == 1 else ms  # the first (base) timing ran slow

    monkeypatch.setattr(_latency, "measure_model_latency", machine_busy_at_first)
    model = LatencyModel.calibrate(cnn_space, num_archs=6)
    base = model.measurements[0]
    assert len(calls) == 6 + 1 and base["remeasured"]
    assert base["latency_ms"] == pytest.approx(0.2 + cnn_space.cost(cnn_space.base_arch) / 1e8)
    assert max(abs(e) for e in model.errors()) < 0.05


def test_cache_of_other_settings_is_refused(cnn_space, tmp_path):
    cache = tmp_path / "latency.json"
    cache.write_text(json.dumps({"format": 1, "settings": {"runs": 99}, "layers": cnn_space.names,
                                 "measurements": {}}))
    with pytest.raises(ValueError, match="other settings.*Pass another cache path"):
        LatencyModel.calibrate(cnn_space, num_archs=3, cache=cache)


def test_calibration_arguments_are_checked(cnn_space):
    with pytest.raises(ValueError, match="num_archs must be an integer >= 3. Received: num_archs=2"):
        LatencyModel.calibrate(cnn_space, num_archs=2)
    options_space = SearchSpace.from_options({"a": [2, 1]}, cost_fn=lambda v: v["a"])
    with pytest.raises(ValueError, match="has none"):
        LatencyModel.calibrate(options_space)


def test_latency_model_is_exported_at_the_top_level():
    assert layernas.LatencyModel is LatencyModel
    assert "LatencyModel" in layernas.latency.__all__


def test_predict_of_a_hand_made_model_is_the_weighted_sum():
    space = SearchSpace([SearchLayer("a", "width", (4, 2))], cost_fn=lambda arch: arch[0],
                        features_fn=lambda arch: {"conv_madds": 10 * arch[0], "activations": 1})
    model = LatencyModel(space, {"conv_madds": 0.05, "activations": 0.25}, 0.5, [], {})
    assert model.predict((4,)) == pytest.approx(0.5 + 2.0 + 0.25)
    assert model((2,)) == pytest.approx(0.5 + 1.0 + 0.25)
