"""Small search spaces with known answers, shared by the search tests."""
from __future__ import annotations

import itertools

import numpy as np

# A 4-layer chain of convs: each conv's MAdds depend on its own and its input's
# width, so the cost is not a sum of per-layer costs (like a real CNN).
CHAIN_OPTIONS = [[16, 12, 8, 4], [32, 24, 16, 8], [32, 24, 16], [64, 48, 32, 16]]
CHAIN_TARGET = (900.0, 1500.0)


def chain_cost(arch: tuple) -> float:
    widths = (3,) + tuple(arch)
    return float(sum(a * b for a, b in zip(widths, widths[1:])))


def chain_score(arch: tuple) -> float:
    """A smooth, separable accuracy: wider is better with diminishing returns."""
    return float(sum(w * np.log(a) for w, a in zip((0.4, 0.3, 0.2, 0.1), arch)))


def can_complete_in_target(prefix: tuple, options, cost_fn, target) -> bool:
    """Brute force: does some completion of ``prefix`` cost within target?"""
    low, high = target
    rest = options[len(prefix):]
    return any(low <= cost_fn(prefix + tail) <= high for tail in itertools.product(*rest))
