"""A deep cut in steps: budgets, what it refuses, each step of the previous winner, resume."""
import math

import numpy as np
import pytest

import keras_layernas as layernas
from keras_layernas.compression import compress_in_steps, step_budgets
from tests.compression.test_compress import toy_data
from tests.compression.test_greedy_fill import four_conv_cnn


@pytest.mark.parametrize("fraction, count", [(0.3, 4), (0.49, 2), (0.5, 2), (0.7, 1), (0.9, 1), (0.1, 7)])
def test_auto_steps_are_the_fewest_equal_ratios_that_each_keep_seventy_percent(fraction, count):
    budgets = step_budgets(1000.0, 1000.0 * fraction)
    assert len(budgets) == count and budgets[-1] == 1000.0 * fraction
    ratios = np.array(budgets) / np.array([1000.0, *budgets[:-1]])
    assert np.all(ratios >= 0.7 - 1e-9) and np.allclose(ratios, ratios[0])
    if count > 1:  # one step fewer would cut deeper than 70% per step
        assert fraction ** (1 / (count - 1)) < 0.7


def test_a_given_number_of_steps_splits_the_ratio_evenly():
    budgets = step_budgets(800.0, 100.0, steps=3)
    assert budgets == pytest.approx([400.0, 200.0, 100.0])


@pytest.mark.parametrize("arguments, message", [
    ({"data": None}, "needs data"),
    ({"steps": 0}, "steps"),
    ({"steps": "two"}, "steps"),
    ({"target_madds": ["50%", "30%"]}, "one MAdds budget"),
    ({"target_madds": None, "target_latency_ms": 1.0}, "one MAdds budget"),
    ({"target_madds": None}, "one MAdds budget"),
    ({"target_madds": -5.0}, "one MAdds budget"),
    ({"space": "a space"}, "exclude="),
])
def test_what_a_cut_in_steps_cannot_do_is_refused_with_the_fix(arguments, message):
    call = {"target_madds": "30%", "data": toy_data(16), "steps": 2, **arguments}
    with pytest.raises(ValueError, match=message):
        compress_in_steps(four_conv_cnn(), **call)


def test_a_distributed_cut_in_steps_is_refused(monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    with pytest.raises(ValueError, match="one process"):
        compress_in_steps(four_conv_cnn(), "30%", data=toy_data(16), steps=2)


def test_compress_with_steps_returns_the_last_steps_model(monkeypatch):
    import keras_layernas.compression._one_call as one_call

    calls = []

    class Result:
        def __init__(self, model):
            self.model = model

    def fake(model, target_madds, **kwargs):
        calls.append((target_madds, kwargs["steps"], kwargs["max_trials"]))
        return [Result("first"), Result("last")]

    monkeypatch.setattr(one_call, "compress_in_steps", fake)
    assert layernas.compress(four_conv_cnn(), "30%", data=toy_data(16), steps="auto", max_trials=8) == "last"
    assert calls == [("30%", "auto", 8)]


@pytest.mark.slow
def test_each_step_compresses_the_previous_winner_and_a_finished_step_is_not_trained_again(tmp_path, monkeypatch):
    model = four_conv_cnn()
    base = layernas.count_madds(model)
    data, validation = toy_data(64), toy_data(32, seed=1)
    # exclude as one layer name (a string) must mean that layer on the resume too
    results = compress_in_steps(model, 0.3 * base, data=data, validation_data=validation, steps="auto",
                                max_trials=4, finetune_epochs=2, directory=tmp_path, verbose=0, exclude="c0")
    assert len(results) == 4  # 74%, 55%, 41%, 30%
    budgets = step_budgets(base, 0.3 * base)
    for result, budget, below in zip(results, budgets, [*budgets[1:], 0.95 * budgets[-1]]):
        # a step before the last lands anywhere above the next budget; the last within 5%
        assert result.target == pytest.approx((below, budget))
        assert below <= result.madds <= budget
        assert result.trials == 1  # 4 trials over 4 steps
    # each step's base is the previous step's trained winner
    assert [r.base_madds for r in results[1:]] == [r.madds for r in results[:-1]]
    assert results[-1].madds == layernas.count_madds(results[-1].model)
    assert results[-1].model.get_layer("c0").filters == 32  # excluded in every step

    # run again: every step is read back from its folder, nothing searches or trains
    def refuse(self):
        raise AssertionError("a finished step was searched again")

    monkeypatch.setattr(layernas.CompressionSearch, "run", refuse)
    resumed = compress_in_steps(model, 0.3 * base, data=data, validation_data=validation, steps="auto",
                                max_trials=4, finetune_epochs=2, directory=tmp_path, verbose=0, exclude="c0")
    assert [r.arch for r in resumed] == [r.arch for r in results]
    for weights, again in zip(results[-1].model.get_weights(), resumed[-1].model.get_weights()):
        np.testing.assert_array_equal(weights, again)
    x = toy_data(8, seed=2)[0]
    np.testing.assert_allclose(resumed[-1].model.predict(x, verbose=0),
                               results[-1].model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert math.isclose(resumed[-1].score, results[-1].score)
    # another cut in the same folder is refused rather than resumed from the wrong steps
    with pytest.raises(ValueError, match="another cut"):
        compress_in_steps(model, 0.4 * base, data=data, validation_data=validation, steps="auto",
                          max_trials=4, finetune_epochs=2, directory=tmp_path, verbose=0, exclude="c0")
