"""The cost of a model space: MAdds (and cost features) of an architecture without a build.

Every conv, depthwise and dense call becomes ``coef * slot_a * slot_b`` terms
over the architecture's widths and kernel areas, compiled once, so ``cost``
and ``features`` are a few multiply-adds per term, in the same convention as
``count_madds`` (the shared :mod:`keras_layernas.profiling.formulas`).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import keras

from keras_layernas.profiling import formulas
from keras_layernas.surgery._graph import _CONVS, _DEPTHWISE, Call
from keras_layernas.surgery.layer import Arch

#: Cost features of an architecture (see ``SearchSpace.features``): MAdds of
#: dense convs (frozen separable/transposed/grouped convs included), of
#: depthwise convs and of Dense layers, and the output elements of those layers.
FEATURES = ("conv_madds", "depthwise_madds", "dense_madds", "activations")


class CostModel:
    """The compiled cost terms of one analysed model (``model_space._ModelSpace``)."""

    def __init__(self, plan: Any):
        """Turn every conv/dense/depthwise call into ``coef * slot_a * slot_b`` terms.

        Slot 0 is the constant 1, slot ``1 + g`` the width of group ``g``, then
        one slot per searchable depthwise kernel (its area). Terms with no
        variable slot are folded into one constant.
        """
        self.plan = plan
        graph = self.graph = plan.graph
        n = len(graph.groups)
        kernel_slot = {e.depthwise.call.index: n + 1 + i
                       for i, e in enumerate(e for e in self.plan.entries if e.depthwise)}
        self.kernel_slot = kernel_slot
        variable = {1 + e.group.id for e in self.plan.entries if e.group is not None}
        variable |= {1 + r for r, s in self.plan.parent.items() if 1 + s in variable}
        variable |= set(kernel_slot.values())
        base = [1] + [g.width for g in graph.groups]
        base += [
            e.depthwise.base ** len(e.depthwise.call.op.kernel_size)
            for e in self.plan.entries if e.depthwise
        ]
        by_feature: dict[str, list[tuple[int, int, int]]] = {f: [] for f in FEATURES}
        modeled = set()
        for call in graph.calls:
            for feature, coef, a, b in self._call_terms(call, kernel_slot):
                by_feature[feature].append((coef, a, b))
                modeled.add("/".join(call.path))
        unmodeled = self._unmodeled_madds(modeled)
        # Those layers are frozen convs (separable, transposed, grouped).
        self._features = {
            feature: self._fold(terms, variable, base, unmodeled if feature == "conv_madds" else 0)
            for feature, terms in by_feature.items()
        }
        madds = [self._features[f] for f in FEATURES if f.endswith("_madds")]
        self._constant = sum(constant for constant, _ in madds)
        self._terms = [term for _, terms in madds for term in terms]
        self._base_slots = base
        self._assign = [self._assignments(e) for e in self.plan.entries]

    @staticmethod
    def _fold(terms: list, variable: set, base: list, constant: int) -> tuple[int, list]:
        """``(constant, variable terms)``: terms no option changes are summed once."""
        kept = []
        for coef, a, b in terms:
            if a in variable or b in variable:
                kept.append((coef, a, b))
            else:
                constant += coef * base[a] * base[b]
        return constant, kept

    def _unmodeled_madds(self, modeled: set) -> int:
        """MAdds of layers outside the width model (separable, transposed, grouped convs).

        Their channels are frozen, so their cost never changes: the profiler
        counts it once, under the same convention.
        """
        from keras_layernas.profiling import profile

        rows = profile(self.plan.model).layers
        return sum(row.madds for row in rows if row.name.split("#")[0] not in modeled)

    def _call_terms(self, call: Call, kernel_slot: Mapping[int, int]):
        """``(feature, coef, slot_a, slot_b)`` terms of one call's cost features.

        MAdds coefficients are the shared formula evaluated with one input and
        one output channel: the formulas are linear in each channel count, so
        the term times the two widths is the formula at those widths. The
        ``activations`` terms count the elements the call writes.
        """
        op, graph = call.op, self.graph
        if call.role not in ("producer", "follower"):
            return
        if isinstance(op, keras.layers.BatchNormalization):
            return
        in_groups = graph.layout_groups(call.inputs[0])
        repeat = graph.repeat(call.inputs[0])
        spatial = call.output_shapes[0][1:-1]
        check_known(spatial, call)
        positions = math.prod(spatial)
        if isinstance(op, keras.layers.Dense):
            out = 1 + graph.layout_groups(call.outputs[0])[0]
            coef = formulas.dense_madds(1, 1, positions) * repeat
            for g in in_groups:
                yield "dense_madds", coef, 1 + g, out
            yield "activations", positions, out, 0
        elif isinstance(op, _DEPTHWISE):
            if call.index in kernel_slot:
                unit_kernel = (1,) * len(op.kernel_size)  # the kernel area is a slot of its own
                coef, area = formulas.depthwise_madds(unit_kernel, 1, spatial), kernel_slot[call.index]
            else:
                coef, area = formulas.depthwise_madds(op.kernel_size, 1, spatial), 0
            for g in in_groups:
                yield "depthwise_madds", coef, 1 + g, area
                yield "activations", positions, 1 + g, 0
        elif isinstance(op, _CONVS):
            out = 1 + graph.layout_groups(call.outputs[0])[0]
            coef = formulas.conv_madds(op.kernel_size, 1, 1, spatial)
            for g in in_groups:
                yield "conv_madds", coef, 1 + g, out
            yield "activations", positions, out, 0

    def _assignments(self, entry: _Entry) -> dict:
        """``{option: ((slot, value), ...)}``: what choosing an option sets."""
        group_id = entry.group.id if entry.group is not None else None
        children = [r for r, s in self.plan.parent.items() if s == group_id]
        table = {}
        for option in entry.options:
            sets = []
            width = getattr(option, "width", option)  # a KernelWidth or a width
            if entry.kind == "kernel":
                width = None
            if width is not None:
                sets.append((1 + entry.group.id, width))
                for r in children:
                    sets.append((1 + r, self.plan.derived_width(r, entry.group, width)))
            if entry.depthwise is not None:
                kernel = getattr(option, "kernel", option)  # a KernelWidth or a kernel
                rank = len(entry.depthwise.call.op.kernel_size)
                sets.append((self.kernel_slot[entry.depthwise.call.index], kernel ** rank))
            table[option] = tuple(sets)
        return table

    def slots(self, arch: Arch) -> list:
        """Widths/kernel areas of ``arch`` (slot layout of :meth:`_compile_cost`)."""
        x = self._base_slots.copy()
        for table, value in zip(self._assign, arch):
            for slot, v in table[value]:
                x[slot] = v
        return x

    def features(self, arch: Arch) -> dict[str, int]:
        """``{feature: value}`` of ``arch``: MAdds by op kind, elements written.

        The three ``*_madds`` features add up to :meth:`cost`.
        """
        x = self.slots(arch)
        values = {}
        for feature, (constant, terms) in self._features.items():
            for coef, a, b in terms:
                constant += coef * x[a] * x[b]
            values[feature] = constant
        return values

    def cost(self, arch: Arch) -> int:
        """MAdds of ``arch``: the constant part plus the width-dependent terms."""
        x = self.slots(arch)
        total = self._constant
        for coef, a, b in self._terms:
            total += coef * x[a] * x[b]
        return total


def check_known(dims: Sequence, call: Call) -> None:
    if any(d is None for d in dims):
        raise ValueError(
            f"Layer {'/'.join(call.path)!r} has an unknown spatial size, so its MAdds "
            f"are undefined. Received: output shape {call.output_shapes[0]}. Pass "
            "input_shape=(height, width, channels) to SearchSpace.from_model."
        )
