"""Walk a Keras model's call graph, one entry per layer call, with shapes.

The walk follows the graph's nodes rather than ``model.layers`` so that a layer
called twice shows up twice, and it descends into nested functional and
Sequential models. Shapes are the ones recorded when the model was built; where
the caller asks for another input size (or a nested model was built with an
unknown one), the affected calls are re-traced with the layers' own
``compute_output_shape`` (or ``compute_output_spec``), which derive shapes
without running or mutating the model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence

import keras

Shape = tuple


class ShapeSpec(NamedTuple):
    """A re-traced tensor: just what the walk needs, far cheaper than a KerasTensor."""

    shape: Shape
    dtype: str


def _as_keras_tensor(tensor):
    """The KerasTensor that ``compute_output_spec`` needs, from either kind of tensor."""
    if isinstance(tensor, ShapeSpec):
        return keras.KerasTensor(tensor.shape, dtype=tensor.dtype)
    return tensor


@dataclass(frozen=True)
class LayerCall:
    """One call of one layer in the (flattened) graph.

    Attributes:
        name: the layer name, prefixed by the nested models it lives in
            (``"wrapper_inner/conv"``), with ``"#k"`` for its k-th extra call.
        layer: the called layer (or plain op, e.g. the ``Add`` of ``x + y``).
        input_shapes: shapes of its tensor inputs at the profiled size.
        output_shapes: shapes of its outputs at the profiled size.
        first_call: False for the second and later calls of a shared layer,
            whose weights were already seen.
    """

    name: str
    layer: keras.Operation
    input_shapes: tuple[Shape, ...]
    output_shapes: tuple[Shape, ...]
    first_call: bool


def graph_of(model: keras.Operation) -> Optional[keras.Model]:
    """The functional graph behind ``model``, or None for a plain layer.

    Sequential models keep theirs in ``_functional`` once built; functional
    models are their own graph. Subclassed models have no graph and are
    treated as opaque layers.
    """
    if isinstance(model, keras.Sequential):
        return model._functional
    if isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth"):
        return model
    return None


def trace_calls(
    model: keras.Model, input_shapes: Optional[Sequence[Shape]] = None
) -> list[LayerCall]:
    """Every layer call of ``model`` in execution order.

    Args:
        model: a built functional or Sequential model.
        input_shapes: one full shape (batch dimension included) per model
            input, or None to keep the shapes the model was built with.

    Returns:
        The calls, nested models flattened into their layers.

    Raises:
        ValueError: if ``model`` has no call graph (subclassed or unbuilt), or a
            layer cannot take the requested input size.
    """
    graph = graph_of(model)
    if graph is None:
        hint = (
            "build it first, e.g. model.build((None, 224, 224, 3))"
            if isinstance(model, keras.Sequential)
            else "rebuild it with the functional API (keras.Model(inputs, outputs))"
        )
        raise ValueError(
            "The profiler needs a functional or built Sequential model, whose call "
            f"graph it can read; {hint}. Received: model of type {type(model).__name__}"
        )
    if input_shapes is None:
        inputs = list(graph.inputs)
    else:
        inputs = [ShapeSpec(tuple(shape), x.dtype) for x, shape in zip(graph.inputs, input_shapes)]
    calls: list[LayerCall] = []
    _walk(graph, inputs, prefix="", calls=calls, times_called={})
    return calls


def _walk(graph, inputs: list, prefix: str, calls: list[LayerCall], times_called: dict) -> list:
    """Append the calls of ``graph`` fed with ``inputs``; return its outputs."""
    # recorded tensor id -> tensor at the profiled size (the recorded one
    # itself while shapes agree, which keeps the common case cheap)
    tensors = {id(recorded): actual for recorded, actual in zip(graph.inputs, inputs)}
    nodes_by_depth = graph._nodes_by_depth
    for depth in sorted(nodes_by_depth, reverse=True):
        for node in nodes_by_depth[depth]:
            layer = node.operation
            if layer is None or node.is_input:
                continue
            actual_inputs = [tensors[id(x)] for x in node.input_tensors]
            inner = graph_of(layer)
            if inner is not None:
                outputs = _walk(inner, actual_inputs, f"{prefix}{layer.name}/", calls, times_called)
            else:
                outputs = _layer_outputs(node, actual_inputs)
                count = times_called.get(id(layer), 0)
                times_called[id(layer)] = count + 1
                calls.append(
                    LayerCall(
                        name=prefix + layer.name + (f"#{count}" if count else ""),
                        layer=layer,
                        input_shapes=tuple(tuple(x.shape) for x in actual_inputs),
                        output_shapes=tuple(tuple(y.shape) for y in outputs),
                        first_call=count == 0,
                    )
                )
            for recorded, actual in zip(node.outputs, outputs):
                tensors[id(recorded)] = actual
    return [tensors[id(x)] for x in graph.outputs]


def _layer_outputs(node, actual_inputs: list) -> list:
    """Outputs of a leaf call: recorded ones if the input shapes are unchanged."""
    if all(a.shape == r.shape for a, r in zip(actual_inputs, node.input_tensors)):
        return node.outputs
    layer = node.operation
    shapes = [tuple(x.shape) for x in actual_inputs]
    try:
        _check_input_spec(layer, shapes)
        shape = _output_shape_by_rule(layer, node, shapes)
        if shape is not None:
            return [ShapeSpec(shape, layer.compute_dtype)]
        as_tensors = {id(r): _as_keras_tensor(a) for r, a in zip(node.input_tensors, actual_inputs)}
        args, kwargs = node.arguments.fill_in(as_tensors)
        spec = layer.compute_output_spec(*args, **kwargs)
    except Exception as error:  # any layer may reject a shape in its own way
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) cannot take the requested "
            f"input size: it received shapes {shapes} ({error}). Pass an input_shape "
            "the model supports, e.g. the one it was built with."
        ) from error
    return keras.tree.flatten(spec)


def _output_shape_by_rule(layer, node, shapes: list[Shape]) -> Optional[Shape]:
    """The output shape from the layer's ``compute_output_shape``, where that is exact.

    For a call on one tensor or one flat list of tensors (merge layers), with no
    other arguments than None defaults (BatchNormalization records mask=None),
    this equals ``compute_output_spec`` without its costly per-call argument
    binding and tracing. Other calls return None and take the general path.
    """
    args, kwargs = node.arguments.args, node.arguments.kwargs
    if len(args) != 1 or any(value is not None for value in kwargs.values()):
        return None
    if not _has_shape_rule(layer):
        return None
    (arg,) = args
    if isinstance(arg, keras.KerasTensor):
        shape_arg = shapes[0]
    elif isinstance(arg, (list, tuple)) and len(arg) == len(shapes) and all(
        isinstance(item, keras.KerasTensor) for item in arg
    ):
        shape_arg = list(shapes)
    else:
        return None
    shape = layer.compute_output_shape(shape_arg)
    return tuple(shape) if _is_single_shape(shape) else None


def _has_shape_rule(layer) -> bool:
    """Whether ``layer`` overrides ``compute_output_shape`` with its own rule.

    Keras marks the base-class placeholder ``_is_default``; layers without their
    own rule must be traced through ``compute_output_spec`` instead.
    """
    return isinstance(layer, keras.layers.Layer) and not getattr(
        layer.compute_output_shape, "_is_default", False
    )


def _is_single_shape(shape) -> bool:
    """True for one shape such as ``(None, 7, 7, 32)``, False for nested shapes."""
    return isinstance(shape, (tuple, list)) and all(
        isinstance(d, int) or d is None for d in shape
    )


def _check_input_spec(layer, shapes: list[Shape]) -> None:
    """Reject shapes that contradict a built layer's weights.

    ``compute_output_spec`` alone would accept, say, 75 features into a Dense
    built for 48 (it only derives the output), and the MAdds would be counted
    for a model that cannot run. A built layer's ``input_spec`` pins those sizes.
    """
    specs = keras.tree.flatten(getattr(layer, "input_spec", None) or [])
    for spec, shape in zip(specs, shapes):
        if spec.ndim is not None and len(shape) != spec.ndim:
            raise ValueError(f"expected rank {spec.ndim}, got rank {len(shape)}")
        for axis, size in (spec.axes or {}).items():
            if size is not None and shape[axis] is not None and shape[axis] != size:
                raise ValueError(f"expected size {size} on axis {axis}, got {shape[axis]}")
