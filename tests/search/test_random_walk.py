"""RandomSearch at a deep cut: the target is a sliver no uniform draw hits, so it walks."""
from __future__ import annotations

import numpy as np

from keras_layernas.search import RandomSearch

OPTIONS = [list(range(16, 0, -1))] * 12


def cost(arch):
    """A chain of convolutions: each layer's cost couples its width to the previous one's."""
    return 3 * arch[0] + sum(a * b for a, b in zip(arch, arch[1:]))


TARGET = (0.95 * 100, 100)  # 3.5% of the base's 2,864; 0 of 200,000 uniform draws land here


def test_a_target_uniform_draws_miss_still_gets_distinct_varied_in_target_proposals():
    rng = np.random.default_rng(0)
    draws = rng.integers(1, 17, size=(20_000, 12))
    assert not any(TARGET[0] <= cost(tuple(d)) <= TARGET[1] for d in draws)  # rejection would fail
    search = RandomSearch(OPTIONS, cost, TARGET, seed=0, max_attempts=1_000, max_trials=40)
    asked = []
    while (candidate := search.ask()) is not None:
        asked.append(candidate.arch)
        search.tell(candidate, 0.0)
    assert len(asked) == 40 and len(set(asked)) == 40
    assert all(TARGET[0] <= cost(arch) <= TARGET[1] for arch in asked)
    # not one family: every layer takes several widths across the proposals
    assert min(len({arch[layer] for arch in asked}) for layer in range(12)) >= 3


def test_a_target_between_the_ranges_of_a_union_is_walked_into_one_of_them():
    from keras_layernas.search import Target

    tiers = Target.union([(95, 100), (400, 420)])
    search = RandomSearch(OPTIONS, cost, tiers, seed=1, max_attempts=10, max_trials=30)
    asked = [c.arch for c in iter(search.ask, None) if search.tell(c, 0.0) is None]
    assert len(asked) == 30 and all(tiers.contains(cost(arch)) for arch in asked)
    assert {95 <= cost(arch) <= 100 for arch in asked} == {True, False}  # both tiers are drawn
