"""The compression-quality benchmark's baselines: the global magnitude cut and the every-width space."""
from __future__ import annotations

import numpy as np
import pytest

import keras_layernas as layernas
from benchmarks.compression_quality import every_width_space, global_magnitude_arch, width_of
from tests.compression.test_compress import small_cnn


@pytest.mark.parametrize("fraction", [0.7, 0.5, 0.3])
def test_global_magnitude_cut_lands_in_target_and_cuts_the_low_gamma_channels_first(fraction):
    model = small_cnn()
    # bn1: half its channels near zero; bn2: all alike. The global ranking
    # (normalized per group) cuts bn1's weak half before touching bn2 evenly.
    gamma1 = np.where(np.arange(32) < 16, 1.0, 0.01) + np.linspace(0, 0.001, 32)
    model.get_layer("bn1").gamma.assign(gamma1)
    model.get_layer("bn2").gamma.assign(1.0 + np.linspace(0, 0.1, 32))
    space = every_width_space(model)
    high = fraction * layernas.count_madds(model)
    arch = global_magnitude_arch(space, model, (0.95 * high, high))
    assert 0.95 * high <= space.cost(arch) <= high
    widths = dict(zip(space.names, (width_of(o) for o in arch)))
    first, second = widths[space.names[0]], widths[space.names[1]]
    assert first < 32
    assert second == 32 or first <= 16  # c2 is cut only once c1's weak half is gone
    assert layernas.count_madds(space.materialize(arch)) == space.cost(arch)


def test_every_width_space_offers_each_width_down_to_one():
    space = every_width_space(small_cnn())
    assert [width_of(o) for o in space.layers[0].options] == list(range(32, 0, -1))


def _row(method, target, seed, acc):
    return {"method": method, "target": target, "seed": seed, "test_acc": acc, "madds": 100}


def test_summary_calls_a_difference_inside_the_seed_spread_no_difference():
    from benchmarks.compression_quality import summarize

    rows = [_row("uniform_inherited", 0.5, s, a) for s, a in enumerate([0.60, 0.62, 0.64])]
    rows += [_row("compress_free", 0.5, s, a) for s, a in enumerate([0.61, 0.63, 0.65])]
    rows += [_row("global_magnitude", 0.5, s, a) for s, a in enumerate([0.70, 0.71, 0.72])]
    summary = {e["method"]: e for e in summarize(rows)[0]}
    assert summary["compress_free"]["vs_uniform"] == pytest.approx(0.01)
    assert summary["compress_free"]["verdict"] == "no difference measured"
    assert summary["global_magnitude"]["vs_uniform"] == pytest.approx(0.09)
    assert summary["global_magnitude"]["verdict"] == "better"
    assert summary["uniform_inherited"]["std"] == pytest.approx(0.02)
    assert "verdict" not in summary["uniform_inherited"]


def test_compress_data_is_compared_paired_with_each_rival_that_ran_at_its_target():
    from benchmarks.compression_quality import searches, summarize

    rows = [_row("uniform_inherited", 0.5, s, a) for s, a in enumerate([0.60, 0.62, 0.64])]
    rows += [_row("compress_free", 0.5, s, a) for s, a in enumerate([0.66, 0.66, 0.66])]
    rows += [_row("compress_data", 0.5, s, a) for s, a in enumerate([0.65, 0.67, 0.66])]
    rows += [_row("compress_data", 0.3, s, 0.5) for s in range(3)]  # no rival at 30%
    search = {"trials": 4, "trials_in_target": 4, "search_s": 100.0, "trial_scores": [0.4, 0.5, 0.45, 0.3],
              "trial_score": 0.55, "fits": [{"fit_s": 10.0, "tracing_s": 5.0}, {"fit_s": 30.0, "tracing_s": 5.0}]}
    rows[6].update(search)
    comparisons = {c["versus"]: c for c in summarize(rows)[1]}
    assert set(comparisons) == {"uniform_inherited", "compress_free"}
    assert comparisons["uniform_inherited"]["difference"] == pytest.approx(0.04)
    assert comparisons["uniform_inherited"]["verdict"] == "better"  # beyond the 0.02 spread
    assert comparisons["compress_free"]["difference"] == pytest.approx(0.0)
    assert comparisons["compress_free"]["verdict"] == "no difference measured"
    [found] = searches(rows)
    assert found["s_per_trial"] == 25.0 and found["tracing_share_of_fits"] == pytest.approx(0.25)
    assert (found["first_trial_score"], found["best_trial_score"]) == (0.4, 0.5)



