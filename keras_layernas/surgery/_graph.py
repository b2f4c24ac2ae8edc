"""Channel-dependency graph of a Keras 3 functional/Sequential model.

Walks the model's call graph (nested models flattened, shared layers once per
call) and unions channel axes that must move together: the inputs of an
``Add``/``Multiply`` (residuals, squeeze-excite gating), everything a
pass-through layer (BatchNorm, activations, pooling, padding, depthwise conv)
touches. What comes out is a list of :class:`CoupledGroup` objects: for each,
which layers produce those channels, which consume them as input channels and
which carry per-channel weights. The search space and the materializer only
read these groups; they never walk Keras internals themselves.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import keras
import numpy as np

Path = tuple  # (outer model layer name, ..., layer name)

# Layers that keep the channel axis untouched and own no per-channel weights.
_PASS_THROUGH_LAYERS = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.Softmax,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.ActivityRegularization,
    keras.layers.Identity,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.Cropping1D,
    keras.layers.Cropping2D,
    keras.layers.Cropping3D,
    keras.layers.UpSampling1D,
    keras.layers.UpSampling2D,
    keras.layers.UpSampling3D,
)
# Layers whose inputs (all of the same width) share one channel axis.
_ELEMENTWISE_LAYERS = (
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
)
# Non-layer operations (``x + 3.0``, ``keras.ops.relu(x)``) recorded in the graph.
_ELEMENTWISE_OPS = {"Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum"}
_UNARY_OPS = {
    "Relu", "Relu6", "Sigmoid", "HardSigmoid", "HardSilu", "Silu", "Gelu", "Elu", "Selu",
    "LeakyRelu", "Softplus", "Softsign", "Tanh", "Abs", "Negative", "Square", "Sqrt", "Exp",
    "Cast", "Clip",
}
_CONVS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_ACTIVATIONS = (
    keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU,
)


class Layout(NamedTuple):
    """How a tensor's channel axis is made of coupled groups.

    ``segments`` are group ids laid end to end (a ``Concatenate`` makes more
    than one); ``repeat`` > 1 after a ``Flatten``: the channel block repeats
    once per flattened spatial position.
    """

    segments: tuple
    repeat: int = 1


@dataclass
class Call:
    """One call of one layer or operation, in topological order."""

    index: int
    op: Any
    path: Path
    inputs: list
    outputs: list
    input_shapes: list
    output_shapes: list
    scalar_constants: bool = True  # every non-tensor argument is a plain number
    role: str = "unknown"  # producer | follower | pass | concat | unknown


@dataclass
class CoupledGroup:
    """Channels that must be kept or dropped together, everywhere at once.

    Attributes:
        id: the group's id (index into ``ChannelGraph.groups``).
        width: channel count in the base model.
        producers: calls whose kernel's last axis makes these channels.
        consumers: calls that read these channels as kernel input channels.
        followers: calls with per-channel weights on these channels
            (BatchNorm, depthwise conv).
        passes: other calls that the channels flow through unchanged.
        frozen: why the width may not change, or ``None`` when it may.
    """

    id: int
    width: int
    producers: list = field(default_factory=list)
    consumers: list = field(default_factory=list)
    followers: list = field(default_factory=list)
    passes: list = field(default_factory=list)
    frozen: str | None = None

    @property
    def has_activation(self) -> bool:
        """Whether a nonlinearity runs on these channels (marks a block's inside)."""
        return any(
            isinstance(c.op, _ACTIVATIONS) or type(c.op).__name__ in _UNARY_OPS
            for c in self.passes
        )


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []
        self.width: list[int] = []
        self.frozen: list[str | None] = []

    def add(self, width: int, frozen: str | None = None) -> int:
        self.parent.append(len(self.parent))
        self.width.append(width)
        self.frozen.append(frozen)
        return len(self.parent) - 1

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a
            self.frozen[a] = self.frozen[a] or self.frozen[b]

    def freeze(self, x: int, reason: str) -> None:
        root = self.find(x)
        self.frozen[root] = self.frozen[root] or reason


def is_nested_model(op: Any) -> bool:
    """Functional and Sequential models used as layers get flattened."""
    return isinstance(op, keras.Sequential) or _is_functional(op)


def _is_functional(op: Any) -> bool:
    return isinstance(op, keras.Model) and hasattr(op, "_nodes_by_depth")


def check_graph_model(model: Any) -> None:
    """Reject what the analysis cannot walk, with a message saying what to pass.

    Raises:
        TypeError: ``model`` is not a Keras model, or is a subclassed model.
        ValueError: a Sequential model that has not been built yet.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            "Expected a keras.Model (functional or Sequential). "
            f"Received: model of type {type(model).__name__}."
        )
    if isinstance(model, keras.Sequential):
        if model._functional is None:
            raise ValueError(
                f"Sequential model {model.name!r} has no known input shape, so its "
                "graph cannot be walked. Start it with keras.Input(shape=...) or call "
                "model.build(input_shape). Received: an unbuilt Sequential model."
            )
        return
    if not _is_functional(model):
        raise TypeError(
            "A functional or Sequential Keras model is required: a subclassed model "
            "hides its graph in Python code, so channel dependencies cannot be read. "
            f"Received: model of class {type(model).__name__}. Rebuild it with "
            "keras.Model(inputs, outputs) or keras.Sequential."
        )


def _functional_of(model: Any) -> Any:
    return model._functional if isinstance(model, keras.Sequential) else model


def _shape(tensor: Any) -> tuple:
    return tuple(tensor.shape)


def _walk(model: Any, prefix: Path, alias: dict, calls: list, shapes: dict) -> None:
    """Append ``model``'s calls in topological order, flattening nested models."""
    graph = _functional_of(model)
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            op = node.operation
            if node.is_input or op is None or isinstance(op, keras.layers.InputLayer):
                continue
            inputs = [alias.get(id(t), id(t)) for t in node.arguments.keras_tensors]
            for t in node.arguments.keras_tensors:
                shapes.setdefault(alias.get(id(t), id(t)), _shape(t))
            if is_nested_model(op):
                check_graph_model(op)
                if any(c.path[: len(prefix) + 1] == prefix + (op.name,) for c in calls):
                    raise ValueError(
                        f"Nested model {op.name!r} is called more than once; its layers "
                        "would need the same channels at every call, which this analysis "
                        "does not handle. Received: a model that reuses a sub-model. "
                        "Call each sub-model once (build a separate copy for each use)."
                    )
                inner = _functional_of(op)
                for inner_in, outer in zip(inner.inputs, inputs):
                    alias[id(inner_in)] = outer
                _walk(op, prefix + (op.name,), alias, calls, shapes)
                for inner_out, outer_out in zip(inner.outputs, node.outputs):
                    alias[id(outer_out)] = alias.get(id(inner_out), id(inner_out))
                continue
            for t in node.outputs:
                shapes[id(t)] = _shape(t)
            calls.append(
                Call(
                    index=len(calls),
                    op=op,
                    path=prefix + (op.name,),
                    inputs=inputs,
                    outputs=[id(t) for t in node.outputs],
                    input_shapes=[shapes[i] for i in inputs],
                    output_shapes=[_shape(t) for t in node.outputs],
                    scalar_constants=_scalar_constants(node),
                )
            )


def _scalar_constants(node: Any) -> bool:
    """Whether an op's non-tensor arguments are scalars (``x + 3.0``, not ``x * array``)."""
    flat = node.arguments._flat_arguments
    return all(
        isinstance(a, keras.KerasTensor) or a is None or np.ndim(a) == 0 for a in flat
    )


def _channels_last(op: Any) -> bool:
    return getattr(op, "data_format", "channels_last") != "channels_first"


def _last_axis(axis: Any, rank: int) -> bool:
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    return len(axes) == 1 and axes[0] in (-1, rank - 1)


def _is_op(op: Any, names: set) -> bool:
    """A bare ``keras.ops`` operation (not a layer) of one of these class names."""
    return type(op).__name__ in names and not isinstance(op, keras.layers.Layer)


def _scalar_rescaling(op: Any) -> bool:
    return np.ndim(op.scale) == 0 and np.ndim(op.offset) == 0


class ChannelGraph:
    """The coupled channel groups of a model, plus the per-call shape table.

    Example:
        >>> import keras
        >>> inputs = keras.Input((8, 8, 3))
        >>> x = keras.layers.Conv2D(16, 3, padding="same", name="a")(inputs)
        >>> y = keras.layers.Conv2D(16, 1, name="b")(x)
        >>> out = keras.layers.Conv2D(4, 1, name="c")(keras.layers.Add()([x, y]))
        >>> graph = ChannelGraph(keras.Model(inputs, out))
        >>> [sorted(c.path[-1] for c in g.producers) for g in graph.free_groups()]
        [['a', 'b']]
    """

    def __init__(self, model: Any):
        check_graph_model(model)
        self.model = model
        self.calls: list[Call] = []
        self.shapes: dict[int, tuple] = {}
        alias: dict[int, int] = {}
        graph = _functional_of(model)
        _walk(model, (), alias, self.calls, self.shapes)
        self._uf = _UnionFind()
        self.layouts: dict[int, Layout] = {}
        self.unknown: list[str] = []
        self._consumer_count: dict[int, int] = {}
        for tensor in graph.inputs:
            tid = alias.get(id(tensor), id(tensor))
            self.layouts[tid] = Layout((self._uf.add(_shape(tensor)[-1], "model input"),))
        self._producer_of: dict[int, Call] = {}
        self._consumers: dict[int, list[Call]] = {}
        for call in self.calls:
            for tid in call.inputs:
                self._consumer_count[tid] = self._consumer_count.get(tid, 0) + 1
                self._consumers.setdefault(tid, []).append(call)
            for tid in call.outputs:
                self._producer_of[tid] = call
            self._visit(call)
        for tensor in graph.outputs:
            tid = alias.get(id(tensor), id(tensor))
            self._freeze_layout(self.layouts[tid], "model output")
        self.output_ids = [alias.get(id(t), id(t)) for t in graph.outputs]
        self._tie_shared_layers()
        self.groups, self._root_to_group = self._collect_groups()

    # -- building -----------------------------------------------------------------
    def _new(self, width: int, frozen: str | None = None) -> Layout:
        return Layout((self._uf.add(width, frozen),))

    def _freeze_layout(self, layout: Layout, reason: str) -> None:
        for element in layout.segments:
            self._uf.freeze(element, reason)

    def _width(self, layout: Layout) -> int:
        return sum(self._uf.width[e] for e in layout.segments) * layout.repeat

    def _visit(self, call: Call) -> None:
        op = call.op
        ins = [self.layouts[t] for t in call.inputs]
        outs = self._outputs_for(call, op, ins)
        for tid, layout in zip(call.outputs, outs):
            self.layouts[tid] = layout

    def _outputs_for(self, call: Call, op: Any, ins: list) -> list:
        rank_out = len(call.output_shapes[0]) if call.output_shapes else 0
        single = len(ins) == 1 and len(call.outputs) == 1
        if not _channels_last(op):
            return self._unknown(call, ins, "channels_first layer")
        if isinstance(op, _CONVS) and single and ins[0].repeat == 1:
            if getattr(op, "groups", 1) != 1:
                return self._unknown(call, ins, "grouped convolution")
            call.role = "producer"
            return [self._new(op.filters)]
        if isinstance(op, keras.layers.Dense) and single:
            call.role = "producer"
            return [self._new(op.units)]
        if isinstance(op, _DEPTHWISE) and single and ins[0].repeat == 1:
            if op.depth_multiplier != 1:
                return self._unknown(call, ins, "depth_multiplier != 1")
            call.role = "follower"
            return [ins[0]]
        if isinstance(op, keras.layers.BatchNormalization) and single:
            if not _last_axis(op.axis, rank_out):
                return self._unknown(call, ins, "BatchNormalization not on the last axis")
            call.role = "follower"
            return [ins[0]]
        if single and (
            isinstance(op, _PASS_THROUGH_LAYERS)
            or (isinstance(op, keras.layers.Rescaling) and _scalar_rescaling(op))
            or (_is_op(op, _UNARY_OPS) and call.scalar_constants)
            or (_is_op(op, _ELEMENTWISE_OPS) and call.scalar_constants)
        ):
            call.role = "pass"
            return [ins[0]]
        if isinstance(op, _ELEMENTWISE_LAYERS) or (
            _is_op(op, _ELEMENTWISE_OPS) and call.scalar_constants
        ):
            return self._elementwise(call, ins)
        if isinstance(op, keras.layers.Concatenate) and len(call.outputs) == 1:
            if not _last_axis(op.axis, rank_out) or any(l.repeat != 1 for l in ins):
                return self._unknown(call, ins, "concatenation off the channel axis")
            call.role = "concat"
            return [Layout(sum((l.segments for l in ins), ()))]
        if isinstance(op, keras.layers.Flatten) and single:
            spatial = call.input_shapes[0][1:-1]
            if any(d is None for d in spatial):
                return self._unknown(call, ins, "Flatten of an unknown spatial size")
            call.role = "pass"
            return [Layout(ins[0].segments, ins[0].repeat * math.prod(spatial))]
        return self._unknown(call, ins, "unsupported layer type")

    def _elementwise(self, call: Call, ins: list) -> list:
        out_width = call.output_shapes[0][-1]
        full = [l for l in ins if self._width(l) == out_width]
        broadcast = [l for l in ins if self._width(l) != out_width]
        if any(self._width(l) != 1 for l in broadcast) or not full:
            return self._unknown(call, ins, "inputs of different widths")
        first = full[0]
        for other in full[1:]:
            if len(other.segments) != len(first.segments) or other.repeat != first.repeat:
                return self._unknown(call, ins, "inputs concatenated differently")
            for a, b in zip(first.segments, other.segments):
                if self._uf.width[a] != self._uf.width[b]:
                    return self._unknown(call, ins, "inputs concatenated differently")
        for other in full[1:]:
            for a, b in zip(first.segments, other.segments):
                self._uf.union(a, b)
        for layout in broadcast:
            self._freeze_layout(layout, f"broadcast into {call.path[-1]!r}")
        call.role = "pass"
        return [first]

    def _unknown(self, call: Call, ins: list, why: str) -> list:
        touches_free = any(
            self._uf.frozen[self._uf.find(e)] is None for l in ins for e in l.segments
        )
        reason = f"{why}: {'/'.join(call.path)} ({type(call.op).__name__})"
        for layout in ins:
            self._freeze_layout(layout, reason)
        if touches_free:
            self.unknown.append(reason)
        call.role = "unknown"
        return [self._new(shape[-1] if shape else 1, reason) for shape in call.output_shapes]

    def _tie_shared_layers(self) -> None:
        """A layer called twice has one set of weights: its channels must match."""
        first_call: dict[int, Call] = {}
        for call in self.calls:
            if call.role not in ("producer", "follower"):
                continue
            earlier = first_call.setdefault(id(call.op), call)
            if earlier is call:
                continue
            pairs = ((earlier.inputs[0], call.inputs[0]), (earlier.outputs[0], call.outputs[0]))
            for a_id, b_id in pairs:
                a, b = self.layouts[a_id], self.layouts[b_id]
                if a.segments == b.segments:
                    continue
                if len(a.segments) == len(b.segments) == 1:
                    self._uf.union(a.segments[0], b.segments[0])
                else:
                    self._freeze_layout(a, f"shared layer {call.path[-1]!r}")
                    self._freeze_layout(b, f"shared layer {call.path[-1]!r}")

    def _collect_groups(self) -> tuple[list[CoupledGroup], dict[int, int]]:
        roots: dict[int, int] = {}
        groups: list[CoupledGroup] = []
        for element in range(len(self._uf.parent)):
            root = self._uf.find(element)
            if root not in roots:
                roots[root] = len(groups)
                groups.append(
                    CoupledGroup(len(groups), self._uf.width[root], frozen=self._uf.frozen[root])
                )
        seen: dict[tuple, set] = {}
        for call in self.calls:
            role = call.role
            in_groups = {roots[self._uf.find(e)] for t in call.inputs for e in self._segments(t)}
            out_groups = {roots[self._uf.find(e)] for t in call.outputs for e in self._segments(t)}
            buckets = []
            if role == "producer":
                buckets = [("producers", out_groups), ("consumers", in_groups)]
            elif role == "follower":
                buckets = [("followers", in_groups)]
            elif role in ("pass", "concat"):
                buckets = [("passes", in_groups)]
            for attr, ids in buckets:
                for gid in ids:
                    key = (attr, gid)
                    if id(call.op) in seen.setdefault(key, set()) and attr != "passes":
                        continue  # a shared layer is listed once per group
                    seen[key].add(id(call.op))
                    getattr(groups[gid], attr).append(call)
        return groups, roots

    def _segments(self, tensor_id: int) -> tuple:
        return self.layouts[tensor_id].segments

    # -- queries --------------------------------------------------------------------
    def group_of(self, element: int) -> CoupledGroup:
        """The coupled group holding union-find ``element``."""
        return self.groups[self._root_to_group[self._uf.find(element)]]

    def layout_groups(self, tensor_id: int) -> tuple:
        """Group ids of a tensor's channel segments, in order."""
        return tuple(self.group_of(e).id for e in self.layouts[tensor_id].segments)

    def repeat(self, tensor_id: int) -> int:
        return self.layouts[tensor_id].repeat

    def free_groups(self) -> list[CoupledGroup]:
        """Groups whose width may change: not frozen and made by some layer."""
        return [g for g in self.groups if g.frozen is None and g.producers]

    def call_count(self, op: Any) -> int:
        """How many times ``op`` is called (a shared layer's kernel cannot change alone)."""
        return sum(call.op is op for call in self.calls)

    def consumer_count(self, tensor_id: int) -> int:
        """How many calls read ``tensor_id`` (a padding feeding one conv may change)."""
        return self._consumer_count.get(tensor_id, 0)

    def gates(self, tensor_id: int) -> bool:
        """Whether ``tensor_id`` only ever multiplies other channels (a squeeze-excite gate).

        Follows single-input pass-through calls (``x + 3``, ReLU6, ``x / 6``)
        to the two-input ``Multiply`` they end in.
        """
        consumers = self._consumers.get(tensor_id, [])
        if not consumers:
            return False
        for call in consumers:
            tensors = len(call.inputs)
            if call.role == "pass" and tensors == 1:
                if not self.gates(call.outputs[0]):
                    return False
            elif not (tensors > 1 and type(call.op).__name__ == "Multiply"):
                return False
        return True

    def producer_call_of(self, tensor_id: int) -> Call | None:
        """The call whose output is ``tensor_id``."""
        return self._producer_of.get(tensor_id)
