"""The cost range a search must land in, and the smallest cost a space reaches.

One ``Target`` travels from the user's budget to every place that tests a
cost against it (the search, the oracle, the drivers, completion), so the
in-range test and the "below the smallest model" message exist once.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Hashable, Sequence


class Target(tuple):
    """A ``(low, high)`` cost range, both ends included, and the unit it is in.

    A tuple of the two ends, so that ``low, high = target``, ``list(target)``
    and comparisons with a plain pair keep working.

    :meth:`union` makes one target of several ranges (one search serving
    several budgets): a cost is in it when it lies in one of them, and as a
    pair it is their span.

    Args:
        low: the least cost a result may have.
        high: the budget: the most a result may cost.
        unit: what the cost counts, for messages (``"MAdds"``, ``"ms"``).
        name: the argument the budget came from, for messages.

    Raises:
        ValueError: the ends are not finite numbers with ``low <= high``.

    Example:
        >>> target = Target(95, 100, "MAdds")
        >>> target.contains(97), target.contains(101), target == (95, 100)
        (True, False, True)
        >>> print(target.below_minimum(120))
        target=100 is below the smallest model this search space can reach: 120 MAdds (every layer at its narrowest option).
    """

    def __new__(cls, low: Any, high: Any, unit: str = "cost", name: str = "target") -> "Target":
        try:
            low, high = float(low), float(high)
        except (TypeError, ValueError):
            raise ValueError(
                "`target` must be a (low, high) pair of numbers, the cost range the "
                f"final architecture must fall in. Received: target={(low, high)!r}"
            ) from None
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise ValueError(
                f"`target` must be finite with low <= high. Received: target={(low, high)!r}"
            )
        target = super().__new__(cls, (low, high))
        target.unit, target.name = unit, name
        target._ranges = ((low, high),)
        return target

    @classmethod
    def union(cls, ranges: Sequence[Sequence[float]], unit: str = "cost",
              name: str = "target") -> "Target":
        """One target of several ``(low, high)`` ranges; as a pair, their span.

        Between the ranges lies no target: LayerNAS drops a candidate whose
        reachable costs all fall in such a gap, as it drops one whose costs
        all lie outside a single range.

        Example:
            >>> tiers = Target.union([(95, 100), (45, 50)])
            >>> tiers == (45, 100), tiers.contains(70), tiers.contains(48)
            (True, False, True)
            >>> tiers.overlaps(60, 80), tiers.overlaps(60, 96)
            (False, True)
        """
        ranges = sorted(tuple(cls.of(r)) for r in ranges)
        if not ranges:
            raise ValueError("`target` needs at least one (low, high) range. Received: target=[]")
        target = cls(ranges[0][0], max(high for _, high in ranges), unit, name)
        target._ranges = tuple(ranges)
        return target

    @property
    def ranges(self) -> tuple[tuple[float, float], ...]:
        """The ``(low, high)`` ranges a cost may lie in, lowest first (one unless :meth:`union`)."""
        return self._ranges

    def encode(self) -> list:
        """JSON-ready: ``[low, high]``, or ``[[low, high], ...]`` for several ranges (:meth:`of` reads both)."""
        if len(self._ranges) == 1:
            return list(self)
        return [list(r) for r in self._ranges]

    def __getnewargs__(self):
        return (self.low, self.high, self.unit, self.name)

    @classmethod
    def of(cls, value: Any, unit: str = "cost") -> "Target":
        """``value`` itself when it is a Target, else the Target of a ``(low, high)`` pair.

        A list of pairs (:meth:`encode` of a :meth:`union`) gives their union.
        """
        if isinstance(value, Target):
            return value
        if isinstance(value, (list, tuple)) and value and all(
                isinstance(r, (list, tuple)) for r in value):
            return cls.union(value, unit)
        try:
            low, high = value
        except (TypeError, ValueError):
            raise ValueError(
                "`target` must be a (low, high) pair of numbers, the cost range the "
                f"final architecture must fall in. Received: target={value!r}"
            ) from None
        return cls(low, high, unit)

    @property
    def low(self) -> float:
        return self[0]

    @property
    def high(self) -> float:
        return self[1]

    def contains(self, cost: float) -> bool:
        """Whether ``cost`` lies in the range (both ends included), or in one of the ranges."""
        if len(self._ranges) == 1:  # the common case, called for every candidate: kept direct
            return self[0] <= cost <= self[1]
        return any(low <= cost <= high for low, high in self._ranges)

    def overlaps(self, low: float, high: float) -> bool:
        """Whether some cost in ``[low, high]`` lies in the target."""
        if len(self._ranges) == 1:
            return low <= self[1] and high >= self[0]
        return any(low <= top and high >= bottom for bottom, top in self._ranges)

    def below_minimum(self, minimum: float) -> str | None:
        """The message saying the budget is below ``minimum``; None when it is not."""
        if minimum <= self[1]:
            return None
        return (f"{self.name}={self[1]:.4g} is below the smallest model this search "
                f"space can reach: {minimum:.4g} {self.unit} (every layer at its narrowest option).")


def cheapest_arch(options: Sequence[Sequence[Hashable]], cost_fn: Callable[[tuple], float]) -> tuple:
    """Each layer's cheapest option, found with the other layers at their base (option 0).

    The cost is assumed monotone in each layer's option (what LayerNAS
    assumes), so this is the cheapest architecture of the space.

    Example:
        >>> cheapest_arch([[8, 4, 6], [3, 1]], lambda arch: arch[0] * arch[1])
        (4, 1)
    """
    base = tuple(layer[0] for layer in options)
    chosen = []
    for index, layer in enumerate(options):
        costs = [cost_fn(base[:index] + (option,) + base[index + 1:]) for option in layer]
        chosen.append(layer[costs.index(min(costs))])
    return tuple(chosen)
