"""start="greedy": every trial with data trains a model of the target's cost."""
from __future__ import annotations

import keras
import pytest

import keras_layernas as layernas
from keras_layernas.compression._completion import greedy_fill
from keras_layernas.compression._compress import CompressionSearch
from keras_layernas.compression._training import Trainer
from keras_layernas.surgery import SearchSpace
from keras_layernas.surgery.space import encode_option
from tests.compression.test_compress import toy_data


def four_conv_cnn() -> keras.Model:
    """Four 32-wide convs at 16x16: a layer-0 candidate is far above a 40% target."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for index in range(4):
        x = keras.layers.Conv2D(32, 3, padding="same", name=f"c{index}")(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization(name=f"bn{index}")(x))
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def counting_space():
    return SearchSpace.from_options({"a": [4, 3, 2, 1], "b": [4, 3, 2, 1], "c": [4, 3, 2, 1]},
                                    cost_fn=lambda v: 100 * v["a"] + 10 * v["b"] + v["c"])


def keep(layer, option):  # every layer loses the same per option step
    return option - 4.0


def test_fill_keeps_the_searched_layers_and_lands_in_target():
    space = counting_space()
    # (3, 4, 4) is a layer-0 candidate: b and c are still at their first option
    filled = greedy_fill(space, (3, 4, 4), keep, (318, 325))
    assert filled[0] == 3 and 318 <= space.cost(filled) <= 325
    # (3, 2, 4): b was searched too, so only c moves (a cheaper b would land as well)
    assert greedy_fill(space, (3, 2, 4), keep, (321, 323)) == (3, 2, 3)


def test_fill_gives_up_when_the_unsearched_layers_cannot_reach_the_target():
    space = counting_space()
    assert greedy_fill(space, (3, 1, 4), keep, (200, 250)) is None  # c alone moves 311..314
    assert greedy_fill(space, (2, 2, 2), keep, (200, 250)) == (2, 2, 2)  # already inside


def test_greedy_start_needs_data():
    with pytest.raises(ValueError, match="start='greedy'.*Pass data="):
        CompressionSearch(four_conv_cnn(), 1e6, start="greedy")
    with pytest.raises(ValueError, match="start must be one of"):
        CompressionSearch(four_conv_cnn(), 1e6, start="cheapest")
    assert CompressionSearch(four_conv_cnn(), 1e6).config.start == "base"
    assert CompressionSearch(four_conv_cnn(), 1e6, data=toy_data()).config.start == "greedy"


def test_with_data_every_trial_trains_an_in_target_model_and_the_best_one_is_returned(monkeypatch):
    model = four_conv_cnn()
    target = 0.4 * layernas.count_madds(model)
    trained_madds = []
    real_fine_tune = Trainer.fine_tune

    def recording(self, candidate, epochs):
        trained_madds.append((layernas.count_madds(candidate), epochs))
        return real_fine_tune(self, candidate, epochs)

    monkeypatch.setattr(Trainer, "fine_tune", recording)
    result = CompressionSearch(model, target, data=toy_data(128), validation_data=toy_data(64, seed=1),
                               max_trials=4, finetune_epochs=0, verbose=0).run()
    # 4 trials, then the winner's 0-epoch score; no completions
    trials, winner = trained_madds[:-1], trained_madds[-1]
    assert winner[1] == 0
    assert len(trials) == 4 and all(epochs == 1 for _, epochs in trials)
    assert all(0.95 * target <= madds <= target for madds, _ in trials)
    assert not result.completed and result.trials == 4
    assert [h["madds"] for h in result.history] == [madds for madds, _ in trials]
    # the first four candidates are layer 0's options; a fill keeps the searched c0
    # (the base candidate has searched nothing, so its fill may cut c0 as well)
    assert {24, 16, 8} <= {h["arch"]["c0"] for h in result.history}
    # the winner is the best trial, returned with the weights that trial trained:
    # with no final fine-tune, its score is the trial's own
    best = max(result.history, key=lambda h: h["score"])
    assert {k: encode_option(v) for k, v in result.arch.items()} == best["arch"]
    assert result.score == pytest.approx(best["score"], abs=1e-6)
    # the front is of what the trials trained: in target, dearer only where it scores higher
    front = result.pareto_front
    assert front and front[-1]["score"] == best["score"]
    assert all(0.95 * target <= p["madds"] <= target for p in front)
    assert all(a["madds"] < b["madds"] and a["score"] < b["score"] for a, b in zip(front, front[1:]))



def test_several_budgets_default_to_the_base_start_and_refuse_the_greedy_one():
    search = CompressionSearch(four_conv_cnn(), ["50%", "30%"], data=toy_data())
    assert search.config.start == "base"
    with pytest.raises(ValueError, match="start='greedy' cuts each trial's model into one target"):
        CompressionSearch(four_conv_cnn(), ["50%", "30%"], data=toy_data(), start="greedy")


def test_resuming_trials_trained_another_way_is_refused(tmp_path):
    model = four_conv_cnn()
    target = 0.4 * layernas.count_madds(model)
    kwargs = dict(data=toy_data(64), validation_data=toy_data(32, seed=1), max_trials=1,
                  finetune_epochs=0, directory=tmp_path, verbose=0)
    CompressionSearch(model, target, start="base", **kwargs).run()
    with pytest.raises(ValueError, match=r"start='base' there, 'greedy' now.*overwrite=True"):
        CompressionSearch(model, target, **kwargs).run()
    resumed = CompressionSearch(model, target, start="base", **kwargs).run()  # same recipe: resumes
    assert resumed.trials == 1
    fresh = CompressionSearch(model, target, overwrite=True, **kwargs).run()  # a new search
    assert fresh.trials == 1 and all(0.95 * target <= h["madds"] <= target for h in fresh.history)


def test_with_data_the_default_splits_training_between_12_trials_and_12_epochs_of_the_winner():
    model, data = four_conv_cnn(), toy_data()
    one = CompressionSearch(model, 1e6, data=data).config
    assert (one.max_trials, one.finetune_epochs) == (12, 12)
    several = CompressionSearch(model, [1e6, 0.8e6], data=data).config
    assert (several.max_trials, several.finetune_epochs) == (None, 12)  # None: one pass, for all budgets
    free = CompressionSearch(model, 1e6).config
    assert (free.max_trials, free.finetune_epochs) == (None, 0)
    mine = CompressionSearch(model, 1e6, data=data, max_trials=30, finetune_epochs=2).config
    assert (mine.max_trials, mine.finetune_epochs) == (30, 2)
