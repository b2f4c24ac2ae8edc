"""Small models and checks shared by the surgery tests."""
from __future__ import annotations

import random

import keras
import numpy as np

from keras_layernas.surgery._materialize import iter_layers


def random_archs(space, count: int, seed: int = 0) -> list[tuple]:
    """The narrowest architecture (last option everywhere) plus ``count`` random ones."""
    rng = random.Random(seed)
    narrowest = tuple(layer.options[-1] for layer in space.layers)
    return [narrowest] + [tuple(rng.choice(l.options) for l in space.layers) for _ in range(count)]


def random_inputs(model, batch: int = 2, seed: int = 0) -> np.ndarray:
    shape = (batch, *tuple(model.inputs[0].shape)[1:])
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32") * 127


def max_abs_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def stale_shapes(model) -> list[str]:
    """Tensor shapes recorded in ``model``'s config that differ from the live graph."""
    problems = []

    def check(level_model, config):
        sequential = isinstance(level_model, keras.Sequential)
        graph = level_model._functional if sequential else level_model
        operations = {op.name: op for op in graph.operations}  # ops too (x + 3.0)
        for entry in config["layers"]:
            for node in entry.get("inbound_nodes", []):
                for tensor in _keras_tensors(node):
                    name, node_index, tensor_index = tensor["config"]["keras_history"]
                    producer = operations[name]
                    live = producer._inbound_nodes[node_index].outputs[tensor_index].shape
                    if tuple(tensor["config"]["shape"]) != tuple(live):
                        recorded = tensor["config"]["shape"]
                        problems.append(f"{entry['name']} <- {name}: {recorded} vs {live}")
            if entry["class_name"] in ("Functional", "Sequential") and "layers" in entry["config"]:
                check(operations[entry["config"]["name"]], entry["config"])

    check(model, model.get_config())
    for path, layer in iter_layers(model).items():
        build = layer.get_build_config() if hasattr(layer, "get_build_config") else None
        if build and build.get("input_shape") is not None and len(layer._inbound_nodes) == 1:
            tensors = layer._inbound_nodes[0].arguments.keras_tensors
            recorded = build["input_shape"]
            if len(tensors) == 1:
                live, recorded = tuple(tensors[0].shape), tuple(recorded)
            else:
                live, recorded = [tuple(t.shape) for t in tensors], [tuple(s) for s in recorded]
            if recorded != live:
                problems.append(f"{'/'.join(path)} build_config {build['input_shape']} vs {live}")
    return problems


def _keras_tensors(structure):
    if isinstance(structure, dict):
        if structure.get("class_name") == "__keras_tensor__":
            yield structure
        else:
            for value in structure.values():
                yield from _keras_tensors(value)
    elif isinstance(structure, (list, tuple)):
        for value in structure:
            yield from _keras_tensors(value)


def residual_model() -> keras.Model:
    """stem conv -> (expand, depthwise, project) + residual -> head conv."""
    inputs = keras.Input((8, 8, 3))
    stem = keras.layers.Conv2D(16, 3, padding="same", name="stem")(inputs)
    x = keras.layers.Conv2D(32, 1, name="expand")(stem)
    x = keras.layers.BatchNormalization(name="expand_bn")(x)
    x = keras.layers.ReLU(6.0, name="expand_relu")(x)
    x = keras.layers.DepthwiseConv2D(5, padding="same", name="depthwise")(x)
    x = keras.layers.Conv2D(16, 1, name="project")(x)
    x = keras.layers.Add(name="add")([stem, x])
    outputs = keras.layers.Conv2D(4, 1, name="head")(x)
    return keras.Model(inputs, outputs, name="residual")


def squeeze_excite_model() -> keras.Model:
    """expand -> depthwise -> squeeze-excite (MobileNetV3 style) -> project."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(32, 1, name="expand")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name="pool")(x)
    s = keras.layers.Conv2D(8, 1, name="se_reduce")(s)
    s = keras.layers.ReLU(name="se_relu")(s)
    s = keras.layers.Conv2D(32, 1, name="se_expand")(s)
    s = keras.layers.ReLU(6.0)(s + 3.0) * (1.0 / 6.0)
    x = keras.layers.Multiply(name="se_mul")([x, s])
    outputs = keras.layers.Conv2D(4, 1, name="project")(x)
    return keras.Model(inputs, outputs, name="squeeze_excite")


def concat_model() -> keras.Model:
    """Two branches concatenated on the channel axis, then a 1x1 conv."""
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(16, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(24, 1, name="b")(a)
    x = keras.layers.Concatenate(name="concat")([a, b])
    x = keras.layers.BatchNormalization(name="bn")(x)
    outputs = keras.layers.Conv2D(4, 1, name="head")(x)
    return keras.Model(inputs, outputs, name="concat")
