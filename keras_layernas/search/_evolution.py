"""Regularized evolution (Real et al., 2019) restricted to in-target architectures."""
from __future__ import annotations

from collections import deque
from typing import Hashable, Sequence

from keras_layernas.search._random import RandomSearch
from keras_layernas.search._base import CostFn, validate_positive_int

# Mutations of one parent tried before falling back to a random architecture:
# a parent whose one-layer neighbours are all seen or out of target needs no more.
MUTATION_TRIES = 100


class RegularizedEvolution(RandomSearch):
    """Aging evolution: mutate the tournament winner, retire the oldest.

    The first ``population_size`` proposals are random in-target
    architectures; after that each proposal copies the best of
    ``tournament_size`` random population members and changes one random
    layer's option, retrying until the child is in target and unseen (a
    random in-target architecture if ``MUTATION_TRIES`` mutations fail). The
    defaults are the paper's settings for its baseline.

    Args:
        options: ``options[i]`` lists layer i's option values.
        cost_fn: cost of a whole architecture.
        target: ``(low, high)`` cost range every proposal falls in.
        seed: seed of sampling and mutation.
        max_trials: stop after this many candidates.
        population_size: members kept (the newest told, non-failed ones).
        tournament_size: members compared to pick a parent.
        max_attempts: draws per ask before giving up.

    Raises:
        ValueError: bad arguments, tournament larger than population, or a
            target no architecture can reach.

    Example:
        >>> search = RegularizedEvolution([[4, 3, 2, 1]] * 3, cost_fn=sum,
        ...                               target=(8, 9), population_size=4,
        ...                               tournament_size=2)
        >>> for _ in range(6):
        ...     cand = search.ask()
        ...     search.tell(cand, score=cand.arch[0])
        >>> len(search.population)
        4
    """

    def __init__(
        self,
        options: Sequence[Sequence[Hashable]],
        cost_fn: CostFn,
        target: tuple,
        seed: int = 0,
        max_trials: int | None = None,
        population_size: int = 50,
        tournament_size: int = 10,
        max_attempts: int = 10_000,
    ):
        super().__init__(
            options, cost_fn, target, seed=seed, max_trials=max_trials, max_attempts=max_attempts
        )
        self.population_size = validate_positive_int("population_size", population_size)
        self.tournament_size = validate_positive_int("tournament_size", tournament_size)
        if self.tournament_size > self.population_size:
            raise ValueError(
                "`tournament_size` must not exceed `population_size`. Received: "
                f"tournament_size={tournament_size}, population_size={population_size}"
            )
        self._population: deque = deque()

    @property
    def population(self) -> list[int]:
        """Ids of the current population, oldest first."""
        return list(self._population)

    def _mutant(self) -> tuple | None:
        drawn = self._rng.choice(len(self._population), size=self.tournament_size, replace=False)
        members = [self._population[i] for i in drawn]
        parent = max(members, key=lambda cid: (self.score_of(cid), -cid))
        parent_indices = self._records[parent]["indices"]
        mutable = [l for l, layer in enumerate(self.options) if len(layer) > 1]
        if not mutable:
            return None
        for _ in range(MUTATION_TRIES):
            layer = mutable[int(self._rng.integers(len(mutable)))]
            # Draw among the other options so a mutation always changes something.
            option = int(self._rng.integers(len(self.options[layer]) - 1))
            option += option >= parent_indices[layer]
            child = parent_indices[:layer] + (option,) + parent_indices[layer + 1 :]
            if child not in self._seen and self.in_target(self.cost_of(child)):
                return child
        return None

    def _propose(self) -> tuple | None:
        if self._gave_up:
            return None
        indices = None
        if len(self._population) >= self.population_size:
            indices = self._mutant()
        if indices is None:
            indices = self.sample()
        return None if indices is None else (indices, self.num_layers - 1)

    def _observe(self, cand_id: int) -> None:
        if self.score_of(cand_id) is None:
            return
        self._population.append(cand_id)
        if len(self._population) > self.population_size:
            self._population.popleft()  # aging: the oldest dies, not the worst

    def _config(self) -> dict:
        return {
            "max_attempts": self.max_attempts,
            "population_size": self.population_size,
            "tournament_size": self.tournament_size,
        }

    def _state(self) -> dict:
        return {"gave_up": self._gave_up, "population": list(self._population)}

    def _restore(self, state: dict) -> None:
        self._gave_up = state["gave_up"]
        self._population = deque(state["population"])
