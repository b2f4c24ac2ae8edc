"""The CIFAR-10 benchmark's own helpers: rank statistics, sanity rule, data, uniform arch."""
from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from benchmarks import _cifar10 as cifar
from benchmarks.cifar10_compression import build_space, sanity_verdict
import keras_layernas as layernas


def test_kendall_tau_is_one_for_same_order_and_minus_one_for_reversed():
    assert cifar.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert cifar.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0


def test_kendall_tau_counts_one_swapped_pair():
    # pairs: 6, one discordant (2,3 swapped) -> (5 - 1) / 6
    assert cifar.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)


def test_kendall_tau_b_discounts_ties():
    # x ties on one pair: tau-b = (nc - nd) / sqrt((n0 - n1) (n0 - n2)) = 2 / sqrt(2 * 3)
    assert cifar.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))


def _rows(accuracies: dict[float, list[float]]) -> list[dict]:
    return [{"alpha": a, "seed": s, "test_accuracy": v}
            for a, values in accuracies.items() for s, v in enumerate(values)]


def test_sanity_holds_when_every_gap_beats_the_seed_spread():
    verdict = sanity_verdict(_rows({1.0: [0.80, 0.81], 0.6: [0.75, 0.76], 0.45: [0.70, 0.71]}), [1.0, 0.6, 0.45])
    assert verdict["sane"] is True
    assert verdict["gaps"][0]["gap"] == pytest.approx(0.05)


def test_sanity_fails_when_a_gap_is_inside_the_seed_spread():
    verdict = sanity_verdict(_rows({1.0: [0.80, 0.70], 0.6: [0.74, 0.76], 0.45: [0.60, 0.61]}), [1.0, 0.6, 0.45])
    assert verdict["gaps"][0]["sane"] is False
    assert verdict["gaps"][1]["sane"] is True
    assert verdict["sane"] is False


def test_sanity_is_not_claimed_from_a_single_seed():
    verdict = sanity_verdict(_rows({1.0: [0.80], 0.6: [0.75]}), [1.0, 0.6, 0.45])
    assert verdict["sane"] is False


def test_pipeline_decodes_real_images_to_scaled_batches(shared_dir):
    splits = cifar.load_splits(shared_dir / "data" / "cifar10" / "cifar10_jpeg.npz", train_limit=64)
    assert len(splits["train"][0]) == 64
    assert len(splits["validation"][0]) == cifar.VALIDATION_SIZE
    assert len(splits["test"][0]) == 10_000
    for training in (False, True):
        x, y = next(iter(cifar.make_dataset(splits["train"], 16, 32, training=training)))
        assert x.shape == (16, 32, 32, 3) and y.shape == (16,)
        assert -1.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0
        assert float(np.std(x)) > 0.1  # real images, not padding
    x, y = next(iter(cifar.make_dataset(splits["train"], 8, 32, training=False)))
    np.testing.assert_array_equal(y.numpy(), splits["train"][1][:8])  # unshuffled keeps order


@pytest.mark.slow
def test_uniform_arch_from_the_space_matches_keras_alpha_model():
    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.5, weights=None, classes=10)
    small = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10)
    space, (arch,) = build_space(base, [small], [0.25])
    assert space.cost(arch) == layernas.count_madds(small)
    slim = space.materialize(arch)
    for layer in small.layers:
        if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.DepthwiseConv2D):
            assert slim.get_layer(layer.name).filters == layer.filters, layer.name
    assert slim.count_params() == small.count_params()


def test_rank_agreement_ranks_every_cheap_score_against_fine_tuned_accuracy():
    from benchmarks.cifar10_compression import rank_agreement

    checked = [{"data_free_equal": 0.6, "data_free_layers": 0.1, "val_accuracy": 0.2,
                "fine_tuned_val_accuracy": 0.3},
               {"data_free_equal": 0.5, "data_free_layers": 0.2, "val_accuracy": 0.3,
                "fine_tuned_val_accuracy": 0.4},
               {"data_free_equal": 0.4, "data_free_layers": 0.3, "val_accuracy": 0.1,
                "fine_tuned_val_accuracy": 0.5}]
    taus = rank_agreement(checked)["kendall_tau"]
    assert taus["data_free_equal"] == -1.0 and taus["data_free_layers"] == 1.0
    assert taus["trial_score"] == pytest.approx(-1 / 3)


def test_merge_joins_methods_measured_by_side_by_side_runs():
    from benchmarks.cifar10_compression import merge_results

    settings = {"seeds": 1, "alphas": [0.6], "tau_candidates": 1}
    main = {"command": "compare", "sanity_command": "sanity", "settings": settings,
            "sanity": [{"alpha": a} for a in (1.0, 0.6, 0.45)],
            "compare": [{"alpha": 0.6, "a_layernas": {"test_accuracy": 0.5}, "trials": {"a": [1]}}],
            "rank_check": {"candidates": [{}]}}
    extra = {"command": "compare --methods f", "settings": settings, "sanity": [],
             "compare": [{"alpha": 0.6, "f_layernas_uniform_start": {"test_accuracy": 0.4},
                          "trials": {"f": [2]}}]}
    merged = merge_results(main, [extra])
    assert merged["commands"] == ["sanity", "compare", "compare --methods f"]
    (row,) = merged["compare"]
    assert row["a_layernas"]["test_accuracy"] == 0.5 and row["f_layernas_uniform_start"]["test_accuracy"] == 0.4
    assert row["trials"] == {"a": [1], "f": [2]}
    assert merged["complete"] and len(merged["sanity"]) == 3
    assert not merge_results({**main, "rank_check": {"candidates": []}}, [extra])["complete"]
