"""The oracle and hypermodel on a space made from a real Keras model (compound options)."""
from __future__ import annotations

import keras
import keras_tuner
import numpy as np
import pytest
from keras_tuner.engine.trial import TrialStatus

from keras_layernas.surgery import SearchSpace
from keras_layernas.tuner import LayerNASHyperModel, LayerNASOracle, LayerNASTuner


def inverted_residual_model() -> keras.Model:
    """stem -> expand -> depthwise 5x5 -> project (+ residual) -> classifier."""
    inputs = keras.Input((8, 8, 3))
    stem = keras.layers.Conv2D(16, 3, padding="same", name="stem")(inputs)
    x = keras.layers.Conv2D(32, 1, activation="relu", name="expand")(stem)
    x = keras.layers.DepthwiseConv2D(5, padding="same", name="depthwise")(x)
    x = keras.layers.Conv2D(16, 1, name="project")(x)
    x = keras.layers.Add(name="add")([stem, x])
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def model_space():
    model = inverted_residual_model()
    space = SearchSpace.from_model(model, width_options=(1.0, 0.5), kernel_options=(5, 3))
    return model, space


def target_of(space, low_fraction=0.45, high_fraction=0.7):
    base = space.cost(space.base_arch)
    return (low_fraction * base, high_fraction * base)


def make_oracle(space, tmp_path):
    oracle = LayerNASOracle(space, objective=keras_tuner.Objective("score", "max"),
                            target=target_of(space), num_buckets=4, per_bucket=1,
                            idle_wait_s=0)
    oracle._set_project_dir(str(tmp_path), "project")
    oracle.verbose = 0
    return oracle


def run(oracle, trials):
    """End ``trials`` trials (or until STOPPED) with a score from the hp values."""
    values = []
    for _ in range(trials):
        trial = oracle.create_trial("tuner0")
        if trial.status == TrialStatus.STOPPED:
            break
        values.append(dict(trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id, {"score": float(len(values) % 3)})
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
    return values


def test_compound_options_are_string_choices_that_survive_a_resume(model_space, tmp_path):
    _, space = model_space
    compound = [layer for layer in space.layers if layer.kind == "kernel_expand"]
    assert compound, "the depthwise block should search kernel and width together"
    choices = {p.name: p.values for p in make_oracle(space, tmp_path / "x").get_space().space}
    assert all(isinstance(v, str) and v.startswith("k") for v in choices[compound[0].name])

    uninterrupted = run(make_oracle(space, tmp_path / "a"), 200)
    first = run(make_oracle(space, tmp_path / "b"), 3)
    resumed = make_oracle(space, tmp_path / "b")
    resumed.reload()
    rest = run(resumed, 200)
    assert first + rest == uninterrupted
    for values in rest:  # every value is one of its Choice's values
        assert all(values[name] in choices[name] for name in choices)
        space.decode(values)


def test_hypermodel_materializes_the_base_model_with_its_trained_weights(model_space):
    model, space = model_space
    hypermodel = LayerNASHyperModel(space, {"loss": "sparse_categorical_crossentropy"})
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 3)).astype("float32")
    rebuilt = hypermodel.build(hp)
    np.testing.assert_allclose(rebuilt.predict(images, verbose=0),
                               model.predict(images, verbose=0), atol=1e-5)
    narrowest = {layer.name: layer.encode(layer.options[-1]) for layer in space.layers}
    hp.values.update(narrowest)
    assert hypermodel.build(hp).count_params() < model.count_params()


@pytest.mark.slow
def test_layernas_tuner_searches_a_model_space_end_to_end(model_space, tmp_path):
    _, space = model_space
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(32, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, size=32).astype("int32")
    tuner = LayerNASTuner(space, objective=keras_tuner.Objective("val_accuracy", "max"),
                          target=target_of(space), num_buckets=3, per_bucket=1, max_trials=6,
                          compile_kwargs={"optimizer": "sgd", "metrics": ["accuracy"],
                                          "loss": "sparse_categorical_crossentropy"},
                          directory=str(tmp_path), project_name="model")
    tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert trials and all(t.status == TrialStatus.COMPLETED for t in trials)
    for trial in trials:
        expected = space.materialize(tuner.oracle.architecture(trial))
        assert tuner.load_model(trial).count_params() == expected.count_params()
