"""LayerNASOracle inside real KerasTuner searches that train a tiny CNN."""
from __future__ import annotations

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf
from keras_tuner.engine.trial import TrialStatus

from keras_layernas.profiling.formulas import conv_madds, dense_madds
from keras_layernas.search import LayerNAS
from keras_layernas.surgery import SearchSpace
from keras_layernas.tuner import LayerNASOracle, LayerNASTuner

OPTIONS = {"conv1": [8, 6, 4], "conv2": [8, 6, 4]}
TARGET = (20_000, 26_000)
OBJECTIVE = keras_tuner.Objective("val_accuracy", "max")
COMPILE = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
           "metrics": ["accuracy"]}


def cost(v):
    """MAdds of the two convolutions and the classifier at 8x8 resolution."""
    return (conv_madds((3, 3), 3, v["conv1"], (8, 8))
            + conv_madds((3, 3), v["conv1"], v["conv2"], (8, 8))
            + dense_madds(v["conv2"], 3))


def build_cnn(v):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(v["conv1"], 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(v["conv2"], 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def cnn_space(build=build_cnn):
    return SearchSpace.from_options(OPTIONS, cost, build)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(48, 8, 8, 3)).astype("float32")
    y = np.argmax(x.mean(axis=(1, 2)), axis=1).astype("int32")
    return x, y


def layernas_alone_archs():
    """What LayerNAS proposes here when every trial succeeds (4 archs, sorted).

    Sorted: which parent goes first depends on the trained scores.
    """
    search = LayerNAS(cnn_space().options, cnn_space().cost, target=TARGET,
                      num_buckets=3, per_bucket=1)
    archs = []
    while (candidate := search.ask()) is not None:
        archs.append(candidate.arch)
        search.tell(candidate, 0.5)
    return sorted(archs)


def make_tuner(tmp_path, space=None, **kwargs):
    kwargs = {"objective": OBJECTIVE, "target": TARGET, "num_buckets": 3, "per_bucket": 1,
              "compile_kwargs": COMPILE, "directory": str(tmp_path), "project_name": "p",
              **kwargs}
    return LayerNASTuner(space or cnn_space(), **kwargs)


def search(tuner, data, **kwargs):
    x, y = data
    tuner.search(x, y, validation_data=(x, y), epochs=1, batch_size=16, verbose=0, **kwargs)


def conv_filters(model):
    return tuple(layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


def trial_archs(oracle):
    return sorted(oracle.architecture(oracle.trials[t]) for t in oracle.start_order)


@pytest.mark.slow
def test_layernas_tuner_trains_each_proposal_and_returns_the_best_in_target(tmp_path, data, capsys):
    tuner = make_tuner(tmp_path)
    search(tuner, data)
    oracle = tuner.oracle
    assert trial_archs(oracle) == layernas_alone_archs() and oracle.search.finished
    for trial in oracle.trials.values():
        assert trial.status == TrialStatus.COMPLETED
        assert conv_filters(tuner.load_model(trial)) == oracle.architecture(trial)

    best_hp = tuner.get_best_hyperparameters()[0]
    best_arch = (best_hp.values["conv1"], best_hp.values["conv2"])
    assert TARGET[0] <= cnn_space().cost(best_arch) <= TARGET[1]
    best_trial = oracle.get_best_trials()[0]
    in_target = [t.score for t in oracle.trials.values()
                 if TARGET[0] <= cnn_space().cost(oracle.architecture(t)) <= TARGET[1]]
    assert best_trial.score == max(in_target)
    best_model = tuner.get_best_models()[0]
    assert conv_filters(best_model) == best_arch
    x, y = data
    _, accuracy = best_model.evaluate(x, y, verbose=0)
    assert accuracy == pytest.approx(best_trial.score, abs=1e-6)

    capsys.readouterr()
    tuner.results_summary(num_trials=2)
    summary = capsys.readouterr().out
    assert f"Trial {best_trial.trial_id} summary" in summary
    assert f"Score: {best_trial.score}" in summary


@pytest.mark.slow
def test_plain_keras_tuner_searches_a_users_own_build_function(tmp_path, data):
    def build(hp):
        model = build_cnn({"conv1": hp.Choice("conv1", [8, 6, 4]),
                           "conv2": hp.Choice("conv2", [8, 6, 4])})
        model.compile(**COMPILE)
        return model

    oracle = LayerNASOracle(cnn_space(build=None), objective=OBJECTIVE, target=TARGET,
                            num_buckets=3, per_bucket=1)
    tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=build, directory=str(tmp_path),
                              project_name="plain")
    search(tuner, data)
    assert trial_archs(oracle) == layernas_alone_archs()
    best = tuner.get_best_hyperparameters()[0].values
    assert TARGET[0] <= cost(best) <= TARGET[1]


@pytest.mark.slow
def test_mirrored_strategy_trains_every_trial_under_its_scope(tmp_path, data):
    strategies = []

    def compile_fn(model):
        strategies.append(type(tf.distribute.get_strategy()).__name__)
        model.compile(**COMPILE)

    tuner = make_tuner(tmp_path, compile_kwargs=compile_fn,
                       distribution_strategy=tf.distribute.MirroredStrategy(["/cpu:0"]))
    search(tuner, data)
    statuses = [t.status for t in tuner.oracle.trials.values()]
    assert statuses == [TrialStatus.COMPLETED] * len(layernas_alone_archs())
    # the first build happens at construction, outside search and its strategy
    assert strategies[1:] == ["MirroredStrategy"] * len(statuses)


@pytest.mark.slow
def test_tensorboard_callback_gets_one_log_directory_per_trial(tmp_path, data):
    tuner = make_tuner(tmp_path / "search")
    logs = tmp_path / "logs"
    search(tuner, data, callbacks=[keras.callbacks.TensorBoard(str(logs))])
    assert sorted(p.name for p in logs.iterdir()) == sorted(tuner.oracle.trials)
    for trial_id in tuner.oracle.trials:
        events = list((logs / trial_id / "execution0").rglob("events.out.tfevents.*"))
        assert len(events) >= 2  # training and validation summaries


@pytest.mark.slow
def test_trial_that_raises_fails_alone_and_the_search_finishes(tmp_path, data):
    def build(v):
        if (v["conv1"], v["conv2"]) == (6, 4):
            raise ValueError("this architecture cannot be built")
        return build_cnn(v)

    tuner = make_tuner(tmp_path, space=cnn_space(build))
    search(tuner, data)
    oracle = tuner.oracle
    by_arch = {oracle.architecture(t): t.status for t in oracle.trials.values()}
    assert by_arch.pop((6, 4)) == TrialStatus.FAILED
    assert set(by_arch.values()) == {TrialStatus.COMPLETED} and oracle.search.finished
    kept = [e["arch"] for table in oracle.bucket_table() for es in table.values() for e in es]
    assert [6, 4] not in kept
    assert {r.arch: r.score for r in oracle.search.history}[(6, 4)] is None


@pytest.mark.slow
def test_consecutive_failures_end_the_search_as_in_keras_tuner(tmp_path, data):
    def build(v):
        if (v["conv1"], v["conv2"]) != (8, 8):  # the base builds: the tuner checks it first
            raise ValueError("broken")
        return build_cnn(v)

    tuner = make_tuner(tmp_path, space=cnn_space(build), max_consecutive_failed_trials=2)
    with pytest.raises(RuntimeError, match="consecutive failures exceeded the limit of 2"):
        search(tuner, data)
    assert [t.status for t in tuner.oracle.trials.values()] == [TrialStatus.FAILED] * 2


@pytest.mark.slow
def test_objective_missing_from_the_models_metrics_stops_at_the_first_trial(tmp_path, data):
    tuner = make_tuner(tmp_path, objective=keras_tuner.Objective("val_auc", "max"))
    with pytest.raises(keras_tuner.errors.FatalValueError, match="val_auc.*val_accuracy"):
        search(tuner, data)
    assert len(tuner.oracle.trials) == 1


def test_tuner_without_hypermodel_or_compile_recipe_is_refused(tmp_path):
    with pytest.raises(ValueError, match="compile_kwargs"):
        make_tuner(tmp_path, compile_kwargs=None)


def test_space_that_cannot_build_models_fails_at_construction(tmp_path):
    with pytest.raises(NotImplementedError, match="no builder"):
        make_tuner(tmp_path, space=cnn_space(build=None))
