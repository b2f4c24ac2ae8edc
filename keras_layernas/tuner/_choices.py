"""Searchable layers as KerasTuner ``hp.Choice`` hyperparameters.

KerasTuner's gRPC ``Trial`` message carries only hyperparameter values, so the
architecture must be exactly those values: one ``hp.Choice`` per searchable
layer, named after the layer, holding the layer's encoded options.
"""
from __future__ import annotations

from typing import Any

import keras_tuner

from keras_layernas.surgery.space import SearchLayer, SearchSpace


def choice_values(layer: SearchLayer) -> list:
    """The ``hp.Choice`` values of ``layer``: its options, encoded.

    Raises:
        ValueError: two options encode to the same value, or the encoded values
            mix types (``hp.Choice`` holds a single type); either would make a
            trial's hyperparameters ambiguous as an architecture.
    """
    values = [layer.encode(option) for option in layer.options]
    if len(set(values)) != len(values):
        raise ValueError(
            f"Options of searchable layer {layer.name!r} must encode to distinct "
            f"hp.Choice values. Received: options={list(layer.options)} encoded as "
            f"{values}. Give each option a distinct value or encoding."
        )
    types = sorted({type(value).__name__ for value in values})
    if len(types) > 1:
        raise ValueError(
            f"Options of searchable layer {layer.name!r} must encode to one type "
            f"(hp.Choice holds int, float, str or bool, not a mix). Received: "
            f"encoded values {values} of types {types}. Encode them all as str."
        )
    return values


def declare_architecture(hp: keras_tuner.HyperParameters, space: SearchSpace) -> tuple:
    """Register one ``hp.Choice`` per searchable layer and return the chosen arch.

    Call it from your own ``build(hp)`` to search a space with LayerNASOracle;
    the oracle declares the same choices, so the names and values agree.

    Args:
        hp: the trial's hyperparameters.
        space: the search space the oracle searches.

    Returns:
        The architecture (one decoded option per searchable layer) that
        ``hp`` holds, or the base architecture when ``hp`` holds no values yet.

    Example:
        >>> import keras_tuner
        >>> from keras_layernas.surgery import SearchSpace
        >>> space = SearchSpace.from_options({"conv1": [32, 16]}, lambda v: v["conv1"])
        >>> hp = keras_tuner.HyperParameters()
        >>> declare_architecture(hp, space)
        (32,)
        >>> hp.values["conv1"] = 16
        >>> declare_architecture(hp, space)
        (16,)
    """
    encoded: dict[str, Any] = {}
    for layer in space.layers:
        values = choice_values(layer)
        encoded[layer.name] = hp.Choice(layer.name, values, default=values[0])
    return space.decode(encoded)
