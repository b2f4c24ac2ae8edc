"""Build an architecture of a model space: new widths and kernels, inherited weights.

The analysed model (``model_space._ModelSpace``) says which calls produce or
follow which coupled group; the cost model gives an architecture's widths and
kernel areas; the space's importance criterion says which channels of a group
survive. This module turns that into config edits and weight slices for
:mod:`keras_layernas.surgery._materialize`, which knows Keras configs and arrays.
"""
from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_layernas.surgery import _materialize
from keras_layernas.surgery._graph import _DEPTHWISE, Call
from keras_layernas.surgery.importance import Importance, keep_indices
from keras_layernas.surgery.layer import Arch


class Builder:
    """``materialize(arch)`` of one analysed model, its weights taken once."""

    def __init__(self, plan: Any, costs: Any, weights: dict, importance: Importance):
        self.plan = plan
        self.graph = plan.graph
        self.costs = costs
        self.config = plan.model.get_config()
        self.weights = weights
        self.importance = importance
        self._scores: dict[int, np.ndarray] = {}

    def _keep(self, group_id: int, width: int) -> np.ndarray | None:
        group = self.graph.groups[group_id]
        if width == group.width:
            return None
        if group_id not in self._scores:
            weights = self.weights
            kernels = [weights[c.path][0] for c in group.producers]
            self._scores[group_id] = np.asarray(self.importance(kernels))
        return keep_indices(self._scores[group_id], width)

    def _layout_index(self, tensor_id: int, widths: list, keep: dict) -> np.ndarray | None:
        groups = self.graph.layout_groups(tensor_id)
        if all(keep[g] is None for g in groups):
            return None
        parts, offset = [], 0
        for g in groups:
            base = self.graph.groups[g].width
            parts.append(offset + (np.arange(base) if keep[g] is None else keep[g]))
            offset += base
        index = np.concatenate(parts)
        repeat = self.graph.repeat(tensor_id)
        if repeat > 1:
            index = (np.arange(repeat)[:, None] * offset + index[None, :]).reshape(-1)
        return index

    def materialize(self, arch: Arch):
        """Build ``arch`` as a Keras model that inherits the base model's weights."""
        x = self.costs.slots(arch)
        groups = self.graph.groups
        widths = [x[1 + g.id] for g in groups]
        keep = {g.id: self._keep(g.id, widths[g.id]) for g in groups}
        edits: dict = {}
        plans: dict = {}
        for call in self.graph.calls:
            if call.role not in ("producer", "follower") or call.path in plans:
                continue
            op = call.op
            in_index = self._layout_index(call.inputs[0], widths, keep)
            if call.role == "producer":
                (out_group,) = self.graph.layout_groups(call.outputs[0])
                if widths[out_group] != groups[out_group].width:
                    key = "units" if isinstance(op, keras.layers.Dense) else "filters"
                    edits[call.path] = {key: widths[out_group]}
                kind = "dense" if isinstance(op, keras.layers.Dense) else "conv"
                if in_index is not None or keep[out_group] is not None:
                    plans[call.path] = _materialize.WeightSlice(kind, in_index, keep[out_group])
            elif isinstance(op, _DEPTHWISE):
                kernel = None
                if call.index in self.costs.kernel_slot:
                    rank = len(op.kernel_size)
                    kernel = round(x[self.costs.kernel_slot[call.index]] ** (1 / rank))
                    if kernel != op.kernel_size[0]:
                        edits[call.path] = {"kernel_size": (kernel,) * rank}
                        self._edit_padding(call, kernel, edits)
                    else:
                        kernel = None
                if in_index is not None or kernel is not None:
                    plans[call.path] = _materialize.WeightSlice("depthwise", in_index, None, kernel)
            elif in_index is not None:
                plans[call.path] = _materialize.WeightSlice("channel", in_index)
        model = _materialize.rebuild(self.plan.model, self.config, edits)
        _materialize.transfer_weights(self.weights, model, plans)
        return model

    def _edit_padding(self, call: Call, kernel: int, edits: dict) -> None:
        """Keep a stride-2 block's output size: the explicit padding follows the kernel."""
        entry = next(e for e in self.plan.entries if e.depthwise and e.depthwise.call is call)
        pad_call = entry.depthwise.pad_call
        if pad_call is None:
            return
        delta = kernel - entry.depthwise.base
        pairs = tuple(
            (low + delta // 2, high + delta - delta // 2)
            for low, high in padding_pairs(pad_call.op)
        )
        edits[pad_call.path] = {"padding": pairs if len(pairs) > 1 else pairs[0]}


def padding_pairs(op: Any) -> tuple:
    padding = op.padding
    if isinstance(op, keras.layers.ZeroPadding1D):
        return (tuple(padding),)
    return tuple(tuple(p) for p in padding)
