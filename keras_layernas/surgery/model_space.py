"""The LayerNAS search space of an existing Keras model, its cost and its builder.

``space_parts`` (behind ``SearchSpace.from_model``) turns the coupled channel groups of
:mod:`keras_layernas.surgery._graph` into searchable layers (paper, Appendix E.3
and H):

* ``block_filter``: one virtual layer per residual group (several producers
  tied by ``Add``), searched before the layers it couples;
* ``kernel_expand`` / ``expand``: an inverted residual's expanded width, paired
  with its depthwise kernel when kernels are searched;
* ``width``: any other conv/dense whose output width is free;
* ``kernel``: a depthwise kernel whose width is not searched with it.

Squeeze-excite reduce widths follow their block's expanded width. The cost is
a precomputed sum of bilinear terms over the widths, so ``cost(arch)`` never
builds a model and uses the same formulas as ``count_madds``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import keras
import numpy as np

from keras_layernas.profiling import formulas
from keras_layernas.surgery import _materialize
from keras_layernas.surgery._build import Builder, padding_pairs
from keras_layernas.surgery._cost import CostModel
from keras_layernas.surgery._graph import _CONVS, _DEPTHWISE, Call, ChannelGraph, CoupledGroup
from keras_layernas.surgery.importance import Importance, l1_importance, named_layers
from keras_layernas.surgery.layer import Arch, SearchLayer

DEFAULT_WIDTH_FRACTIONS = (1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25)
DEFAULT_KERNEL_OPTIONS = (3, 5, 7)
WidthOptions = (
    None | Sequence[float] | Mapping[str, Sequence[int]] | Callable[[str, int], Sequence[int]]
)


class KernelWidth(NamedTuple):
    """A compound option: depthwise kernel size and expanded width.

    Its ``str`` (``"k5_w96"``) is what KerasTuner stores, since ``hp.Choice``
    takes only scalars.

    Example:
        >>> str(KernelWidth(5, 96))
        'k5_w96'
    """

    kernel: int
    width: int

    def __str__(self) -> str:
        return f"k{self.kernel}_w{self.width}"


def round_width(value: float, divisor: int = 8) -> int:
    """Nearest multiple of ``divisor``, never below it and never >10% under ``value``.

    This is MobileNet's ``make_divisible``, so derived widths (squeeze-excite)
    match what keras.applications itself would build.

    Example:
        >>> [round_width(v) for v in (3, 20, 37.5, 100)]
        [8, 24, 40, 104]
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def default_widths(base: int, fractions: Sequence[float] = DEFAULT_WIDTH_FRACTIONS) -> list[int]:
    """``base`` first, then fractions of it rounded to multiples of 8, widest first.

    Example:
        >>> default_widths(96)
        [96, 88, 72, 64, 48, 40, 24]
        >>> default_widths(8)
        [8]
    """
    widths = {max(8, int(base * f + 4) // 8 * 8) for f in fractions}
    return [base] + sorted((w for w in widths if w < base), reverse=True)


# ---------------------------------------------------------------------------------
@dataclass
class _Depthwise:
    """A depthwise call whose kernel size may be searched."""

    call: Call
    base: int
    options: tuple
    pad_call: Call | None  # explicit ZeroPadding that must follow the kernel


@dataclass
class _Entry:
    """One searchable layer before it is frozen into a ``SearchLayer``."""

    name: str
    kind: str
    options: tuple
    group: CoupledGroup | None
    depthwise: _Depthwise | None
    key: float
    members: tuple
    owners: tuple


class _ModelSpace:
    """The analysis of one model: its searchable layers and how their channels couple.

    ``_cost.CostModel`` turns it into the cost and features of an
    architecture, ``_build.Builder`` into the Keras model of one.
    """

    def __init__(
        self,
        model: Any,
        width_options: WidthOptions = None,
        kernel_options: Sequence[int] | None = DEFAULT_KERNEL_OPTIONS,
        exclude: Sequence[str] = (),
        input_shape: Sequence[int] | None = None,
    ):
        _check_rebuildable(model)
        self.model = _fixed_size_model(model, input_shape)
        self.graph = ChannelGraph(self.model)
        self._exclude = self._check_names("exclude", exclude)
        self._kernel_options = _check_kernels(kernel_options)
        self._width_options = width_options
        if self.graph.unknown:
            warnings.warn(
                "Channels touching these layers are kept at their width (layer type not "
                "understood by the channel analysis): " + "; ".join(self.graph.unknown),
                stacklevel=3,
            )
        self.parent = self._squeeze_excite_parents()
        self.entries = self._make_entries()
        if isinstance(width_options, Mapping):
            names = set(width_options) - {e.name for e in self.entries}
            self._check_names("width_options", sorted(names))
        if not self.entries:
            channels_first = sorted(name for name, layer in named_layers(self.model).items()
                                    if getattr(layer, "data_format", None) == "channels_first")
            hint = (
                f" Layers {channels_first} use data_format='channels_first', which the channel "
                "analysis does not follow: rebuild the model with data_format='channels_last' "
                "(the Keras default) and load its weights (a conv kernel's layout is the same "
                "in both)." if channels_first else ""
            )
            raise ValueError(
                f"Model {model.name!r} has no searchable layer: every channel group is "
                "fixed by the model's interface, excluded or frozen, and no depthwise "
                f"kernel can change.{hint} Received: exclude="
                f"{sorted(self._exclude)}, kernel_options={kernel_options}."
            )

    # -- analysis ---------------------------------------------------------------------
    def _check_names(self, argument: str, names: Any) -> set:
        """Layer names given by the user, checked so that a typo is not silently ignored."""
        if isinstance(names, str):
            raise TypeError(
                f"{argument} takes a sequence of layer names. Received: {argument}={names!r}; "
                f"use {argument}=({names!r},)."
            )
        known = {c.path[-1] for c in self.graph.calls} | {self._name(c) for c in self.graph.calls}
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(
                f"{argument} names layers the model does not have: {unknown}. "
                f"Expected names of layers in model {self.model.name!r}."
            )
        return set(names)

    def _name(self, call: Call) -> str:
        return "/".join(call.path)

    def _excluded(self, call: Call) -> bool:
        return call.path[-1] in self._exclude or self._name(call) in self._exclude

    def _squeeze_excite_parents(self) -> dict[int, int]:
        """``{reduce group: expanded group}`` for squeeze-excite bottlenecks.

        A group R is an SE reduce when every producer of R reads only group S and
        every consumer of R writes into S a gate that multiplies S: R's width then
        follows S's. (An inverted residual inside a residual also reads and
        writes one group, but adds instead of multiplying.)
        """
        parents = {}
        layout_groups = self.graph.layout_groups
        for group in self.graph.free_groups():
            if not group.consumers or any(self._excluded(c) for c in group.producers):
                continue
            sources = {layout_groups(c.inputs[0]) for c in group.producers}
            targets = {layout_groups(c.outputs[0]) for c in group.consumers}
            gating = all(self.graph.gates(c.outputs[0]) for c in group.consumers)
            if len(sources) == 1 and sources == targets and gating:
                (parent,) = sources
                if len(parent) == 1 and parent[0] != group.id:
                    parents[group.id] = parent[0]
        return {r: s for r, s in parents.items() if s not in parents}

    def _main_producers(self, group: CoupledGroup) -> list[Call]:
        se_children = {r for r, s in self.parent.items() if s == group.id}
        return [
            c for c in group.producers
            if not set(self.graph.layout_groups(c.inputs[0])) & se_children
        ]

    def _searchable_depthwise(self, call: Call) -> _Depthwise | None:
        op = call.op
        sizes, dilation = set(op.kernel_size), set(op.dilation_rate)
        if (
            not self._kernel_options or self._excluded(call) or dilation != {1}
            or len(sizes) != 1 or self.graph.call_count(op) != 1
        ):
            return None
        (base,) = sizes
        if base % 2 == 0:
            return None
        options = (base,) + tuple(k for k in self._kernel_options if k != base)
        pad_call = None
        if op.padding == "valid":
            pad_call = self.graph.producer_call_of(call.inputs[0])
            padding_types = (keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D)
            if (
                pad_call is None
                or not isinstance(pad_call.op, padding_types)
                or self.graph.consumer_count(call.inputs[0]) != 1
                or self.graph.call_count(pad_call.op) != 1
            ):
                return None
            low = min(p[0] for p in padding_pairs(pad_call.op))
            options = tuple(k for k in options if low + (k - base) // 2 >= 0)
        return _Depthwise(call, base, options, pad_call) if len(options) > 1 else None

    def _widths_for(self, name: str, producers: Sequence[Call], base: int) -> list[int]:
        """Width options of one group: base first, from the user's spec or the defaults."""
        spec = self._width_options
        if callable(spec):
            chosen = list(spec(name, base))
        elif isinstance(spec, Mapping):
            names = [name] + [n for c in producers for n in (c.path[-1], self._name(c))]
            key = next((k for k in names if k in spec), None)
            chosen = list(spec[key]) if key is not None else default_widths(base)
        elif spec is None:
            chosen = default_widths(base)
        else:
            chosen = default_widths(base, _check_fractions(spec))
        bad = [w for w in chosen if not isinstance(w, (int, np.integer)) or not 0 < w <= base]
        if bad:
            raise ValueError(
                f"Width options of {name!r} must be integers in 1..{base} (the base width; "
                f"channels cannot be inherited beyond it). Received: {chosen}."
            )
        return [base] + [int(w) for w in dict.fromkeys(chosen) if w != base]

    def _make_entries(self) -> list[_Entry]:
        """Searchable layers in search order: one per free group, then lone kernels."""
        entries = []
        for group in self.graph.free_groups():
            excluded = any(self._excluded(c) for c in group.producers)
            if group.id not in self.parent and not excluded:
                entry = self._group_entry(group)
                if entry is not None:
                    entries.append(entry)
        paired = {id(e.depthwise.call.op) for e in entries if e.depthwise}
        for call in self.graph.calls:
            if not isinstance(call.op, _DEPTHWISE) or call.role != "follower":
                continue
            dw = None if id(call.op) in paired else self._searchable_depthwise(call)
            if dw is not None:
                name = self._name(call)
                members = (name,) if dw.pad_call is None else (name, self._name(dw.pad_call))
                entries.append(
                    _Entry(name, "kernel", dw.options, None, dw, call.index, members, members)
                )
        entries.sort(key=lambda e: e.key)
        return entries

    def _group_entry(self, group: CoupledGroup) -> _Entry | None:
        """The searchable layer of a free group, or None when it has one option only."""
        producers = self._main_producers(group)
        first = min(producers, key=lambda c: c.index)
        touched = group.producers + group.followers + group.consumers
        members = tuple(dict.fromkeys(self._name(c) for c in touched))
        owners = tuple(dict.fromkeys(self._name(c) for c in group.producers + group.followers))
        if len({id(c.op) for c in producers}) > 1:
            name = f"{self._name(first)}.block_filter"
            widths = self._widths_for(name, group.producers, group.width)
            if len(widths) == 1:
                return None
            key = self._block_filter_key(group, producers)
            return _Entry(name, "block_filter", tuple(widths), group, None, key, members, owners)
        name = self._name(first)
        widths = self._widths_for(name, group.producers, group.width)
        depthwise_calls = [c for c in group.followers if isinstance(c.op, _DEPTHWISE)]
        searchable = [d for d in map(self._searchable_depthwise, depthwise_calls) if d is not None]
        if len(searchable) == 1:
            (dw,) = searchable
            base = KernelWidth(dw.base, widths[0])
            options = [base] + [
                KernelWidth(k, w) for w in widths for k in dw.options if (k, w) != base
            ]
            return _Entry(
                name, "kernel_expand", tuple(options), group, dw, first.index, members, owners
            )
        if len(widths) == 1:
            return None
        kind = "expand" if depthwise_calls else "width"
        return _Entry(name, kind, tuple(widths), group, None, first.index, members, owners)

    def _block_filter_key(self, group: CoupledGroup, producers: list[Call]) -> float:
        """Search a residual group's width just before its first block's layers.

        Walks up from each producer through the block's own inner groups (one
        producer, one consumer, a nonlinearity) to where the block starts.
        """
        graph = self.graph
        start = min(c.index for c in producers)
        for call in producers:
            current = call
            while True:
                inner = graph.layout_groups(current.inputs[0])
                if len(inner) != 1:
                    break
                g = graph.groups[inner[0]]
                if (
                    g.frozen is not None or g.id == group.id or len(g.producers) != 1
                    or len(g.consumers) != 1 or not g.has_activation
                ):
                    break
                current = g.producers[0]
                start = min(start, current.index)
        return start - 0.5

    def derived_width(self, child: int, parent: CoupledGroup, width: int) -> int:
        base = self.graph.groups[child].width
        if width == parent.width:
            return base
        return min(base, round_width(width * base / parent.width))


# ---------------------------------------------------------------------------------
def _check_kernels(kernel_options: Sequence[int] | None) -> tuple:
    if kernel_options is None:
        return ()
    kernels = tuple(kernel_options)
    if any(not isinstance(k, (int, np.integer)) or k < 1 or k % 2 == 0 for k in kernels):
        raise ValueError(
            "kernel_options must be odd positive integers (a depthwise kernel keeps its "
            f"centre tap). Received: kernel_options={kernel_options!r}."
        )
    return tuple(int(k) for k in kernels)


def _check_fractions(fractions: Sequence) -> tuple:
    values = tuple(fractions)
    if not values or any(not isinstance(f, (int, float)) or not 0 < f <= 1 for f in values):
        raise ValueError(
            "width_options as a sequence means fractions of each base width, each in "
            f"(0, 1]. Received: width_options={fractions!r}. For explicit widths pass a "
            "dict {layer name: [widths]} or a callable (name, base_width) -> widths."
        )
    return values


def _fixed_size_model(model: Any, input_shape: Sequence[int] | None):
    """The model itself, or a copy built at ``input_shape`` with the same weights."""
    from keras_layernas.surgery._graph import check_graph_model

    check_graph_model(model)
    if input_shape is None:
        spatial = [d for t in model.inputs for d in tuple(t.shape)[1:-1]]
        if any(d is None for d in spatial):
            raise ValueError(
                f"Model {model.name!r} has an unknown spatial input size, so MAdds depend "
                "on the image size. Pass input_shape=(height, width, channels). Received: "
                f"input_shape=None with model input shape {tuple(model.inputs[0].shape)}."
            )
        return model
    expected_rank = len(model.inputs[0].shape) - 1
    if len(tuple(input_shape)) != expected_rank or any(
        not isinstance(d, (int, np.integer)) or d < 1 for d in input_shape
    ):
        raise ValueError(
            f"input_shape must be {expected_rank} positive integers, without the batch "
            f"axis, e.g. (224, 224, 3). Received: input_shape={input_shape!r}."
        )
    input_shape = tuple(int(d) for d in input_shape)
    sized = _materialize.rebuild(model, model.get_config(), {}, input_shape=input_shape)
    _materialize.transfer_weights(_weights_by_path(model), sized, {})
    return sized


def _check_rebuildable(model: Any) -> None:
    """Refuse, before any search, a model Keras cannot rebuild from its config.

    Every architecture is materialized by ``from_config``; a Lambda holding a
    Python lambda (refused by Keras' safe mode) or a custom layer whose
    ``get_config`` does not give back its constructor arguments would
    otherwise fail only once the search is over. Models of Keras' own layers
    only are not rebuilt here (they always can be).

    Raises:
        ValueError: naming the layers and the fix.
    """
    suspects = sorted(name for name, layer in named_layers(model).items()
                      if isinstance(layer, keras.layers.Lambda)
                      or not type(layer).__module__.startswith("keras."))
    if not suspects:
        return
    try:
        _materialize.rebuild(model, model.get_config(), {})
    except Exception as error:  # Keras raises ValueError, TypeError... by layer
        raise ValueError(
            f"Model {model.name!r} cannot be rebuilt from its config, which every slimmed "
            f"architecture is: {type(error).__name__}: {str(error).splitlines()[0]} "
            f"Layers that may be the cause: {suspects}. Replace a Lambda by a built-in or a "
            "custom layer (or, if you trust its code, call "
            "keras.config.enable_unsafe_deserialization() first); give a custom layer a "
            "get_config() returning its constructor arguments."
        ) from error


def _weights_by_path(model: Any) -> dict:
    """``{layer path: weight arrays}`` of every layer that owns weights."""
    return {
        path: layer.get_weights()
        for path, layer in _materialize.iter_layers(model).items()
        if layer.weights and not isinstance(layer, keras.Model)
    }


def space_parts(
    model: Any,
    width_options: WidthOptions = None,
    kernel_options: Sequence[int] | None = DEFAULT_KERNEL_OPTIONS,
    exclude: Sequence[str] = (),
    input_shape: Sequence[int] | None = None,
    importance: Importance = l1_importance,
) -> dict[str, Any]:
    """The parts of the LayerNAS search space that slims ``model``.

    ``SearchSpace.from_model(model, **arguments)`` builds the space from them;
    this module returns parts rather than the space so that it never imports
    ``space.py``, which imports it.

    Args:
        model: a functional or Sequential Keras model (nested models are fine).
        width_options: ``None`` for the default fractions of each base width
            (rounded to multiples of 8); a sequence of fractions; a dict
            ``{searchable layer name or producing layer name: [widths]}``; or a callable
            ``(name, base_width) -> widths``. The base width is always option 0.
        kernel_options: kernel sizes for depthwise convs (odd); ``None`` keeps
            every kernel.
        exclude: model layer names whose output width and kernel never change.
        input_shape: ``(height, width, channels)`` for a model with an unknown
            spatial size; cost and ``materialize`` then hold at that size.
        importance: ``kernels -> per-channel scores`` deciding which channels
            survive (default: L1 norm summed over a group's producers).

    Returns:
        ``SearchSpace`` arguments: ``layers``, a ``cost_fn`` that needs no
        model build, a ``build_fn`` returning a Keras model with inherited
        weights, ``features_fn`` and the ``importance`` criterion.

    Raises:
        TypeError: a subclassed (non-graph) model.
        ValueError: unknown spatial size without ``input_shape``, bad options, or
            nothing left to search.
    """
    plan = _ModelSpace(model, width_options, kernel_options, exclude, input_shape)
    costs = CostModel(plan)
    # The space slims the model as it is now: later training does not leak in.
    builder = Builder(plan, costs, _weights_by_path(plan.model), importance)
    layers = [SearchLayer(e.name, e.kind, e.options, e.members, e.owners) for e in plan.entries]
    return dict(layers=layers, cost_fn=costs.cost, build_fn=builder.materialize,
                features_fn=costs.features, importance=importance)
