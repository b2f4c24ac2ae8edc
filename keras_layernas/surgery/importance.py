"""Channel importance: which channels to keep, and how much of the model a cut keeps.

One criterion (``Importance``: kernels -> one score per output channel) serves
both sides of a compression: ``materialize`` keeps each coupled group's
highest-scoring channels, and :class:`RetainedImportance`, the data-free score
of an architecture, measures the share of those same scores the kept channels
hold. The criterion only sees kernels (output channels on the last axis),
never the graph, so any criterion with the same signature can be plugged in
through ``SearchSpace.from_model(model, importance=...)``, and the score
follows it. Scores must be non-negative (a share of them is a retention).

The data-free score in detail:

Without data, the only evidence of what matters in a trained model is its
weights. For every searchable layer we measure which fraction of the base
layer's channel importance an option keeps, using the *same* criterion that
``materialize`` uses to choose the surviving channels (the space's
``importance``, by default the L1 norm summed over a coupled group's
producers), so the score describes the model that will really be built:

* width ``w`` of a group with per-channel scores ``s`` (sorted, largest
  first): ``r_width = sum(s[:w]) / sum(s)``;
* depthwise kernel ``k' < k``: the share of the kept channels' depthwise L1 mass
  inside the centred ``k' x k'`` crop; ``k' >= k`` keeps everything (materialize
  pads with zeros, which computes the same function);
* a layer's retention ``r_l = r_width * r_kernel``.

The score of an architecture is the weighted geometric mean of the retentions,
``exp(sum_l v_l log r_l / sum_l v_l)``: 1.0 for the base model, lower the more
is cut. The product form says that a signal passes through every layer; a layer
cut to nothing drives the score to zero. The weights ``v_l`` say how much one
searchable layer counts (``weighting``):

* ``"equal"``: ``v_l = 1``, halving one layer costs as much as anywhere else;
* ``"layers"``: ``v_l`` = the number of weighted layers (convs, dense) whose
  kernels the searchable layer slices. A block filter (a residual stream's
  width) is read and written by every block of its stage, so it counts several
  times, where ``"equal"`` counts it once and lets a cost-driven search starve
  the stream that all blocks share. Each layer's term depends on its own option only, so the table
of terms is computed once and an architecture is scored in microseconds
without building it.

This ranks candidates by how little of the trained model they discard; it
knows nothing about accuracy. Fine-tuning on real data is recommended.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import keras
import numpy as np

# importance(kernels) -> one score per output channel; higher is kept first
Importance = Callable[[Sequence[np.ndarray]], np.ndarray]


def l1_importance(kernels: Sequence[np.ndarray]) -> np.ndarray:
    """L1 norm of each output channel, summed over every producer of the group.

    Summing over all producers of a coupled group ranks the channels once for
    the whole group, so the same channels are kept in every layer that shares
    them (a residual's branches, a squeeze-excite gate).

    Args:
        kernels: the producers' kernels, output channels on the last axis.

    Returns:
        A float64 score per channel.

    Example:
        >>> l1_importance([np.array([[1.0, -3.0], [2.0, 0.0]])]).tolist()
        [3.0, 3.0]
    """
    widths = {k.shape[-1] for k in kernels}
    if len(widths) != 1:
        raise ValueError(
            "Every producer of a coupled group must have the same output width. "
            f"Received widths: {sorted(widths)}."
        )
    return sum(np.abs(k).reshape(-1, k.shape[-1]).sum(axis=0, dtype=np.float64) for k in kernels)


def keep_indices(scores: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` highest-scoring channels, in their original order.

    Ties go to the lower channel index, so the choice is deterministic.

    Example:
        >>> keep_indices(np.array([0.5, 2.0, 1.0, 2.0]), 2).tolist()
        [1, 3]
    """
    if not 0 < width <= len(scores):
        raise ValueError(
            f"Cannot keep {width} channels out of {len(scores)}; expected 1..{len(scores)}."
        )
    order = np.argsort(-scores, kind="stable")[:width]
    return np.sort(order)


# log of the retention floor: a layer whose kept weights are all zero
# scores this instead of -inf, so such architectures still rank among themselves.
_LOG_FLOOR = math.log(1e-12)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
WEIGHTINGS = ("equal", "layers")
_PRODUCERS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Dense)


def named_layers(model: Any, prefix: str = "") -> dict[str, Any]:
    """``{"outer/inner" name: layer}`` of a model, nested models flattened.

    The names match ``SearchLayer.members``.
    """
    found = {}
    for layer in model.layers:
        name = prefix + layer.name
        found[name] = layer
        if isinstance(layer, keras.Model):
            found.update(named_layers(layer, name + "/"))
    return found


def option_width(layer: SearchLayer, option: Any) -> int | None:
    if layer.kind == "kernel":
        return None
    return int(getattr(option, "width", option))


def _option_kernel(layer: SearchLayer, option: Any) -> int | None:
    if layer.kind == "kernel":
        return int(option)
    kernel = getattr(option, "kernel", None)
    return None if kernel is None else int(kernel)


