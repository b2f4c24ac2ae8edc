"""Importance criterion: which channels survive a width cut."""
from __future__ import annotations

import numpy as np
import pytest

from keras_layernas.surgery import SearchSpace
from keras_layernas.surgery.importance import keep_indices, l1_importance
from tests.surgery._helpers import residual_model


def test_l1_importance_sums_every_producer_of_the_group():
    conv = np.zeros((1, 1, 2, 3))
    conv[0, 0, :, 2] = [1.0, -2.0]
    dense = np.array([[0.5, 0.0, 0.0]])
    assert l1_importance([conv, dense]).tolist() == [0.5, 0.0, 3.0]


def test_l1_importance_rejects_producers_of_different_widths():
    with pytest.raises(ValueError, match=r"same output width.*\[2, 3\]"):
        l1_importance([np.ones((1, 2)), np.ones((1, 3))])


def test_keep_indices_takes_the_top_scores_in_channel_order_ties_to_lower_index():
    assert keep_indices(np.array([1.0, 5.0, 5.0, 0.0, 5.0]), 2).tolist() == [1, 2]


@pytest.mark.parametrize("width", [0, 4])
def test_keep_indices_rejects_impossible_widths(width):
    with pytest.raises(ValueError, match="Cannot keep"):
        keep_indices(np.ones(3), width)


def test_custom_importance_decides_the_kept_channels_everywhere_in_the_group():
    model = residual_model()
    last_channels_first = lambda kernels: np.arange(kernels[0].shape[-1], dtype=float)
    space = SearchSpace.from_model(
        model,
        importance=last_channels_first,
        kernel_options=None,
        width_options={"stem.block_filter": [16, 8]},
    )
    arch = tuple(8 if l.name == "stem.block_filter" else l.options[0] for l in space.layers)
    slim = space.materialize(arch)
    kept = np.arange(8, 16)
    source = {name: model.get_layer(name) for name in ("stem", "project")}
    np.testing.assert_array_equal(slim.get_layer("stem").kernel, source["stem"].kernel.numpy()[..., kept])
    np.testing.assert_array_equal(slim.get_layer("project").bias, source["project"].bias.numpy()[kept])
    np.testing.assert_array_equal(
        slim.get_layer("head").kernel, model.get_layer("head").kernel.numpy()[:, :, kept, :]
    )


def test_retained_importance_counts_the_channels_a_custom_criterion_keeps():
    """One criterion on both sides: the score sums the scores of the channels materialize keeps."""
    import keras

    from keras_layernas.surgery import RetainedImportance

    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(4, 1, name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    kernel = np.zeros((1, 1, 2, 4))
    kernel[0, 0, 0] = [4.0, 3.0, 2.0, 1.0]  # L1 keeps channels 0, 1
    model.get_layer("conv").set_weights([kernel, np.zeros(4)])

    def weakest_first(kernels):  # keeps channels 3, 2: the opposite of L1
        return 1.0 / l1_importance(kernels)

    l1_space = SearchSpace.from_model(model, width_options={"conv": [4, 2]})
    custom_space = SearchSpace.from_model(model, width_options={"conv": [4, 2]},
                                          importance=weakest_first)
    kept = custom_space.materialize((2,)).get_layer("conv").get_weights()[0]
    np.testing.assert_array_equal(kept[0, 0, 0], [2.0, 1.0])
    scores = weakest_first([kernel])
    assert RetainedImportance(custom_space, model)((2,)) == pytest.approx(scores[2:].sum() / scores.sum())
    assert RetainedImportance(l1_space, model)((2,)) == pytest.approx(7 / 10)
    assert custom_space.with_layers(custom_space.layers).importance is weakest_first