@pytest.mark.slow
def test_random_search_baseline_trains_in_target_models_and_returns_the_best(monkeypatch):
    import benchmarks.compression_quality as quality
    from tests.compression.test_compress import toy_data
    from tests.compression.test_greedy_fill import four_conv_cnn

    monkeypatch.setattr(quality, "TRIALS", 3)
    model = four_conv_cnn()
    high = 0.4 * layernas.count_madds(model)
    train, validation = layernas.compression.prepare_data(toy_data(64), toy_data(32, seed=1), (16, 16, 3))
    slim, info = quality.random_search(model, (0.95 * high, high), train, validation)
    assert info["trials"] == 3 == len(info["trial_scores"])
    assert 0.95 * high <= layernas.count_madds(slim) <= high
    assert all(0 <= s <= 1 for s in info["trial_scores"]) and 0 <= info["trial_score"] <= 1
    # 3 trials and the winner's fine-tune, 2 batches of 32 each; the first batch holds the tracing
    assert [fit["batches"] for fit in info["fits"]] == [2] * 4
    assert all(0 <= fit["tracing_s"] <= fit["first_batch_s"] <= fit["fit_s"] for fit in info["fits"])


def test_kendall_tau_b_counts_pairs_and_corrects_for_ties():
    from benchmarks._rank import kendall_tau

    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # 5 concordant, 1 discordant
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / np.sqrt(2 * 3))  # one tie in x
    assert np.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="one length"):
        kendall_tau([1, 2], [1, 2, 3])


def test_bootstrap_interval_is_a_point_for_a_perfect_order_and_spans_zero_for_noise():
    from benchmarks._rank import tau_with_interval

    tau, interval = tau_with_interval(range(30), range(30), resamples=200)
    assert tau == 1.0 and interval == [1.0, 1.0]
    rng = np.random.default_rng(0)
    tau, (low, high) = tau_with_interval(rng.normal(size=60), rng.normal(size=60), resamples=500)
    assert low < 0 < high and low <= tau <= high and high - low < 0.5


def test_rank_table_ranks_each_score_against_test_accuracy_on_the_candidates_that_have_it():
    from benchmarks.compression_quality import rank_table

    accuracy = np.linspace(0.4, 0.6, 8)
    measured = [{"target": 0.5, "test_acc": a, "val_acc": a, "scores": {
        "trial": a, "madds": -a, "trial_0_epochs": 0.1,
        **({"retained_equal": a} if i < 6 else {})}} for i, a in enumerate(accuracy)]
    rows = {r["score"]: r for r in rank_table(measured)}
    assert rows["trial"]["kendall_tau"] == 1.0 and rows["trial"]["default"]
    assert rows["trial"]["default_of"] == "compress(model, T, data=...)"
    assert rows["madds"]["kendall_tau"] == -1.0 and not rows["madds"]["default"]
    assert rows["retained_equal"]["n"] == 6 and rows["trial"]["n"] == 8
    assert rows["trial_0_epochs"]["kendall_tau"] is None  # a constant score orders nothing


def test_two_stages_saving_at_once_keep_each_others_measurements(tmp_path, monkeypatch):
    import benchmarks.compression_quality as quality

    monkeypatch.setattr(quality, "RESULTS", tmp_path)
    monkeypatch.setattr(quality, "machine", lambda: {})
    methods, rank = quality.load_results(), quality.load_results()  # both read the empty file
    methods["rows"].append(_row("uniform_inherited", 0.5, 0, 0.6))
    quality.save_results(methods)
    rank["rank_candidates"] = [{"target": 0.5, "index": 0, "test_acc": 0.4}]
    quality.save_results(rank)  # read before the methods row was saved
    methods["rows"].append(_row("uniform_inherited", 0.5, 1, 0.61))
    quality.save_results(methods)
    saved = quality.load_results()
    assert [r["seed"] for r in saved["rows"]] == [0, 1]
    assert [c["index"] for c in saved["rank_candidates"]] == [0]


@pytest.mark.slow
def test_the_cut_in_steps_reports_every_steps_target_and_trials(monkeypatch, tmp_path):
    import benchmarks.compression_quality as quality
    from tests.compression.test_compress import toy_data
    from tests.compression.test_greedy_fill import four_conv_cnn

    monkeypatch.setattr(quality, "WORK", tmp_path)
    model = four_conv_cnn()
    train, validation = layernas.compression.prepare_data(toy_data(64), toy_data(32, seed=1), (16, 16, 3))
    slim, info = quality.compress_in_steps(model, 0.49, train, validation, max_trials=4, finetune_epochs=2)
    base = layernas.count_madds(model)
    assert [s["target"] for s in info["steps"]] == pytest.approx([0.7, 0.49])
    assert all(0.95 * s["target"] * base <= s["madds"] <= s["target"] * base for s in info["steps"])
    assert info["steps"][-1]["madds"] == layernas.count_madds(slim)
    assert info["trials"] == 4 and len(info["trial_scores"]) == 4  # 2 trials per step


