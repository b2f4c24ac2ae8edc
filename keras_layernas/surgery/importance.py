"""Channel importance: which channels of a coupled group to keep.

The criterion only sees kernels (output channels on the last axis), never the
graph, so any criterion with the same signature can be plugged in through
``SearchSpace.from_model(model, importance=...)``.
"""
from __future__ import annotations

from typing import Callable, Sequence

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
