"""Rebuild a Keras model from its config with new widths/kernels, then copy weights.

Only configs and arrays cross this module's boundary: the caller says which
layer (by path) gets which config values and how each layer's weights are
sliced; this module knows how Keras configs nest and how each weight array is
laid out.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

import keras
import numpy as np

Path = tuple

_MODEL_CLASSES = ("Functional", "Sequential", "Model")


def layer_configs(config: Mapping, prefix: Path = ()) -> dict:
    """``{layer path: layer entry}`` of a model config, nested models included."""
    found = {}
    for entry in config["layers"]:
        path = prefix + (entry["config"]["name"],)
        found[path] = entry
        if entry.get("class_name") in _MODEL_CLASSES and "layers" in entry["config"]:
            found.update(layer_configs(entry["config"], path))
    return found


def iter_layers(model: Any, prefix: Path = ()) -> dict:
    """``{layer path: layer}`` of a built model, nested models flattened."""
    found = {}
    for layer in model.layers:
        path = prefix + (layer.name,)
        found[path] = layer
        if isinstance(layer, keras.Model):
            found.update(iter_layers(layer, path))
    return found


def _drop_build_configs(config: Mapping) -> None:
    # A stale build_config would build a layer at its old input width before
    # the graph calls it on the new one.
    for entry in config["layers"]:
        entry.pop("build_config", None)
        if entry.get("class_name") in _MODEL_CLASSES and "layers" in entry["config"]:
            _drop_build_configs(entry["config"])


def set_input_shape(config: Mapping, input_shape: tuple) -> None:
    """Give the (single) top-level input a fixed shape, in place."""
    entries = [e for e in config["layers"] if e.get("class_name") == "InputLayer"]
    if len(entries) != 1:
        raise ValueError(
            "input_shape= applies to single-input models only. "
            f"Received: a model with {len(entries)} inputs."
        )
    entries[0]["config"]["batch_shape"] = (None, *input_shape)
    config.pop("build_input_shape", None)


def rebuild(model: Any, base_config: Mapping, edits: Mapping[Path, Mapping], input_shape=None):
    """A new, unbuilt-weights model from ``base_config`` with per-layer config edits.

    Args:
        model: the model ``base_config`` came from (its class rebuilds it).
        base_config: ``model.get_config()``; deep-copied here, never modified,
            because ``from_config`` consumes what it is given.
        edits: ``{layer path: {config key: new value}}``.
        input_shape: optional fixed input shape (without the batch axis).

    Returns:
        The rebuilt model with freshly initialized weights.
    """
    config = copy.deepcopy(base_config)
    entries = layer_configs(config)
    for path, changes in edits.items():
        entries[path]["config"].update(changes)
    _drop_build_configs(config)
    if input_shape is not None:
        set_input_shape(config, input_shape)
    # The model's own layer classes rebuild it even when they are not
    # registered: they are in memory already, nothing is loaded from outside.
    with keras.saving.custom_object_scope(_own_classes(model)):
        return type(model).from_config(config)


def _own_classes(model: Any) -> dict[str, type]:
    """``{name: class}`` of the layers of ``model`` (nested too) that are not Keras' own."""
    classes = {}
    for layer in model.layers:
        kind = type(layer)
        if not kind.__module__.startswith("keras."):
            classes[kind.__name__] = kind
            classes[keras.saving.get_registered_name(kind)] = kind
        if isinstance(layer, keras.Model):
            classes.update(_own_classes(layer))
    return classes


@dataclass(frozen=True)
class WeightSlice:
    """How one layer's weights shrink.

    Attributes:
        kind: ``"conv"`` (kernel ``(..., in, out)``), ``"dense"``,
            ``"depthwise"`` (kernel ``(..., channels, multiplier)``) or
            ``"channel"`` (every weight is one value per channel: BatchNorm).
        in_index: input channels kept (``None``: all).
        out_index: output channels kept (``None``: all).
        kernel_size: new spatial kernel extent for a depthwise conv, or ``None``.
    """

    kind: str
    in_index: np.ndarray | None = None
    out_index: np.ndarray | None = None
    kernel_size: int | None = None


def _take(array: np.ndarray, index: np.ndarray | None, axis: int) -> np.ndarray:
    return array if index is None else np.take(array, index, axis=axis)


def resize_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """Crop the centre of (or zero-pad around) the spatial axes of a depthwise kernel.

    A kernel's centre tap lines up with the output position, so keeping the
    centre keeps what the trained filter looks at most closely.

    Example:
        >>> k = np.arange(25.0).reshape(5, 5, 1, 1)
        >>> resize_kernel(k, 3)[..., 0, 0].tolist()[0]
        [6.0, 7.0, 8.0]
        >>> resize_kernel(k[1:4, 1:4], 5)[..., 0, 0].tolist()[0]
        [0.0, 0.0, 0.0, 0.0, 0.0]
    """
    spatial = kernel.ndim - 2
    old = kernel.shape[0]
    if size == old:
        return kernel
    if size < old:
        start = (old - size) // 2
        return kernel[(slice(start, start + size),) * spatial]
    before = (size - old) // 2
    pad = [(before, size - old - before)] * spatial + [(0, 0), (0, 0)]
    return np.pad(kernel, pad)


def slice_weights(weights: list, plan: WeightSlice) -> list:
    """The weights of a layer after keeping ``plan``'s channels."""
    if plan.kind == "channel":
        return [_take(w, plan.in_index, 0) for w in weights]
    kernel, *rest = weights
    if plan.kind == "depthwise":
        kernel = _take(kernel, plan.in_index, kernel.ndim - 2)
        if plan.kernel_size is not None:
            kernel = resize_kernel(kernel, plan.kernel_size)
        return [kernel] + [_take(b, plan.in_index, 0) for b in rest]
    kernel = _take(_take(kernel, plan.in_index, kernel.ndim - 2), plan.out_index, kernel.ndim - 1)
    return [kernel] + [_take(b, plan.out_index, 0) for b in rest]


def transfer_weights(
    source: Mapping[Path, list], target: Any, plans: Mapping[Path, WeightSlice]
) -> None:
    """Copy ``source`` weights (``{path: arrays}``) into ``target``, sliced per ``plans``."""
    for path, layer in iter_layers(target).items():
        if not layer.weights or isinstance(layer, keras.Model):
            continue
        arrays = source[path]
        plan = plans.get(path)
        layer.set_weights(slice_weights(arrays, plan) if plan is not None else arrays)
