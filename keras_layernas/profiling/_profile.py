"""MAdds and parameter counts of a Keras model, per layer call and in total.

The cost convention lives in :mod:`keras_layernas.profiling.formulas`; this module
applies it along the model's call graph and reports the result.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Optional, Sequence, Union

import keras

from keras_layernas.profiling._graph import LayerCall, graph_of, trace_calls
from keras_layernas.profiling._rules import UnknownSizeError, rule_for

InputShape = Union[Sequence[int], Sequence[Sequence[int]]]


@dataclass(frozen=True)
class LayerCost:
    """One row of a :class:`Profile`: one call of one layer.

    Attributes:
        name: layer name, prefixed by enclosing nested models, ``#k`` for the
            k-th extra call of a shared layer.
        type: the layer's class name.
        output_shape: shape of its (first) output, batch dimension included.
        madds: multiply-adds of this call, per sample.
        params: weights owned by the layer (0 on repeated calls, so the column
            sums to the model's total).
        known: False for a layer type with weights but no MAdds rule, whose
            cost is therefore reported as 0 rather than measured.
    """

    name: str
    type: str
    output_shape: tuple
    madds: int
    params: int
    known: bool = True


@dataclass(frozen=True)
class Profile:
    """MAdds and parameters of a model, with a per-layer-call breakdown.

    Example:
        >>> import keras
        >>> inputs = keras.Input((8, 8, 3))
        >>> x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(x))
        >>> report = profile(keras.Model(inputs, outputs))
        >>> report.madds == 8 * 8 * 3 * 3 * 3 * 4 + 256 * 2
        True
        >>> report.params, [row["type"] for row in report.to_list()]
        (622, ['Conv2D', 'Flatten', 'Dense'])

    Attributes:
        madds: total multiply-adds per sample.
        params: total parameters (trainable and not), as ``model.count_params()``.
        layers: one :class:`LayerCost` per layer call, in execution order.
    """

    madds: int
    params: int
    layers: tuple[LayerCost, ...]

    def to_list(self) -> list[dict]:
        """The per-layer rows as plain dicts (for JSON, pandas, ...)."""
        return [asdict(row) for row in self.layers]

    def __str__(self) -> str:
        header = ("Layer", "Type", "Output shape", "MAdds", "Params")
        rows = [
            (
                row.name,
                row.type,
                str(row.output_shape),
                f"{row.madds:,}" + ("" if row.known else " (?)"),
                f"{row.params:,}",
            )
            for row in self.layers
        ]
        widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
        numeric = {3, 4}

        def line(cells) -> str:
            return "  ".join(
                c.rjust(w) if i in numeric else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths))
            ).rstrip()

        rule = "-" * len(line(header))
        out = [line(header), rule, *(line(cells) for cells in rows), rule]
        out.append(f"Total MAdds: {self.madds:,} ({self.madds / 1e6:.2f} M)")
        out.append(f"Total params: {self.params:,} ({self.params / 1e6:.2f} M)")
        if not all(row.known for row in self.layers):
            out.append("(?) layer type without a MAdds rule: counted as 0")
        return "\n".join(out)


def profile(model: keras.Model, input_shape: Optional[InputShape] = None) -> Profile:
    """Count MAdds and parameters of ``model`` layer call by layer call.

    Args:
        model: a functional or built Sequential model; nested models are
            walked, and a layer called twice counts twice.
        input_shape: input size without the batch dimension, e.g.
            ``(224, 224, 3)`` (a list of such tuples for several inputs).
            Needed when the model was built with an unknown spatial size;
            otherwise it re-evaluates the model at another size.

    Returns:
        The :class:`Profile`.

    Raises:
        ValueError: if ``input_shape`` is malformed, or a counted layer has an
            unknown size and no ``input_shape`` fixes it.
    """
    calls = trace_calls(model, _full_input_shapes(model, input_shape))
    rows = []
    for call in calls:
        madds, known = _call_madds(call, input_shape)
        weights = getattr(call.layer, "weights", ()) if call.first_call else ()
        shapes = call.output_shapes
        rows.append(
            LayerCost(
                name=call.name,
                type=type(call.layer).__name__,
                output_shape=shapes[0] if len(shapes) == 1 else shapes,
                madds=madds,
                params=sum(math.prod(w.shape) for w in weights),
                known=known,
            )
        )
    _warn_unknown([(row.type, row.name) for row in rows if not row.known])
    return Profile(
        madds=sum(row.madds for row in rows),
        params=count_params(model),
        layers=tuple(rows),
    )


def count_madds(model: keras.Model, input_shape: Optional[InputShape] = None) -> int:
    """Multiply-adds of one forward pass of ``model`` on one sample.

    Same count as ``profile(model, input_shape).madds``, without reading any
    weights, so it stays cheap enough to call inside a search loop.

    Args:
        model: see :func:`profile`.
        input_shape: see :func:`profile`.

    Returns:
        The total MAdds under the convention of docs/cost-convention.md.

    Raises:
        ValueError: see :func:`profile`.
    """
    total = 0
    unknown = []
    for call in trace_calls(model, _full_input_shapes(model, input_shape)):
        madds, known = _call_madds(call, input_shape)
        total += madds
        if not known:
            unknown.append((type(call.layer).__name__, call.name))
    _warn_unknown(unknown)
    return total


def count_params(model: keras.Model) -> int:
    """All parameters of ``model`` (trainable and not), each shared weight once.

    Raises:
        ValueError: if the model is not built, so it has no weights yet.
    """
    if not model.built:
        raise ValueError(
            f"Model {model.name!r} is not built, so it has no parameters yet; call "
            "model.build(input_shape) or create it from keras.Input. Received: an unbuilt "
            f"{type(model).__name__}"
        )
    unique = {id(w): w for w in model.weights}
    return sum(math.prod(w.shape) for w in unique.values())


def _full_input_shapes(model: keras.Model, input_shape: Optional[InputShape]) -> Optional[list]:
    """Validate ``input_shape`` against the model inputs and add the batch dimension."""
    if input_shape is None:
        return None
    graph = graph_of(model)
    if graph is None:
        return None  # trace_calls explains why this model cannot be profiled
    inputs = graph.inputs
    several = len(input_shape) > 0 and all(isinstance(s, (tuple, list)) for s in input_shape)
    shapes = [tuple(s) for s in input_shape] if several else [tuple(input_shape)]
    expected = [tuple(x.shape[1:]) for x in inputs]
    if len(shapes) != len(inputs) or any(len(s) != len(e) for s, e in zip(shapes, expected)):
        raise ValueError(
            f"input_shape must give one size per model input, without the batch "
            f"dimension, matching the model's inputs {expected}. "
            f"Received: input_shape={input_shape}"
        )
    for shape in shapes:
        if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise ValueError(
                "input_shape must hold positive integers only (it fixes the size "
                f"the model is evaluated at). Received: input_shape={input_shape}"
            )
    return [(x.shape[0], *shape) for x, shape in zip(inputs, shapes)]


def _call_madds(call: LayerCall, input_shape: Optional[InputShape]) -> tuple[int, bool]:
    """MAdds of one call, and whether its layer type is known to the convention.

    A type without a rule is free when it has no weights (activations, adds,
    pooling, reshapes, plain ops such as ``x + y``) and unknown otherwise.
    """
    rule = rule_for(type(call.layer))
    if rule is None:
        return 0, not getattr(call.layer, "weights", ())
    try:
        return rule(call.layer, call.input_shapes, call.output_shapes), True
    except UnknownSizeError as error:
        raise ValueError(
            f"Cannot count MAdds: {error}, because the model input size is unknown. "
            "Pass the size to evaluate at, e.g. count_madds(model, "
            f"input_shape=(224, 224, 3)). Received: input_shape={input_shape}"
        ) from None


def _warn_unknown(unknown: list[tuple[str, str]]) -> None:
    """One warning per unknown layer type, naming it and where it occurs.

    Args:
        unknown: (layer type, call name) of every call without a MAdds rule.
    """
    by_type: dict[str, list[str]] = {}
    for layer_type, name in unknown:
        by_type.setdefault(layer_type, []).append(name)
    for layer_type, names in by_type.items():
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        warnings.warn(
            f"Layer type {layer_type} has weights but no MAdds rule; its "
            f"{len(names)} call(s) ({shown}) count as 0 MAdds and are marked (?) "
            "in the profile table.",
            stacklevel=3,
        )