def test_each_call_with_data_is_compared_with_the_other_and_the_rivals():
    from benchmarks.compression_quality import summarize

    rows = [_row("compress_free_kd", 0.5, s, a) for s, a in enumerate([0.67, 0.68, 0.67])]
    rows += [_row("compress_data", 0.5, s, a) for s, a in enumerate([0.59, 0.60, 0.59])]
    rows += [_row("compress_defaults", 0.5, s, a) for s, a in enumerate([0.67, 0.68, 0.66])]
    pairs = {(c["method"], c["versus"]): c for c in summarize(rows)[1]}
    assert set(pairs) == {("compress_data", "compress_free_kd"), ("compress_data", "compress_defaults"),
                          ("compress_defaults", "compress_free_kd"), ("compress_defaults", "compress_data")}
    assert pairs[("compress_defaults", "compress_data")]["difference"] == pytest.approx(0.0767, abs=1e-4)
    assert pairs[("compress_defaults", "compress_data")]["verdict"] == "better"
    assert pairs[("compress_defaults", "compress_free_kd")]["verdict"] == "no difference measured"


def test_batchnorm_folding_scales_each_conv_output_channel_by_abs_gamma_over_sigma():
    from benchmarks.data_free_scores import bn_folded

    model = small_cnn()
    norm = model.get_layer("bn1")
    norm.gamma.assign(np.linspace(-2.0, 2.0, 32))
    norm.moving_variance.assign(np.full(32, 4.0))
    folded = bn_folded(model)
    scale = np.abs(np.linspace(-2.0, 2.0, 32)) / np.sqrt(4.0 + norm.epsilon)
    np.testing.assert_allclose(folded.get_layer("c1").kernel.numpy(),
                               model.get_layer("c1").kernel.numpy() * scale, rtol=1e-5)
    np.testing.assert_allclose(model.get_layer("c1").kernel.numpy(), small_cnn().get_layer("c1").kernel.numpy())


def test_a_rank_pool_searched_again_is_refused_unless_it_names_the_measured_models():
    from benchmarks.compression_quality import check_measured_match

    pool = [{"source": "layernas", "trial": 3, "madds": 100}, {"source": "uniform_inherited", "trial": None, "madds": 98}]
    measured = [{"target": 0.3, "index": 1, "source": "uniform_inherited", "trial": None, "madds": 98},
                {"target": 0.5, "index": 0, "source": "layernas", "trial": 9, "madds": 7}]  # other target
    check_measured_match(pool, measured, 0.3)
    moved = [{"target": 0.3, "index": 0, "source": "layernas", "trial": 4, "madds": 100}]
    with pytest.raises(ValueError, match="#0 .*searched again"):
        check_measured_match(pool, moved, 0.3)
    with pytest.raises(ValueError, match="missing"):
        check_measured_match(pool, [{**measured[0], "index": 5}], 0.3)


def test_the_rank_pool_saved_by_one_stage_survives_another_stages_save(tmp_path, monkeypatch):
    import benchmarks.compression_quality as quality

    monkeypatch.setattr(quality, "RESULTS", tmp_path)
    monkeypatch.setattr(quality, "machine", lambda: {})
    methods, rank = quality.load_results(), quality.load_results()
    rank["rank_pool"] = {"0.3": [{"source": "layernas", "trial": 0, "madds": 5}]}
    quality.save_results(rank)
    methods["rows"].append(_row("uniform_inherited", 0.5, 0, 0.6))
    quality.save_results(methods)  # read before the pool was saved
    assert quality.load_results()["rank_pool"] == rank["rank_pool"]


def test_synthetic_inputs_take_on_the_batchnorm_statistics_of_the_model():
    import tensorflow as tf

    from benchmarks.synthetic_scores import SYNTHESIS, batchnorm_probe, synthesize_batch

    model = small_cnn()
    probe, norms = batchnorm_probe(model)
    # statistics the model would have learned on inputs ~ N(0.3, 0.5^2), set layer by layer
    reference = 0.3 + 0.5 * np.random.default_rng(1).standard_normal((64, 16, 16, 3)).astype("float32")
    for index, norm in enumerate(norms):
        mean, variance = tf.nn.moments(probe(reference)[index], axes=[0, 1, 2])
        norm.moving_mean.assign(mean)
        norm.moving_variance.assign(variance)
    labels = np.arange(16, dtype="int32") % 4
    settings = {**SYNTHESIS, "class_weight": 0.0}  # the BatchNorm term alone
    _, first = synthesize_batch(probe, norms, labels, (16, 16, 3), {**settings, "steps": 1}, seed=0)
    images, last = synthesize_batch(probe, norms, labels, (16, 16, 3), {**settings, "steps": 150}, seed=0)
    assert last < 0.6 * first
    mean, _ = tf.nn.moments(probe(images)[0], axes=[0, 1, 2])
    spread = float(np.std(norms[0].moving_mean.numpy()))
    np.testing.assert_allclose(mean.numpy(), norms[0].moving_mean.numpy(), atol=0.2 * spread)
    assert abs(float(np.mean(images)) - 0.3) < 0.1  # the input distribution, found back
    with pytest.raises(ValueError, match="no BatchNormalization"):
        batchnorm_probe(keras_dense_model())


def keras_dense_model():
    import keras

    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))