class RetainedImportance:
    """Scores architectures by the importance they keep (see module docstring).

    Args:
        space: a space from ``SearchSpace.from_model(model)``; its ``importance``
            ranks the channels, as in ``materialize``.
        model: the model the space slims (its weights are read once).
        weighting: ``"equal"`` or ``"layers"`` (see the module docstring).

    Raises:
        ValueError: a searchable layer changes no layer the model has, or is not
            a width/kernel layer of a model space (e.g. ``from_options``), or an
            unknown ``weighting``.

    Example:
        >>> import keras
        >>> from keras_layernas.surgery import SearchSpace
        >>> model = keras.Sequential([keras.Input((8, 8, 3)),
        ...     keras.layers.Conv2D(16, 3, name="conv"), keras.layers.GlobalAveragePooling2D(),
        ...     keras.layers.Dense(2)])
        >>> space = SearchSpace.from_model(model, width_options={"conv": [16, 8]})
        >>> score = RetainedImportance(space, model)
        >>> score(space.base_arch)
        1.0
        >>> 0.4 < score((8,)) < 1.0
        True
    """

    def __init__(self, space: SearchSpace, model: Any, weighting: str = "equal"):
        if weighting not in WEIGHTINGS:
            raise ValueError(
                f"weighting must be one of {WEIGHTINGS}. Received: weighting={weighting!r}."
            )
        layers = named_layers(model)
        self.space = space
        self.weighting = weighting
        self._log_terms: list[dict[Any, float]] = []
        for search_layer in space.layers:
            terms = self._layer_terms(search_layer, layers)
            weight = 1 if weighting == "equal" else _sliced_kernels(search_layer, layers)
            self._log_terms.append((weight, terms))
        # Weights normalised to mean 1, so that log_score stays a mean of log_terms.
        mean_weight = sum(w for w, _ in self._log_terms) / len(self._log_terms)
        self._log_terms = [{o: w / mean_weight * t for o, t in terms.items()}
                           for w, terms in self._log_terms]

    def _layer_terms(self, search_layer: SearchLayer, layers: dict[str, Any]) -> dict[Any, float]:
        missing = [m for m in search_layer.owners if m not in layers]
        if (missing or not search_layer.owners or search_layer.kind == "option"
                or self.space.importance is None):
            raise ValueError(
                "RetainedImportance needs a space built by SearchSpace.from_model(model) "
                f"on this model. Searchable layer {search_layer.name!r} (kind "
                f"{search_layer.kind!r}) names model layers {missing or 'none'} that the "
                "model does not have."
            )
        owners = [layers[m] for m in search_layer.owners]
        base_width = option_width(search_layer, search_layer.options[0])
        channel_scores = None
        if base_width is not None:
            kernels = [np.asarray(l.get_weights()[0]) for l in _producers(owners, base_width)]
            if kernels:
                channel_scores = np.asarray(self.space.importance(kernels), dtype=np.float64)
        depthwise = [np.asarray(l.get_weights()[0]) for l in owners if isinstance(l, _DEPTHWISE)]
        terms = {}
        for option in search_layer.options:
            width = option_width(search_layer, option)
            kept = None
            retention = 1.0
            if channel_scores is not None and width is not None:
                kept = keep_indices(channel_scores, width)
                total = channel_scores.sum()
                retention *= channel_scores[kept].sum() / total if total > 0 else 1.0
            kernel = _option_kernel(search_layer, option)
            if kernel is not None and depthwise:
                retention *= _kernel_retention(depthwise[0], kernel, kept)
            terms[option] = math.log(retention) if retention > 0 else _LOG_FLOOR
        return terms

    def log_term(self, layer_index: int, option: Any) -> float:
        """``v_l log r_l`` of ``option`` on layer ``layer_index`` (<= 0; mean ``v_l`` is 1)."""
        return self._log_terms[layer_index][option]

    def log_score(self, arch: Sequence) -> float:
        """``mean_l v_l log r_l``: the log of :meth:`__call__`, cheaper to add up."""
        return sum(t[o] for t, o in zip(self._log_terms, arch)) / len(self._log_terms)

    def __call__(self, arch: Sequence) -> float:
        """Weighted geometric mean retention of ``arch``, in (0, 1]; the base scores 1."""
        return math.exp(self.log_score(arch))


def _sliced_kernels(search_layer: SearchLayer, layers: dict[str, Any]) -> int:
    """How many weighted layers (convs, dense) the searchable layer slices."""
    weighted = (*_PRODUCERS, *_DEPTHWISE)
    return max(1, sum(isinstance(layers.get(m), weighted) for m in search_layer.members))


def _producers(owners: list, width: int) -> list:
    """Owners whose kernel outputs the group's ``width`` channels (convs and dense)."""
    return [m for m in owners
            if isinstance(m, _PRODUCERS) and not isinstance(m, _DEPTHWISE)
            and m.get_weights() and m.get_weights()[0].shape[-1] == width]


def _kernel_retention(kernel: np.ndarray, size: int, kept: np.ndarray | None) -> float:
    """Share of a depthwise kernel's L1 mass inside a centred ``size`` crop.

    Depthwise kernels are ``(*spatial, channels, multiplier)``; a crop is
    taken over every spatial axis, only on the channels ``kept``.
    """
    base = kernel.shape[0]
    if size >= base:
        return 1.0
    if kept is not None:
        kernel = kernel[..., kept, :]
    start = (base - size) // 2
    crop = tuple(slice(start, start + size) for _ in range(kernel.ndim - 2))
    total = np.abs(kernel).sum(dtype=np.float64)
    return float(np.abs(kernel[crop]).sum(dtype=np.float64) / total) if total > 0 else 1.0
