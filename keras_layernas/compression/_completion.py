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

import dataclasses
from typing import Callable, Sequence

from keras_layernas.search import Target
from keras_layernas.surgery.space import Arch, SearchSpace

LogTerm = Callable[[int, object], float]


def _moves(space: SearchSpace, arch: Arch, free: range) -> list[tuple[Arch, int, object]]:
    """Every architecture one option of a ``free`` layer away from ``arch``."""
    moves = []
    for index in free:
        for option in space.layers[index].options:
            if option != arch[index]:
                moves.append((arch[:index] + (option,) + arch[index + 1 :], index, option))
    return moves


def complete_to_target(
    space: SearchSpace, arch: Sequence, log_term: LogTerm, target: tuple[float, float],
    first_free: int = 0,
) -> Arch | None:
    """Move ``arch`` into the cost range ``target`` by the greedy rule above.

    Args:
        space: the search space (its ``cost`` is used, never a model build).
        arch: the starting architecture, usually the best too-expensive candidate.
        log_term: ``(layer index, option) -> log importance kept`` (<= 0).
        target: the cost range (a :class:`~keras_layernas.search.Target` or ``(low, high)``).
        first_free: layers before this index keep their option.

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
    free = range(first_free, len(space.layers))

    def gain(move: tuple[Arch, int, object]) -> float:
        _, index, option = move
        return log_term(index, option) - log_term(index, current[index])

    while cost > high:
        cheaper = [(m, space.cost(m[0])) for m in _moves(space, current, free)]
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
        dearer = [(m, space.cost(m[0])) for m in _moves(space, current, free)]
        dearer = [(m, c) for m, c in dearer if cost < c <= high]
        if not dearer:
            return None
        move, cost = max(dearer, key=lambda mc: (gain(mc[0]) / (mc[1] - cost), -mc[1]))
        current = move[0]
    return current


def first_unsearched(space: SearchSpace, arch: Sequence) -> int:
    """Index of the first layer after the last one that differs from its first option.

    LayerNAS's layer-l candidate is ``(s_1..s_l, o_{l+1..L})``: the layers it
    has not searched yet hold their first option (the base model's). Read from
    the architecture alone, so every process of a distributed search agrees.
    """
    return max((i + 1 for i, (layer, option) in enumerate(zip(space.layers, arch))
                if option != layer.options[0]), default=0)


def pin_searched(space: SearchSpace, arch: Sequence) -> SearchSpace:
    """``space`` with the layers before :func:`first_unsearched` fixed to ``arch``'s options."""
    free = first_unsearched(space, arch)
    return space.with_layers([
        layer if index >= free else dataclasses.replace(layer, options=(arch[index],))
        for index, layer in enumerate(space.layers)])


def greedy_fill(space: SearchSpace, arch: Sequence, log_term: LogTerm,
                target: tuple[float, float]) -> Arch | None:
    """``arch`` with its not-yet-searched layers cut greedily until it lies in ``target``.

    A LayerNAS candidate lies far above a deep target until its last layers
    are searched, so with data (a fine-tune per trial) a budget of a few dozen
    trials never trains a model of the target's cost. Filled, every trial
    trains one: the layers from :func:`first_unsearched` on are cut by
    :func:`complete_to_target`'s greedy rule, and the trial's score stands for
    the searched choices. LayerNAS still buckets candidates by their own cost,
    so its layer-by-layer bookkeeping is unchanged.

    Returns:
        The filled architecture (``arch`` itself when already in target), or
        None when the greedy walk over the free layers does not land.

    Example:
        >>> space = SearchSpace.from_options({"a": [4, 3, 2, 1], "b": [4, 3, 2, 1]},
        ...                                  cost_fn=lambda v: v["a"] * 10 + v["b"])
        >>> keep = lambda layer, option: option - 4.0
        >>> greedy_fill(space, (3, 4), keep, (30, 32))  # a was searched: only b is cut
        (3, 2)
        >>> greedy_fill(space, (3, 4), keep, (20, 22)) is None  # b alone cannot get there
        True
    """
    arch = tuple(arch)
    if Target.of(target).contains(space.cost(arch)):
        return arch
    return complete_to_target(space, arch, log_term, target, first_unsearched(space, arch))
