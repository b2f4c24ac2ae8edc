"""Many budgets from one search: ``compress(model, target_madds=[...])``."""
from __future__ import annotations

import json
import math
import re

import keras
import numpy as np
import pytest

import keras_layernas as layernas
from keras_layernas.compression import RetainedImportance, shrink_only
from keras_layernas.compression import _drivers
from keras_layernas.compression._compress import CompressionSearch
from keras_layernas.compression._training import Trainer
from keras_layernas.search import LayerNAS, Target
from keras_layernas.surgery import SearchSpace
from tests.compression.test_compress import scoring_interrupted_at, small_cnn, toy_data


def four_conv_cnn() -> keras.Model:
    """Four plain convs at 16x16: a space of four width layers, searched completely in ms."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for index, width in enumerate([32, 48, 64, 64]):
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"c{index}")(x)
    outputs = keras.layers.Dense(10, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def model():
    return four_conv_cnn()


def test_each_model_lies_in_its_own_range_in_the_order_given(model):
    base = layernas.count_madds(model)
    targets = [0.5 * base, 0.7 * base, 0.3 * base]  # not sorted: the order given comes back
    results = CompressionSearch(model, targets, verbose=0).run()
    assert [r.target for r in results] == [pytest.approx((0.95 * t, t)) for t in targets]
    for result, budget in zip(results, targets):
        assert 0.95 * budget <= layernas.count_madds(result.model) == result.madds <= budget
        assert 0 < result.score < 1 == result.base_score
    assert results[1].madds > results[0].madds > results[2].madds


def test_one_search_serves_every_target_with_fewer_trials_than_separate_searches(model):
    targets = ["70%", "50%", "30%"]
    results = CompressionSearch(model, targets, verbose=0).run()
    separate = [CompressionSearch(model, t, verbose=0).run() for t in targets]
    # the one search: LayerNAS over the union of the three ranges, scored data-free
    space = shrink_only(SearchSpace.from_model(model))
    scorer = RetainedImportance(space, model)
    search = LayerNAS(space.options, space.cost, target=Target.union([r.target for r in results]))
    while (candidate := search.ask()) is not None:
        search.tell(candidate, scorer(candidate.arch))
    assert {r.trials for r in results} == {search.num_told}
    assert all(len(r.history) == search.num_told for r in results)
    assert search.num_told < sum(s.trials for s in separate)
    # every tier's candidates stay in the one search: no tier scores worse than alone
    for together, alone in zip(results, separate):
        assert together.score >= alone.score - 1e-12


def test_the_one_search_skips_candidates_that_fall_between_the_ranges(model):
    results = CompressionSearch(model, ["70%", "30%"], verbose=0).run()
    (low30, high30), (low70, high70) = results[1].target, results[0].target
    last = max(h["layer"] for h in results[0].history)
    between = [h for h in results[0].history if h["layer"] == last and high30 < h["madds"] < low70]
    assert between == []
    assert any(h["layer"] == last for h in results[0].history)


def test_percentages_work_inside_the_list(model):
    base = layernas.count_madds(model)
    search = CompressionSearch(model, ["60%", 0.4 * base], verbose=0)
    results = search.run()
    assert search.config.target.ranges == (results[1].target, results[0].target)  # the union
    assert results[0].target == pytest.approx((0.95 * 0.6 * base, 0.6 * base))
    assert results[1].target == pytest.approx((0.95 * 0.4 * base, 0.4 * base))
    assert all(r.target[0] <= r.madds <= r.target[1] for r in results)


def test_compress_returns_a_list_for_a_list_and_one_model_for_a_number(model):
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    many = layernas.compress(model, ["60%", "40%"], verbose=0)
    one = layernas.compress(model, "40%", verbose=0)
    single_item = layernas.compress(model, ["40%"], verbose=0)
    assert isinstance(many, list) and len(many) == 2
    assert isinstance(one, keras.Model) and isinstance(single_item, list) and len(single_item) == 1
    np.testing.assert_allclose(many[1](x), one(x), atol=1e-6)  # the same choice as alone
    np.testing.assert_allclose(single_item[0](x), one(x), atol=1e-6)


def test_a_target_at_or_above_the_base_gets_an_unchanged_copy_and_the_rest_are_searched(model):
    base = layernas.count_madds(model)
    with pytest.warns(UserWarning, match="already has"):
        results = CompressionSearch(model, [2 * base, "50%"], verbose=0).run()
    assert results[0].madds == base and results[0].trials == 0
    assert 0.95 * 0.5 * base <= results[1].madds <= 0.5 * base and results[1].trials > 0


def test_verbose_prints_one_summary_per_target(model, capsys):
    CompressionSearch(model, ["60%", "40%"], verbose=1).run()
    out = capsys.readouterr().out
    assert out.count("Params:") == 2
    assert "Target 1 of 2 searched" in out and "(target_madds[1])" in out


@pytest.mark.parametrize("kwargs, message", [
    (dict(target_madds=[]), "target_madds=[] holds no budget"),
    (dict(target_madds=[2e6, 1e6, 2e6]), "target_madds[0] and target_madds[2] are the same budget"),
    (dict(target_madds=[2e6, "abc"]), "Received: target_madds[1]='abc'"),
    (dict(target_madds=[2e6, 0]), "target_madds[1]"),
    (dict(target_madds=[2e6, 1e6], target_latency_ms=3.0), "do not mix with target_latency_ms"),
    (dict(target_latency_ms=[3.0, 2.0]), "MAdds budgets only"),
    (dict(target_madds=[2e6, 1e6], cost="latency"), "cost='latency'"),
])
def test_bad_lists_of_targets_are_refused_naming_the_fix(model, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        CompressionSearch(model, **kwargs)


def test_the_same_budget_as_a_percentage_and_a_number_is_a_duplicate(model):
    base = layernas.count_madds(model)
    with pytest.raises(ValueError, match="same budget"):
        CompressionSearch(model, ["50%", 0.5 * base])


def test_a_budget_below_the_smallest_model_is_named_by_its_position(model):
    with pytest.raises(ValueError, match=r"target_madds\[1\]=1000 is below the smallest model"):
        CompressionSearch(model, ["50%", 1000], verbose=0).run()


def test_an_interrupted_search_of_several_targets_resumes_where_it_stopped(model, tmp_path,
                                                                            monkeypatch):
    targets = ["70%", "50%", "30%"]
    reference = CompressionSearch(model, targets, verbose=0).run()
    monkeypatch.setattr(_drivers, "SAVE_EVERY_S", 0.0)  # save after every trial
    with scoring_interrupted_at(monkeypatch, 20):
        CompressionSearch(model, targets, directory=tmp_path, verbose=0).run()
    state = json.loads((tmp_path / "compress" / _drivers.STATE_FILE).read_text())
    assert len(json.loads(state["search"])["told"]) == 19
    assert len(state["fingerprint"]["target"]) == 3  # the three ranges, not their span
    resumed = CompressionSearch(model, targets, directory=tmp_path, verbose=0).run()
    assert [r.arch for r in resumed] == [r.arch for r in reference]
    assert resumed[0].history == reference[0].history


def test_resume_refuses_a_directory_searched_for_other_targets_with_the_same_span(model, tmp_path):
    CompressionSearch(model, ["70%", "30%"], directory=tmp_path, verbose=0).run()
    with pytest.raises(ValueError, match="different space or settings"):
        CompressionSearch(model, ["70%", "50%", "30%"], directory=tmp_path, verbose=0).run()


@pytest.mark.slow
def test_with_data_each_target_is_chosen_from_one_search_and_fine_tuned_apart(monkeypatch):
    model = small_cnn()
    data, validation = toy_data(128, seed=0), toy_data(64, seed=1)
    real_fine_tune = Trainer.fine_tune
    epochs_seen, final_weights = [], []

    def recording(self, candidate, epochs):
        epochs_seen.append(epochs)
        if epochs == 2:  # a winner's final fine-tune: what it starts from
            final_weights.append([w.copy() for w in candidate.get_weights()])
        return real_fine_tune(self, candidate, epochs)

    monkeypatch.setattr(Trainer, "fine_tune", recording)
    search = CompressionSearch(model, ["60%", "40%"], data=data, validation_data=validation,
                               max_trials=4, epochs_per_trial=1, finetune_epochs=2, verbose=0)
    results = search.run()
    completions = [sum(h["layer"] == "completion" for h in r.history) for r in results]
    assert epochs_seen == [1] * (4 + sum(completions)) + [2, 2]  # one search, two fine-tunes
    assert [r.trials for r in results] == [4, 4]
    searched = [[h for h in r.history if h["layer"] != "completion"] for r in results]
    assert searched[0] == searched[1]
    for result, weights in zip(results, final_weights):
        low, high = result.target
        assert low <= layernas.count_madds(result.model) <= high
        accuracy = np.mean(np.argmax(result.model.predict(validation[0], verbose=0), -1)
                           == validation[1])
        assert math.isclose(accuracy, result.score, abs_tol=1e-6)
        arch = tuple(result.arch[name] for name in search.space.names)
        sliced = search.space.materialize(arch).get_weights()
        # the winner starts its fine-tune from what its trial trained, not from the base's slice
        assert any(not np.allclose(w, s) for w, s in zip(weights, sliced))


def test_data_free_models_for_several_budgets_come_with_the_untrained_warning():
    with pytest.warns(UserWarning, match=r"untrained.*reestimate_batchnorm"):
        slims = layernas.compress(four_conv_cnn(), ["70%", "50%"], verbose=0)
    assert len(slims) == 2
