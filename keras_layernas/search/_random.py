"""Random search over in-target architectures: the baseline every NAS must beat."""
from __future__ import annotations

from typing import Hashable, Sequence

from keras_layernas.search._base import BaseSearch, CostFn, validate_positive_int

# In-target single-layer moves per layer after a repair (see RandomSearch)
_WALK_MOVES_PER_LAYER = 10
# Walks per ask before the space counts as used up
_WALKS = 100


class RandomSearch(BaseSearch):
    """Random architectures whose cost lies in the target range.

    Rejection sampling is exactly uniform over the in-target set. A deep cut
    is a sliver of a large space (30% of a MobileNetV2 was not hit once in
    10,000 uniform draws), so after ``max_attempts`` draws in a row miss,
    the search walks instead: each proposal is a uniform draw repaired into
    the target one option step at a time (a random layer that can move
    toward the range moves to its next cheaper, or dearer, option; of a
    union of ranges, toward one chosen at random), then
    ``10 x layers`` random single-layer changes, each kept only if the cost
    stays in target. Those changes are a Metropolis walk with symmetric
    proposals, so their stationary distribution is uniform over the
    in-target architectures the walk can reach; after finitely many moves the
    draw is close to uniform, not exactly. When ``100`` walks in a row find
    nothing new, the space is treated as used up: ``ask()`` returns None.

    Args:
        options: ``options[i]`` lists layer i's option values.
        cost_fn: cost of a whole architecture (monotone in each layer's option).
        target: ``(low, high)`` cost range every proposal falls in.
        seed: seed of the sampler.
        max_trials: stop after this many candidates.
        max_attempts: uniform draws in a row that may miss before the search walks.

    Raises:
        ValueError: bad arguments or a target no architecture can reach.

    Example:
        >>> search = RandomSearch([[4, 3, 2, 1]] * 3, cost_fn=sum, target=(8, 9))
        >>> cand = search.ask()
        >>> 8 <= sum(cand.arch) <= 9
        True
    """

    def __init__(
        self,
        options: Sequence[Sequence[Hashable]],
        cost_fn: CostFn,
        target: tuple,
        seed: int = 0,
        max_trials: int | None = None,
        max_attempts: int = 10_000,
    ):
        super().__init__(options, cost_fn, target, seed=seed, max_trials=max_trials)
        self.max_attempts = validate_positive_int("max_attempts", max_attempts)
        self._gave_up = False
        self._walking = False
        # each layer's option indices from cheapest to dearest (monotone cost: found at the base)
        self._by_cost = [
            sorted(range(len(values)), key=lambda i, layer=layer: self.cost_of(
                self.base_indices[:layer] + (i,) + self.base_indices[layer + 1:]))
            for layer, values in enumerate(self.options)
        ]

    def sample(self) -> tuple | None:
        """Option indices of an unseen in-target architecture, or None."""
        if not self._walking:
            for _ in range(self.max_attempts):
                indices = self._draw()
                if indices not in self._seen and self.in_target(self.cost_of(indices)):
                    return indices
            self._walking = True
        for _ in range(_WALKS):
            indices = self._repaired(self._draw())
            if indices is not None:
                indices = self._walked(indices)
                if indices not in self._seen:
                    return indices
        self._gave_up = True
        return None

    def _draw(self) -> tuple:
        sizes = [len(layer) for layer in self.options]
        return tuple(int(i) for i in (self._rng.random(len(sizes)) * sizes).astype(int))

    def _repaired(self, indices: tuple) -> tuple | None:
        """``indices`` stepped into the target one option at a time, or None if stuck.

        Of a union of ranges, one chosen at random: stepping in from above would
        always stop in the dearest range.
        """
        ranges = self.target.ranges
        low, high = ranges[int(self._rng.integers(len(ranges)))]
        rank = [order.index(i) for order, i in zip(self._by_cost, indices)]
        for _ in range(sum(len(values) for values in self.options)):
            cost = self.cost_of(indices)
            if low <= cost <= high:
                return indices
            step = -1 if cost > high else 1
            movable = [layer for layer, r in enumerate(rank) if 0 <= r + step < len(self._by_cost[layer])]
            if not movable:
                return None
            layer = movable[int(self._rng.integers(len(movable)))]
            rank[layer] += step
            indices = indices[:layer] + (self._by_cost[layer][rank[layer]],) + indices[layer + 1:]
        return None

    def _walked(self, indices: tuple) -> tuple:
        """In-target random single-layer changes from ``indices`` (which is in target)."""
        for _ in range(_WALK_MOVES_PER_LAYER * self.num_layers):
            layer = int(self._rng.integers(self.num_layers))
            option = int(self._rng.integers(len(self.options[layer])))
            moved = indices[:layer] + (option,) + indices[layer + 1:]
            if self.in_target(self.cost_of(moved)):
                indices = moved
        return indices

    def _propose(self) -> tuple | None:
        if self._gave_up:
            return None
        indices = self.sample()
        return None if indices is None else (indices, self.num_layers - 1)

    def _observe(self, cand_id: int) -> None:
        """Random search learns nothing from scores."""

    def _exhausted(self) -> bool:
        return self._gave_up

    def _config(self) -> dict:
        return {"max_attempts": self.max_attempts}

    def _state(self) -> dict:
        return {"gave_up": self._gave_up, "walking": self._walking}

    def _restore(self, state: dict) -> None:
        self._gave_up = state["gave_up"]
        self._walking = state.get("walking", False)  # saved before walks existed: not walking
