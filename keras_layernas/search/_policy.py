"""Parent selection policies for LayerNAS: Algorithm 1's unspecified ``select``.

The paper leaves ``select(M_l)`` open. Picking parents uniformly at random and
moving on lost to random search on NATS-Bench in a prototype, because most
expansions went to mediocre parents whose children never beat anything. The
default :class:`BestFirst` expands the best kept candidates of each cost bucket
first, so the few expansions a small trial budget allows go where the
accuracy already is, and keeps a little random exploration so that one lucky
noisy score cannot monopolise the search (docs/algorithm.md has measurements).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import numpy as np


@dataclass(frozen=True)
class Parent:
    """A kept, not yet expanded candidate of one layer's bucket table.

    Attributes:
        id: candidate id.
        cost: its cost.
        score: its told score.
        bucket: its bucket key in this layer's table.
        rank: 0 for the best candidate of its bucket, 1 for the next, ...
    """

    id: int
    cost: float
    score: float
    bucket: Hashable
    rank: int


class SelectionPolicy:
    """Chooses which kept candidate to expand next on a layer.

    Attributes:
        per_visit: parents expanded on a layer before moving to the next one
            (Algorithm 1's R).
    """

    name = "policy"
    per_visit = 1

    def select(self, parents: Sequence[Parent], rng: np.random.Generator) -> Parent:
        """The parent to expand among the non-empty ``parents``."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """JSON-able arguments that rebuild this policy (saved with the search)."""
        raise NotImplementedError


def _check_per_visit(per_visit: Any) -> int:
    if isinstance(per_visit, bool) or not isinstance(per_visit, numbers.Integral) or per_visit < 1:
        raise ValueError(
            f"`per_visit` must be a positive integer. Received: per_visit={per_visit!r}"
        )
    return int(per_visit)


class BestFirst(SelectionPolicy):
    """Expand each bucket's best candidate first, best score first.

    Parents are ordered by (rank in bucket, -score, cost): every bucket's top
    candidate before any bucket's runner-up, because the runner-ups only matter
    when the top one's score was a lucky draw. With probability ``explore`` a
    uniformly random parent is taken instead, which spends a few trials off the
    greedy path so that noise cannot hide a good region forever.

    Args:
        explore: probability of a uniformly random pick, in [0, 1].
        per_visit: parents expanded per visit of a layer (Algorithm 1's R).

    Raises:
        ValueError: explore outside [0, 1] or per_visit not a positive int.

    Example:
        >>> policy = BestFirst(explore=0.0)
        >>> parents = [Parent(0, 5.0, 0.7, 1, 0), Parent(1, 6.0, 0.9, 2, 0),
        ...            Parent(2, 6.0, 0.8, 2, 1)]
        >>> policy.select(parents, np.random.default_rng(0)).id
        1
    """

    name = "best_first"

    def __init__(self, explore: float = 0.05, per_visit: int = 1):
        if isinstance(explore, bool) or not isinstance(explore, numbers.Real) or not 0 <= explore <= 1:
            raise ValueError(
                f"`explore` must be a probability in [0, 1]. Received: explore={explore!r}"
            )
        self.explore = float(explore)
        self.per_visit = _check_per_visit(per_visit)

    def select(self, parents: Sequence[Parent], rng: np.random.Generator) -> Parent:
        # Draw only when exploring is possible, so explore=0 uses no randomness.
        if self.explore > 0 and rng.random() < self.explore:
            return parents[int(rng.integers(len(parents)))]
        return min(parents, key=lambda p: (p.rank, -p.score, p.cost, p.id))

    def get_config(self) -> dict:
        return {"name": self.name, "explore": self.explore, "per_visit": self.per_visit}


class RandomParent(SelectionPolicy):
    """Expand a uniformly random kept candidate: the paper's literal reading.

    Kept as an ablation: docs/algorithm.md measures it against BestFirst.

    Args:
        per_visit: parents expanded per visit of a layer (Algorithm 1's R).

    Example:
        >>> policy = RandomParent()
        >>> policy.select([Parent(3, 1.0, 0.5, 0, 0)], np.random.default_rng(0)).id
        3
    """

    name = "random"

    def __init__(self, per_visit: int = 1):
        self.per_visit = _check_per_visit(per_visit)

    def select(self, parents: Sequence[Parent], rng: np.random.Generator) -> Parent:
        return parents[int(rng.integers(len(parents)))]

    def get_config(self) -> dict:
        return {"name": self.name, "per_visit": self.per_visit}


_POLICIES = {BestFirst.name: BestFirst, RandomParent.name: RandomParent}


def get_policy(policy: Any) -> SelectionPolicy:
    """A policy from an instance, a name (``"best_first"``, ``"random"``) or a config.

    Raises:
        ValueError: unknown name or not a policy.
    """
    if isinstance(policy, SelectionPolicy):
        return policy
    if isinstance(policy, str) and policy in _POLICIES:
        return _POLICIES[policy]()
    if isinstance(policy, dict) and policy.get("name") in _POLICIES:
        config = dict(policy)
        return _POLICIES[config.pop("name")](**config)
    raise ValueError(
        f"`policy` must be a SelectionPolicy or one of {sorted(_POLICIES)}. "
        f"Received: policy={policy!r}"
    )
