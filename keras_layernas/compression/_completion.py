"""Complete an architecture to a cost range when the search budget ran out.

LayerNAS only proposes in-range architectures once it has chosen an option
for every layer, i.e. after about ``sum |S_i|`` trials; a smaller
``max_trials`` can end with the best candidates still too expensive. Such a
candidate is completed by a cost-aware greedy rule:

1. While the cost is above ``high``: among all single-layer changes to a
   cheaper option, if some land inside ``[low, high]`` take the one that keeps
   the most importance; otherwise take the change that loses the least
   importance per MAdd saved (``(log r_now - log r_new) / (cost_now - cost_new)``,
   with ``log r`` from :class:`~keras_layernas.surgery.RetainedImportance`),
   preferring changes that stay above ``low``.
2. If the last step fell below ``low``: grow back, taking the change that gains
   the most importance per MAdd while staying at or under ``high``, until the
   cost is at least ``low``.

Every step changes one layer, so the walk takes at most ``sum |S_i|`` steps
per phase, each costing ``sum |S_i|`` cost evaluations (microseconds each).
"""
from __future__ import annotations

from typing import Callable, Sequence

from keras_layernas.search import Target
from keras_layernas.surgery.space import Arch, SearchSpace

LogTerm = Callable[[int, object], float]


def _moves(space: SearchSpace, arch: Arch) -> list[tuple[Arch, int, object]]:
    """Every architecture one layer's option away from ``arch``."""
    moves = []
    for index, layer in enumerate(space.layers):
        for option in layer.options:
            if option != arch[index]:
                moves.append((arch[:index] + (option,) + arch[index + 1 :], index, option))
    return moves


def complete_to_target(
    space: SearchSpace, arch: Sequence, log_term: LogTerm, target: tuple[float, float]
) -> Arch | None:
    """Move ``arch`` into the cost range ``target`` by the greedy rule above.

    Args:
        space: the search space (its ``cost`` is used, never a model build).
        arch: the starting architecture, usually the best too-expensive candidate.
        log_term: ``(layer index, option) -> log importance kept`` (<= 0).
        target: the cost range (a :class:`~keras_layernas.search.Target` or ``(low, high)``).

    Returns:
        An architecture whose cost lies in ``target``, or None when the greedy
        walk cannot reach it (the range is narrower than one option step).

    Example:
        >>> space = SearchSpace.from_options({"a": [4, 3, 2, 1], "b": [4, 3, 2, 1]},
        ...                                  cost_fn=lambda v: v["a"] * 10 + v["b"])
        >>> keep = lambda layer, option: [0.0, -1.0][layer] * (4 - option)
        >>> complete_to_target(space, (4, 4), keep, (20, 25))  # cutting a loses nothing
        (2, 4)
    """
    target = Target.of(target)
    low, high = target
    current = tuple(arch)
    cost = space.cost(current)

    def gain(move: tuple[Arch, int, object]) -> float:
        _, index, option = move
        return log_term(index, option) - log_term(index, current[index])

    while cost > high:
        cheaper = [(m, space.cost(m[0])) for m in _moves(space, current)]
        cheaper = [(m, c) for m, c in cheaper if c < cost]
        if not cheaper:
            return None
        landing = [(m, c) for m, c in cheaper if target.contains(c)]
        if landing:
            move, cost = max(landing, key=lambda mc: (gain(mc[0]), mc[1]))
            return move[0]
        above = [(m, c) for m, c in cheaper if c > high] or cheaper
        move, cost = max(above, key=lambda mc: (gain(mc[0]) / (cost - mc[1]), mc[1]))
        current = move[0]
    while cost < low:
        dearer = [(m, space.cost(m[0])) for m in _moves(space, current)]
        dearer = [(m, c) for m, c in dearer if cost < c <= high]
        if not dearer:
            return None
        move, cost = max(dearer, key=lambda mc: (gain(mc[0]) / (mc[1] - cost), -mc[1]))
        current = move[0]
    return current
