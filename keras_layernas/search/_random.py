"""Random search over in-target architectures: the baseline every NAS must beat."""
from __future__ import annotations

from typing import Hashable, Sequence

from keras_layernas.search._base import BaseSearch, CostFn, validate_positive_int


class RandomSearch(BaseSearch):
    """Uniformly random architectures whose cost lies in the target range.

    Rejection sampling is exactly uniform over the in-target set. When
    ``max_attempts`` draws in a row are out of target or already seen, the
    space is treated as used up: ``ask()`` returns None and the search finishes.

    Args:
        options: ``options[i]`` lists layer i's option values.
        cost_fn: cost of a whole architecture.
        target: ``(low, high)`` cost range every proposal falls in.
        seed: seed of the sampler.
        max_trials: stop after this many candidates.
        max_attempts: draws per ask before giving up.

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

    def sample(self) -> tuple | None:
        """Option indices of an unseen in-target architecture, or None."""
        sizes = [len(layer) for layer in self.options]
        for _ in range(self.max_attempts):
            indices = tuple(int(i) for i in (self._rng.random(len(sizes)) * sizes).astype(int))
            if indices not in self._seen and self.in_target(self.cost_of(indices)):
                return indices
        self._gave_up = True
        return None

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
        return {"gave_up": self._gave_up}

    def _restore(self, state: dict) -> None:
        self._gave_up = state["gave_up"]
