"""Rank agreement for the rank study: Kendall's tau-b with a bootstrap interval.

A cheap score is useful to a search only as far as it orders candidates the way
their fine-tuned accuracy does; tau-b counts concordant minus discordant pairs,
with ties in either variable corrected for (candidates at one target often tie
on MAdds or on a coarse accuracy).
"""
from __future__ import annotations

import numpy as np


def kendall_tau(x, y) -> float:
    """Kendall's tau-b of two equally long sequences (nan when either is constant).

    Example:
        >>> kendall_tau([1, 2, 3, 4], [10, 20, 30, 40])
        1.0
        >>> kendall_tau([1, 2, 3], [3, 2, 1])
        -1.0
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"kendall_tau needs two 1-D sequences of one length; got {x.shape} and {y.shape}")
    upper = np.triu_indices(len(x), k=1)
    dx = np.sign(x[:, None] - x[None, :])[upper]
    dy = np.sign(y[:, None] - y[None, :])[upper]
    untied_x, untied_y = np.count_nonzero(dx), np.count_nonzero(dy)
    if untied_x == 0 or untied_y == 0:
        return float("nan")
    return float(np.sum(dx * dy) / np.sqrt(untied_x * untied_y))


def tau_with_interval(x, y, resamples: int = 2000, seed: int = 0) -> tuple[float, list[float]]:
    """tau-b and its 90% percentile-bootstrap interval (candidates resampled with replacement).

    Resamples where either variable comes out constant are left out of the interval.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(resamples):
        pick = rng.integers(0, len(x), len(x))
        tau = kendall_tau(x[pick], y[pick])
        if not np.isnan(tau):
            taus.append(tau)
    interval = [float(np.percentile(taus, 5)), float(np.percentile(taus, 95))] if taus else [None, None]
    return kendall_tau(x, y), interval
