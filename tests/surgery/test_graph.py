"""Channel-dependency analysis: which channels move together."""
from __future__ import annotations

import keras
import pytest

from keras_layernas.surgery._graph import ChannelGraph
from tests.surgery._helpers import concat_model, residual_model, squeeze_excite_model


def _names(calls) -> list[str]:
    return sorted(c.path[-1] for c in calls)


def _group_made_by(graph: ChannelGraph, layer_name: str):
    return next(g for g in graph.groups if layer_name in _names(g.producers))


def test_residual_add_couples_both_producers_and_their_readers():
    graph = ChannelGraph(residual_model())
    group = _group_made_by(graph, "stem")
    assert _names(group.producers) == ["project", "stem"]
    assert _names(group.consumers) == ["expand", "head"]
    assert group.frozen is None and group.width == 16


def test_depthwise_and_batchnorm_follow_the_group_they_read():
    graph = ChannelGraph(residual_model())
    group = _group_made_by(graph, "expand")
    assert _names(group.followers) == ["depthwise", "expand_bn"]
    assert _names(group.consumers) == ["project"]
    assert group.has_activation


def test_squeeze_excite_gate_joins_the_expanded_group_and_reduce_stays_apart():
    graph = ChannelGraph(squeeze_excite_model())
    expanded = _group_made_by(graph, "expand")
    reduce = _group_made_by(graph, "se_reduce")
    assert _names(expanded.producers) == ["expand", "se_expand"]
    assert _names(reduce.consumers) == ["se_expand"]
    assert reduce.id != expanded.id and reduce.width == 8


def test_concatenate_lays_input_groups_end_to_end():
    model = concat_model()
    graph = ChannelGraph(model)
    concat_out = id(model.get_layer("concat").output)
    a, b = _group_made_by(graph, "a"), _group_made_by(graph, "b")
    assert graph.layout_groups(concat_out) == (a.id, b.id)
    assert _names(a.consumers) == ["b", "head"]


def test_model_inputs_and_outputs_are_frozen():
    graph = ChannelGraph(residual_model())
    assert _group_made_by(graph, "head").frozen == "model output"
    assert [g.frozen for g in graph.groups if not g.producers][0] == "model input"


def test_unknown_layer_freezes_the_group_it_touches_and_is_named():
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(8, 1, name="before")(inputs)
    x = keras.layers.Reshape((4, 4, 8), name="odd_reshape")(x)
    outputs = keras.layers.Conv2D(2, 1, name="after")(x)
    graph = ChannelGraph(keras.Model(inputs, outputs))
    assert "odd_reshape" in _group_made_by(graph, "before").frozen
    assert len(graph.unknown) == 1 and "odd_reshape (Reshape)" in graph.unknown[0]
    assert graph.free_groups() == []


def test_shared_layer_called_twice_ties_its_input_groups():
    inputs = keras.Input((4, 4, 3))
    left = keras.layers.Conv2D(8, 1, name="left")(inputs)
    right = keras.layers.Conv2D(8, 3, padding="same", name="right")(inputs)
    shared = keras.layers.Conv2D(4, 1, name="shared")
    outputs = keras.layers.Add()([shared(left), shared(right)])
    graph = ChannelGraph(keras.Model(inputs, outputs))
    left_group = _group_made_by(graph, "left")
    assert _names(left_group.producers) == ["left", "right"]
    assert _names(left_group.consumers) == ["shared"]


def test_nested_model_is_flattened_into_one_graph():
    inner = residual_model()
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(3, name="new_head")(inner(inputs))
    graph = ChannelGraph(keras.Model(inputs, outputs))
    head = _group_made_by(graph, "head")
    assert head.frozen is None  # no longer the model's output
    assert [c.path for c in head.consumers] == [("new_head",)]
    assert ("residual", "stem") in [c.path for c in graph.calls]


def test_nested_model_called_twice_is_rejected_clearly():
    inner = residual_model()
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Add()([inner(inputs), inner(inputs)])
    with pytest.raises(ValueError, match="'residual' is called more than once"):
        ChannelGraph(keras.Model(inputs, outputs))


def test_subclassed_model_is_rejected_with_a_clear_error():
    class Tiny(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Tiny()
    model(keras.ops.zeros((1, 3)))
    with pytest.raises(TypeError, match="functional or Sequential.*Received: model of class Tiny"):
        ChannelGraph(model)


def test_unbuilt_sequential_asks_for_an_input_shape():
    with pytest.raises(ValueError, match="keras.Input"):
        ChannelGraph(keras.Sequential([keras.layers.Dense(2)]))
