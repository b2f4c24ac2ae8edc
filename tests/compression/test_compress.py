"""layernas.compress / CompressionSearch end to end, and the pieces it is made of."""
from __future__ import annotations

import contextlib
import json
import math
import re
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_layernas as layernas
from keras_layernas.compression import _drivers
from keras_layernas.compression._completion import complete_to_target
from keras_layernas.surgery import RetainedImportance
from keras_layernas.surgery.space import encode_option
from keras_layernas.compression._training import Trainer, reestimate_batchnorm
from keras_layernas.latency import _model as _latency
from keras_layernas.compression._compress import CompressionSearch, shrink_only
from keras_layernas.surgery import SearchSpace
from tests._models import depthwise_cnn_32


@contextlib.contextmanager
def scoring_interrupted_at(monkeypatch, call: int):
    """Inside the block, the ``call``-th data-free scoring raises KeyboardInterrupt (a killed
    search); the block must end that way, and scoring is real again after it."""
    real_call = RetainedImportance.__call__
    calls = {"n": 0}

    def interrupted(self, arch):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return real_call(self, arch)

    monkeypatch.setattr(RetainedImportance, "__call__", interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(RetainedImportance, "__call__", real_call)


# -- models and data --------------------------------------------------------------
def small_cnn(seed: int = 0) -> keras.Model:
    """Two 32-wide convs with BatchNorm at 16x16: a space searched in a second."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(32, 3, padding="same", name="c1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", name="c2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="head")(
        keras.layers.GlobalAveragePooling2D()(x)
    )
    return keras.Model(inputs, outputs, name="small_cnn")


def mobilenet_v2_035() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV2(
        weights=None, alpha=0.35, input_shape=(96, 96, 3), classes=10
    )


@pytest.fixture(scope="module")
def mobilenet():
    return mobilenet_v2_035()


def toy_data(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is the brightest quarter: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16, 16, 3)).astype("float32")
    y = rng.integers(0, 4, size=n)
    for i, label in enumerate(y):
        row, col = divmod(int(label), 2)
        x[i, row * 8:(row + 1) * 8, col * 8:(col + 1) * 8] += 2.0
    return x, y


def cifar10_subset(shared_dir, split: str, n: int, size: int = 96):
    """The first ``n`` real CIFAR-10 images of a split, resized, in [-1, 1]."""
    arrays = np.load(shared_dir / "data" / "cifar10" / "cifar10_jpeg.npz")
    jpeg, offsets = arrays[f"{split}_jpeg"], arrays[f"{split}_offsets"]
    images = np.stack([
        tf.io.decode_jpeg(jpeg[offsets[i]:offsets[i + 1]].tobytes()).numpy() for i in range(n)
    ])
    x = tf.image.resize(images.astype("float32"), (size, size)).numpy() / 127.5 - 1.0
    return x, arrays[f"y_{split}"][:n].astype("int64")


def outputs_of(model: keras.Model, shape=(96, 96, 3), seed: int = 1) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(-1, 1, size=(2, *shape)).astype("float32")
    return np.asarray(model(x, training=False))


# -- data-free compression --------------------------------------------------------
@pytest.mark.parametrize("target", [4e6, 6e6, 8e6])
def test_compressed_mobilenet_lands_in_target_range_with_counted_madds(mobilenet, target):
    result = CompressionSearch(mobilenet, target, max_trials=300, verbose=0).run()
    counted = layernas.count_madds(result.model)
    assert 0.95 * target <= counted <= target
    assert counted == result.madds
    assert result.base_madds == layernas.count_madds(mobilenet)
    assert result.params < result.base_params
    assert outputs_of(result.model).shape == (2, 10)


@pytest.mark.slow
def test_default_data_free_search_runs_to_the_end_and_returns_at_least_its_best(mobilenet):
    result = CompressionSearch(mobilenet, 6e6, verbose=0).run()
    searched = [h for h in result.history if h["score"] is not None
                and result.target[0] <= h["madds"] <= result.target[1]]
    assert searched, "the complete search must reach in-target candidates"
    assert result.score >= max(h["score"] for h in searched) - 1e-12
    assert result.trials == len(result.history) > 300
    assert 0 < result.score < 1 == result.base_score


def test_tiny_budget_is_completed_to_the_target_and_flagged(mobilenet):
    result = CompressionSearch(mobilenet, 5e6, max_trials=5, verbose=0).run()
    assert result.trials == 5
    assert result.completed
    assert all(h["madds"] > 5e6 for h in result.history)  # nothing in target was tried
    assert 0.95 * 5e6 <= layernas.count_madds(result.model) <= 5e6


def test_compress_returns_the_model_of_the_search(mobilenet):
    slim = layernas.compress(mobilenet, 6e6, max_trials=50, verbose=0)
    result = CompressionSearch(mobilenet, 6e6, max_trials=50, verbose=0).run()
    np.testing.assert_allclose(outputs_of(slim), outputs_of(result.model), atol=1e-6)


def test_saved_slim_model_reloads_with_identical_outputs(mobilenet, tmp_path):
    slim = layernas.compress(mobilenet, 6e6, max_trials=100, verbose=0)
    path = tmp_path / "slim.keras"
    slim.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(outputs_of(reloaded), outputs_of(slim))


# -- the report ---------------------------------------------------------------------
def test_report_json_plot_and_summary_describe_the_chosen_model(mobilenet, tmp_path, capsys):
    result = CompressionSearch(mobilenet, 6e6, max_trials=200, verbose=1).run()
    printed = capsys.readouterr().out
    assert "block_16_project" in printed and "MAdds:" in printed
    result.save_report(tmp_path / "report.json")
    result.plot_pareto(tmp_path / "pareto.png")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["madds"] == result.madds and report["trials"] == 200
    assert [row["layer"] for row in report["layers"]] == [l.name for l in shrink_only(
        SearchSpace.from_model(mobilenet)).layers]
    assert sum(row["madds_share"] for row in report["layers"]) <= 1 + 1e-9
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_json_stays_small_and_the_history_is_written_beside_it(mobilenet, tmp_path):
    result = CompressionSearch(mobilenet, 6e6, max_trials=2000, verbose=0).run()
    result.save_report(tmp_path / "report.json")
    report = json.loads((tmp_path / "report.json").read_text())
    assert "history" not in report and report["history_trials"] == len(result.history) >= 2000
    assert report["history_file"] == "report.history.jsonl.gz"
    assert report["pareto_front"] == json.loads(json.dumps(result.pareto_front))
    # the report's size does not grow with the trials: the history holds them
    assert (tmp_path / "report.json").stat().st_size < 60_000
    read = layernas.CompressionResult.read_report(tmp_path / "report.json")
    assert read["history"] == json.loads(json.dumps(result.history))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.history.jsonl.gz", "report.json"]


def test_verbose_zero_prints_nothing(capsys):
    CompressionSearch(small_cnn(), 1e6, verbose=0).run()
    assert capsys.readouterr().out == ""


# -- errors ----------------------------------------------------------------------------
def test_target_above_base_warns_and_returns_an_equal_copy():
    model = small_cnn()
    base = layernas.count_madds(model)
    with pytest.warns(UserWarning, match="already has"):
        copy = layernas.compress(model, base * 2, verbose=0)
    assert copy is not model
    x = np.ones((1, 16, 16, 3), "float32")
    np.testing.assert_allclose(copy(x), model(x), atol=1e-6)


def test_a_data_free_result_says_it_must_be_recalibrated_and_fine_tuned_and_one_with_data_does_not():
    with pytest.warns(UserWarning, match=r"untrained.*reestimate_batchnorm.*data="):
        layernas.compress(small_cnn(), 1e6, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layernas.compress(small_cnn(), 1e6, data=toy_data(), max_trials=1, finetune_epochs=0, verbose=0)
        layernas.compress(small_cnn(), 1e9, verbose=0)  # the unchanged copy is the trained base
    assert not [w for w in caught if "untrained" in str(w.message)]


def test_target_below_the_smallest_reachable_model_names_the_minimum():
    with pytest.raises(ValueError, match=r"smallest model .* can reach: \d"):
        layernas.compress(small_cnn(), 1_000, verbose=0)


def test_subclassed_model_is_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.ones((1, 4), "float32"))
    with pytest.raises(TypeError, match="functional or Sequential"):
        layernas.compress(net, 1e6, verbose=0)


def test_data_without_labels_is_refused():
    x, _ = toy_data()
    with pytest.raises(ValueError, match="must carry labels"):
        CompressionSearch(small_cnn(), 1e6, data=x, verbose=0).run()
    with pytest.raises(ValueError, match="must carry labels"):
        CompressionSearch(small_cnn(), 1e6, data=tf.data.Dataset.from_tensor_slices(x),
                          validation_data=toy_data(), verbose=0).run()


def test_objective_missing_from_the_metrics_is_refused():
    with pytest.raises(ValueError, match="val_auc.*not among the metrics"):
        CompressionSearch(small_cnn(), 1e6, data=toy_data(), objective="val_auc",
                          max_trials=1, verbose=0).run()


@pytest.mark.parametrize("kwargs, match", [
    ({"tolerance": 0}, "tolerance"),
    ({"tolerance": 1.5}, "tolerance"),
    ({"verbose": 3}, "verbose"),
    ({"max_trials": 0}, "max_trials"),
    ({"validation_data": toy_data()}, "validation_data"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": -1}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size"),
])
def test_bad_arguments_are_named_in_the_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CompressionSearch(small_cnn(), 1e6, **kwargs)


def test_labels_outside_the_model_classes_are_refused_before_any_training(monkeypatch):
    x, y = toy_data()
    y[5] = 7  # small_cnn has 4 classes

    def no_training(*args):
        raise AssertionError("trained before checking the labels")

    monkeypatch.setattr(Trainer, "fine_tune", no_training)
    with pytest.raises(ValueError, match=r"label 7, but the model's output has 4 classes"):
        CompressionSearch(small_cnn(), 1e6, data=(x, y), max_trials=1, verbose=0).run()


def test_space_of_another_model_is_refused():
    def cnn(size: int, width: int = 32) -> keras.Model:
        inputs = keras.Input((size, size, 3))
        x = keras.layers.Conv2D(width, 3, padding="same", name="c1")(inputs)
        x = keras.layers.Conv2D(32, 3, padding="same", name="c2")(x)
        return keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x)))

    model = cnn(16)
    for other in (cnn(32), cnn(16, width=48)):  # another input size, another layer width
        with pytest.raises(ValueError, match="`space` does not describe this model"):
            CompressionSearch(model, 1e6, space=SearchSpace.from_model(other), verbose=0)
    own = SearchSpace.from_model(model, width_options=[1.0, 0.5])
    result = CompressionSearch(model, 1.2e6, space=own, tolerance=0.5, verbose=0).run()
    assert 0.6e6 <= layernas.count_madds(result.model) <= 1.2e6


# -- resume ------------------------------------------------------------------------
def test_interrupted_data_free_search_resumes_where_it_stopped(mobilenet, tmp_path, monkeypatch):
    kwargs = dict(max_trials=60, verbose=0)
    reference = CompressionSearch(mobilenet, 6e6, **kwargs).run()
    monkeypatch.setattr(_drivers, "SAVE_EVERY_S", 0.0)  # save after every trial
    with scoring_interrupted_at(monkeypatch, 30):
        CompressionSearch(mobilenet, 6e6, directory=tmp_path, **kwargs).run()
    state = json.loads((tmp_path / "compress" / _drivers.STATE_FILE).read_text())
    assert len(json.loads(state["search"])["told"]) == 29
    resumed = CompressionSearch(mobilenet, 6e6, directory=tmp_path, **kwargs).run()
    assert resumed.arch == reference.arch
    assert resumed.history == reference.history
    fresh = CompressionSearch(mobilenet, 6e6, directory=tmp_path, overwrite=True, **kwargs).run()
    assert fresh.history == reference.history


def test_resume_refuses_a_directory_searched_with_another_target(tmp_path):
    CompressionSearch(small_cnn(), 1e6, directory=tmp_path, max_trials=5, verbose=0).run()
    with pytest.raises(ValueError, match="different space or settings"):
        CompressionSearch(small_cnn(), 0.9e6, directory=tmp_path, max_trials=5, verbose=0).run()


def test_a_search_resumed_with_more_max_trials_continues_where_the_shorter_one_ended(mobilenet, tmp_path):
    short = CompressionSearch(mobilenet, 6e6, directory=tmp_path, max_trials=20, verbose=0).run()
    resumed = CompressionSearch(mobilenet, 6e6, directory=tmp_path, max_trials=45, verbose=0).run()
    longer = CompressionSearch(mobilenet, 6e6, max_trials=45, verbose=0).run()
    assert (short.trials, resumed.trials) == (20, 45)
    assert resumed.history == longer.history


# -- with data -------------------------------------------------------------------------
@pytest.mark.slow
def test_search_with_data_fine_tunes_scores_and_resumes_through_the_tuner(tmp_path, monkeypatch, capsys):
    model = small_cnn()
    data, validation = toy_data(128, seed=0), toy_data(64, seed=1)
    real_fine_tune = Trainer.fine_tune
    trained = []
    interrupt = [True]

    def counting(self, candidate, epochs):
        trained.append(epochs)
        if len(trained) == 3 and interrupt and interrupt.pop():
            raise KeyboardInterrupt  # killed during the third trial
        return real_fine_tune(self, candidate, epochs)

    monkeypatch.setattr(Trainer, "fine_tune", counting)
    # start="base" (the paper's fill): 4 trials stay above the target, so completions decide
    kwargs = dict(data=data, validation_data=validation, max_trials=4, epochs_per_trial=1,
                  finetune_epochs=2, directory=tmp_path, verbose=0, start="base")
    with pytest.raises(KeyboardInterrupt):
        CompressionSearch(model, 1e6, **kwargs).run()
    trained.clear()
    capsys.readouterr()
    result = CompressionSearch(model, 1e6, **{**kwargs, "verbose": 2}).run()
    out = capsys.readouterr().out
    assert "Resuming after 2 trials" in out and "trial 3:" in out and "trial 1:" not in out
    # trials 3 and 4 are trained on resume (1 and 2 are not), then each greedy
    # completion like a trial, then the winner
    completions = [h for h in result.history if h["layer"] == "completion"]
    assert completions and trained == [1, 1] + [1] * len(completions) + [2]
    assert result.trials == 4 and result.score_name == "val_accuracy"
    assert all(0 <= h["score"] <= 1 for h in result.history)
    low, high = result.target
    in_target = [h for h in result.history if low <= h["madds"] <= high]
    best = max(in_target, key=lambda h: h["score"])  # first of equal scores: searched first
    assert {k: encode_option(v) for k, v in result.arch.items()} == best["arch"]
    assert 0.95e6 <= layernas.count_madds(result.model) <= 1e6
    accuracy = np.mean(np.argmax(result.model.predict(validation[0], verbose=0), -1) == validation[1])
    assert math.isclose(accuracy, result.score, abs_tol=1e-6)  # the score is inference-mode


@pytest.mark.slow
def test_mobilenet_on_real_cifar10_subset_hits_target_and_reports_inference_accuracy(shared_dir):
    x, y = cifar10_subset(shared_dir, "train", 256)
    x_val, y_val = cifar10_subset(shared_dir, "test", 128)
    model = mobilenet_v2_035()
    result = CompressionSearch(model, 7e6, data=(x, y), validation_data=(x_val, y_val),
                               max_trials=2, epochs_per_trial=1, per_bucket=1, verbose=0).run()
    assert 0.95 * 7e6 <= layernas.count_madds(result.model) <= 7e6
    # two trials cannot reach the last layer, but the default greedy fill trains in-target models
    assert result.trials == 2 and not result.completed
    assert all(0.95 * 7e6 <= h["madds"] <= 7e6 for h in result.history)
    predictions = np.argmax(result.model.predict(x_val, verbose=0), -1)
    assert math.isclose(np.mean(predictions == y_val), result.score, abs_tol=1e-6)


# -- pieces --------------------------------------------------------------------------
def test_batchnorm_statistics_become_the_mean_of_batch_statistics():
    inputs = keras.Input((3,))
    outputs = keras.layers.BatchNormalization(momentum=0.99)(inputs)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=i, size=(8, 3)).astype("float32") for i in range(4)]
    data = tf.data.Dataset.from_tensor_slices(
        (np.concatenate(batches), np.zeros(32))).batch(8)
    assert reestimate_batchnorm(model, data, num_batches=4) == 4
    bn = model.layers[-1]
    np.testing.assert_allclose(bn.moving_mean, np.mean([b.mean(0) for b in batches], 0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance, np.mean([b.var(0) for b in batches], 0), rtol=1e-4)
    assert bn.momentum == 0.99
    # unlabelled images, as a dataset of batches or as one array, give the same statistics
    for unlabelled in (tf.data.Dataset.from_tensor_slices(np.concatenate(batches)).batch(8),
                       np.concatenate(batches)):
        bn.moving_mean.assign(np.zeros(3))
        assert reestimate_batchnorm(model, unlabelled, num_batches=4) >= 1
        np.testing.assert_allclose(bn.moving_mean, np.concatenate(batches).mean(0), rtol=1e-4)
    with pytest.raises(TypeError, match="received list.*np.asarray"):
        reestimate_batchnorm(model, [list(b[0]) for b in batches])


def test_retained_importance_is_the_kept_share_of_l1_mass():
    model = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Conv2D(4, 1, name="conv"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    kernel = np.zeros((1, 1, 2, 4), "float32")
    kernel[0, 0, 0] = [4.0, 3.0, 2.0, 1.0]  # channel L1 norms 4, 3, 2, 1
    model.get_layer("conv").set_weights([kernel, np.zeros(4, "float32")])
    space = SearchSpace.from_model(model, width_options={"conv": [4, 2, 1]})
    score = RetainedImportance(space, model)
    assert score((4,)) == 1.0
    assert math.isclose(score((2,)), 7 / 10)
    assert math.isclose(score((1,)), 4 / 10)


def test_layers_weighting_counts_a_shared_width_once_per_kernel_it_slices():
    # c1 and c2 write one residual stream that c2 and c3 read: its width slices
    # three kernels; c3's width slices two (c3, head).
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x1 = keras.layers.Conv2D(16, 1, name="c1")(inputs)
    x = keras.layers.Add()([x1, keras.layers.Conv2D(16, 1, name="c2")(x1)])
    x = keras.layers.Conv2D(16, 1, name="c3")(x)
    outputs = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    space = SearchSpace.from_model(model, width_options=[1.0, 0.5])
    equal = RetainedImportance(space, model)
    layers = RetainedImportance(space, model, weighting="layers")
    sliced = {layer.name: len({m for m in layer.members if m.startswith(("c", "head"))})
              for layer in space.layers}
    assert sorted(sliced.values()) == [2, 3]
    mean = sum(sliced.values()) / len(sliced)
    for index, layer in enumerate(space.layers):
        assert math.isclose(layers.log_term(index, 8),
                            sliced[layer.name] / mean * equal.log_term(index, 8))
    assert layers(space.base_arch) == 1.0
    with pytest.raises(ValueError, match="weighting must be one of"):
        RetainedImportance(space, model, weighting="params")


def test_greedy_completion_cuts_the_layer_losing_least_importance_per_madd():
    space = SearchSpace.from_options({"a": [8, 4], "b": [8, 4], "c": [8, 4]},
                                     cost_fn=lambda v: v["a"] * 10 + v["b"] * 10 + v["c"])
    loss = {0: -1.0, 1: -0.5, 2: -0.01}  # importance lost when a layer is halved
    log_term = lambda layer, option: 0.0 if option == 8 else loss[layer]
    # 168 -> target [120, 130]: halving b (-40 MAdds, -0.5) lands inside.
    assert complete_to_target(space, (8, 8, 8), log_term, (120, 130)) == (8, 4, 8)
    # -> [80, 90]: nothing lands at once; c then b lose least per MAdd saved, then a lands.
    assert complete_to_target(space, (8, 8, 8), log_term, (80, 90)) == (4, 4, 4)
    # a range narrower than any reachable step cannot be met
    assert complete_to_target(space, (8, 8, 8), log_term, (150, 151)) is None


# -- budgets as users think of them -----------------------------------------------------
def test_a_percentage_target_is_that_share_of_the_base_madds():
    model = small_cnn()
    base = layernas.count_madds(model)
    result = CompressionSearch(model, "40%", verbose=0).run()
    assert result.target == pytest.approx((0.95 * 0.4 * base, 0.4 * base))
    assert 0.95 * 0.4 * base <= layernas.count_madds(result.model) <= 0.4 * base


@pytest.mark.parametrize("text", ["150%", "abc", "0%", "100%", "50", "-5%", "%"])
def test_a_malformed_percentage_target_is_refused_naming_the_fix(text):
    with pytest.raises(ValueError, match=re.escape(f"target_madds={text!r}")) as error:
        CompressionSearch(small_cnn(), text)
    assert "target_madds='50%'" in str(error.value)


def test_excluded_layers_keep_their_width_and_the_rest_still_reaches_the_target():
    model = small_cnn()
    base = layernas.count_madds(model)
    free = CompressionSearch(model, "80%", tolerance=0.1, verbose=0).run().model
    assert free.get_layer("c1").filters < 32  # the search does cut c1 when allowed
    slim = CompressionSearch(model, "80%", tolerance=0.1, exclude=["c1"], verbose=0).run().model
    assert slim.get_layer("c1").filters == 32
    assert 0.9 * 0.8 * base <= layernas.count_madds(slim) <= 0.8 * base


def test_exclude_and_a_space_of_ones_own_are_refused_together():
    model = small_cnn()
    with pytest.raises(ValueError, match="exclude=.*or space=.*not both"):
        CompressionSearch(model, 1e6, space=SearchSpace.from_model(model), exclude=["c1"])


def test_verbose_true_means_a_progress_bar(capsys):
    search = CompressionSearch(small_cnn(), 1e6, verbose=True)
    assert search.config.verbose == 1
    search.run()
    assert "MAdds:" in capsys.readouterr().out


def test_callbacks_see_every_trial_and_the_final_fine_tuning():
    class CountFits(keras.callbacks.Callback):
        fits = 0

        def on_train_begin(self, logs=None):
            CountFits.fits += 1

    result = CompressionSearch(small_cnn(), 1e6, data=toy_data(), max_trials=2, finetune_epochs=1,
                               callbacks=[CountFits()], verbose=0).run()
    # one fit per trial (searched and completion ones), one for the winner
    assert CountFits.fits == len(result.history) + 1 >= 3


def test_callbacks_that_are_not_keras_callbacks_are_refused():
    with pytest.raises(ValueError, match="callbacks must be a list of keras.callbacks.Callback"):
        CompressionSearch(small_cnn(), 1e6, callbacks=["CSVLogger"])


def test_target_is_reached_with_one_trial_where_every_greedy_walk_steps_over_it(capsys):
    # Two 3x3 convs around a depthwise one at 8x8: at half the MAdds two
    # architectures lie in the 5% range, and the greedy walk from the base
    # (what max_trials=1 has to start from) steps over it.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = inputs
    for index, width in enumerate([32, 24, 32]):
        x = keras.layers.ReLU()(keras.layers.BatchNormalization()(
            keras.layers.Conv2D(width, 3, padding="same", name=f"c{index}")(x)))
        if index == 0:
            x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(x)))
    target = 0.5 * layernas.count_madds(model)
    space = shrink_only(SearchSpace.from_model(model))
    keep = RetainedImportance(SearchSpace.from_model(model), model).log_term
    assert complete_to_target(space, space.base_arch, keep, (0.95 * target, target)) is None
    result = CompressionSearch(model, target, max_trials=1, verbose=1).run()
    assert 0.95 * target <= layernas.count_madds(result.model) <= target
    assert result.completed and result.trials == 1
    # the complete search standing in for the walks says so, and counts its trials
    printed = capsys.readouterr().out
    assert "Completing to the target: no greedy walk" in printed
    assert re.search(r"\r[1-9]\d* trials - best_retained_importance",
                     printed.split("Completing to the target")[1])


def test_retained_importance_ranks_a_group_by_its_producers_not_its_readers():
    # c1 and c2 are both 32 wide, so c2 (which reads c1's channels) has a kernel
    # of the same output width: only c1's own kernel may rank c1's channels.
    model = small_cnn()
    c1 = np.zeros((3, 3, 3, 32), "float32")
    c1[..., :8] = 1.0  # c1's first 8 channels carry all its weight
    model.get_layer("c1").set_weights([c1, np.zeros(32, "float32")])
    c2 = np.ones((3, 3, 32, 32), "float32")
    c2[..., 8:] = 5.0  # a reader ranking would prefer c2's last channels
    model.get_layer("c2").set_weights([c2, np.zeros(32, "float32")])
    space = SearchSpace.from_model(model, width_options={"c1": [32, 8], "c2": [32, 8]})
    score = RetainedImportance(space, model)
    assert score.log_term(0, 8) == 0.0  # keeping c1's 8 heavy channels keeps everything
    assert math.isclose(score.log_term(1, 8), math.log(8 * 5 / (8 + 24 * 5)))  # 8 heavy of c2
    slim = space.materialize((8, 32))
    np.testing.assert_array_equal(slim.get_layer("c1").get_weights()[0], c1[..., :8])


def test_summary_rows_partition_the_slim_madds(mobilenet):
    result = CompressionSearch(mobilenet, 6e6, max_trials=100, verbose=0).run()
    shares = [row["madds_share"] for row in result.layers]
    assert 0.5 < sum(shares) <= 1.0
    assert sum(row["madds"] for row in result.layers) <= result.madds


def test_model_of_unknown_input_size_is_compressed_at_the_given_input_shape():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="c2")(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x)))
    with pytest.raises(ValueError, match="input_shape"):
        CompressionSearch(model, 1e6, verbose=0)
    result = CompressionSearch(model, 1e6, input_shape=(16, 16, 3), verbose=0).run()
    assert 0.95e6 <= layernas.count_madds(result.model) <= 1e6
    assert result.base_madds == layernas.count_madds(model, input_shape=(16, 16, 3))
    assert [row["layer"] for row in result.layers] == ["c1", "c2"]


@pytest.mark.slow
def test_data_free_search_killed_with_sigkill_resumes_to_the_same_result(mobilenet, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = (
        "import keras, keras_layernas as layernas\n"
        "keras.utils.set_random_seed(0)\n"
        "model = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3),"
        " classes=10)\n"
        f"layernas.CompressionSearch(model, 6e6, directory={str(tmp_path)!r}, verbose=0).run()\n"
    )
    state = tmp_path / "compress" / _drivers.STATE_FILE
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.monotonic() + 300
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert state.exists(), "the search saved no state before it was killed"
    saved = len(json.loads(json.loads(state.read_text())["search"])["told"])

    resumed = CompressionSearch(mobilenet, 6e6, directory=tmp_path, verbose=0).run()
    reference = CompressionSearch(mobilenet, 6e6, verbose=0).run()
    assert 0 < saved < reference.trials
    assert resumed.arch == reference.arch
    assert resumed.history == reference.history


# -- latency as the cost ---------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({}, "Give exactly one target"),
    ({"target_madds": 1e6, "target_latency_ms": 1.0}, "Give exactly one target"),
    ({"target_madds": 1e6, "cost": "latency"}, "Pass target_latency_ms=... instead, or cost='madds'"),
    ({"target_latency_ms": 1.0, "cost": "madds"}, "Pass target_madds=... instead, or cost='latency'"),
    ({"target_latency_ms": 1.0, "cost": "flops"}, "Received: cost='flops'"),
    ({"target_latency_ms": 0}, "Received: target_latency_ms=0"),
    ({"target_latency_ms": 1.0, "calibration_archs": 2}, "Received: calibration_archs=2"),
])
def test_target_and_cost_must_agree_and_the_error_names_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        CompressionSearch(small_cnn(), **kwargs)


def test_latency_search_lands_its_prediction_in_target_and_a_resume_measures_nothing_new(
    tmp_path, monkeypatch
):
    timed = []

    def madds_proportional_timing(model, **settings):  # a fake, exactly linear machine
        timed.append(settings)
        return 0.05 + layernas.count_madds(model) / 1e8

    monkeypatch.setattr(_latency, "measure_model_latency", madds_proportional_timing)
    model = depthwise_cnn_32()
    base_ms = 0.05 + layernas.count_madds(model) / 1e8
    search = dict(target_latency_ms=0.6 * base_ms, calibration_archs=4, directory=tmp_path,
                  verbose=0)
    result = CompressionSearch(model, **search).run()
    low, high = result.target
    assert (low, high) == pytest.approx((0.95 * 0.6 * base_ms, 0.6 * base_ms))
    assert low <= result.latency["predicted_ms"] <= high
    # 4 archs cannot pin 5 coefficients exactly, but the machine is linear: close.
    assert result.latency["measured_ms"] == pytest.approx(result.latency["predicted_ms"], rel=0.05)
    assert result.latency["base_measured_ms"] == pytest.approx(base_ms)
    assert result.cost == "latency" and result.latency["calibration_archs"] == 4
    assert len(timed) == 4 + 1  # the calibration, then the chosen model
    assert result.madds == layernas.count_madds(result.model)
    assert {"madds", "latency_ms"} <= set(result.history[0])

    resumed = CompressionSearch(model, **search).run()
    assert len(timed) == 4 + 1 + 1  # only the chosen model is measured again
    assert resumed.arch == result.arch
    assert "Latency (TFLite float32, 1 thread, best of 5 medians)" in resumed.summary()
    report = tmp_path / "report.json"
    resumed.save_report(str(report))
    assert json.loads(report.read_text())["latency"]["predicted_ms"] == pytest.approx(
        resumed.latency["predicted_ms"])
    resumed.plot_pareto(str(tmp_path / "pareto.png"))
    assert (tmp_path / "pareto.png").stat().st_size > 0


def test_latency_calibration_and_the_data_free_search_show_progress_at_verbose_one(monkeypatch, capsys):
    monkeypatch.setattr(_latency, "measure_model_latency",
                        lambda model, **settings: 0.05 + layernas.count_madds(model) / 1e8)
    model = depthwise_cnn_32()
    base_ms = 0.05 + layernas.count_madds(model) / 1e8
    CompressionSearch(model, target_latency_ms=0.6 * base_ms, calibration_archs=3, verbose=1).run()
    out = capsys.readouterr().out
    assert [f"latency calibration {n}/3" in out for n in (1, 2, 3)] == [True] * 3
    assert "Unknown" not in out and re.search(r"\r\d+ trials - best_retained_importance", out)


def test_latency_target_above_the_base_prediction_returns_an_unchanged_copy(monkeypatch):
    monkeypatch.setattr(_latency, "measure_model_latency",
                        lambda model, **settings: 0.05 + layernas.count_madds(model) / 1e8)
    model = depthwise_cnn_32()
    with pytest.warns(UserWarning, match=r"ms \(predicted latency\), within target_latency_ms"):
        result = CompressionSearch(model, target_latency_ms=10.0, calibration_archs=3,
                                   verbose=0).run()
    assert result.madds == result.base_madds == layernas.count_madds(model)
    assert result.latency["measured_ms"] == result.latency["base_measured_ms"]


def test_latency_target_below_the_cheapest_prediction_names_the_minimum_in_ms(monkeypatch):
    monkeypatch.setattr(_latency, "measure_model_latency",
                        lambda model, **settings: 0.05 + layernas.count_madds(model) / 1e8)
    with pytest.raises(ValueError, match=r"target_latency_ms=0\.01 is below .* \d\S* ms \(predicted"):
        CompressionSearch(depthwise_cnn_32(), target_latency_ms=0.01, calibration_archs=3,
                          verbose=0).run()


@pytest.mark.slow
def test_latency_search_on_real_tflite_timings_reports_predicted_and_measured(tmp_path):
    model = depthwise_cnn_32()
    space = shrink_only(SearchSpace.from_model(model))
    calibration = layernas.LatencyModel.calibrate(
        space, num_archs=4, runs=10, repeats=5, cache=tmp_path / "compress.latency.json")
    target = 0.6 * calibration.predict(space.base_arch)
    # Same directory and settings: compress reuses these 4 measurements.
    result = CompressionSearch(model, target_latency_ms=target, cost="latency",
                               calibration_archs=4, latency_runs=10, directory=tmp_path,
                               verbose=0).run()
    assert result.target[0] <= result.latency["predicted_ms"] <= result.target[1]
    assert result.latency["measured_ms"] > 0  # measured vs base is the benchmark's job (noise)
    assert result.latency["predicted_ms"] < result.latency["base_predicted_ms"]
    assert result.madds < result.base_madds


def test_resumed_search_returns_kernel_width_options_not_plain_tuples(tmp_path):
    model = depthwise_cnn_32()
    target = 0.6 * layernas.count_madds(model)
    first = CompressionSearch(model, target, directory=tmp_path, verbose=0).run()
    resumed = CompressionSearch(model, target, directory=tmp_path, verbose=0).run()
    assert resumed.arch == first.arch
    assert type(resumed.arch["c2"]).__name__ == "KernelWidth"
    assert resumed.layers[1]["kernel"] == 3


# -- non-finite training -------------------------------------------------------------
def test_dataset_with_a_nan_never_returns_a_model_with_nan_weights():
    x, y = toy_data()
    x[0, 0, 0, 0] = np.nan  # hidden in a Dataset, which is not read up front
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with pytest.raises(ValueError, match=r"NaN or infinite.*Clean the data"):
        CompressionSearch(small_cnn(), 1e6, data=data, validation_data=toy_data(32, seed=1),
                          max_trials=2, verbose=0).run()


def test_a_trial_whose_training_diverges_fails_and_the_search_goes_on(tmp_path, monkeypatch):
    real_fine_tune = Trainer.fine_tune
    calls = []

    def diverging_first(self, model, epochs):
        calls.append(epochs)
        if len(calls) == 1:  # the first trial's weights blow up
            kernel = model.get_layer("c1").kernel
            kernel.assign(np.full(kernel.shape, np.inf, "float32"))
        return real_fine_tune(self, model, epochs)

    monkeypatch.setattr(Trainer, "fine_tune", diverging_first)
    result = CompressionSearch(small_cnn(), 1e6, data=toy_data(), validation_data=toy_data(32, seed=1),
                               max_trials=3, directory=tmp_path, verbose=0).run()
    searched = [h for h in result.history if h["id"] is not None]
    assert [h["score"] for h in searched][0] is None and all(
        h["score"] is not None for h in searched[1:])
    assert all(np.isfinite(w).all() for w in result.model.get_weights())
    assert 0.95e6 <= layernas.count_madds(result.model) <= 1e6
