"""Target: the one cost range, its test and its below-minimum message."""
from __future__ import annotations

import copy
import json
import pickle

import pytest

from keras_layernas.search import LayerNAS, Target, as_maximized, cheapest_arch


def test_target_is_its_two_ends_for_state_files_and_comparisons():
    target = Target(95, 100, "MAdds", "target_madds")
    low, high = target
    assert (low, high) == (95.0, 100.0) and target == (95, 100)
    assert json.loads(json.dumps(target)) == [95.0, 100.0]
    for clone in (pickle.loads(pickle.dumps(target)), copy.deepcopy(target)):
        assert clone == target and (clone.unit, clone.name) == ("MAdds", "target_madds")


def test_contains_includes_both_ends():
    target = Target(95, 100)
    assert [target.contains(c) for c in (94.9, 95, 97, 100, 100.1)] == [False, True, True, True, False]


def test_below_minimum_names_the_budget_and_the_minimum_in_the_unit():
    target = Target(95, 100, "ms (predicted latency)", "target_latency_ms")
    assert target.below_minimum(100) is None
    assert target.below_minimum(120.5) == (
        "target_latency_ms=100 is below the smallest model this search space can reach: "
        "120.5 ms (predicted latency) (every layer at its narrowest option).")


@pytest.mark.parametrize("bad", [(2, 1), (0, float("inf")), ("a", 1), 5, (1, 2, 3)])
def test_bad_ranges_are_refused(bad):
    with pytest.raises(ValueError, match="`target` must be"):
        Target.of(bad)


def test_searchers_keep_the_target_they_are_given():
    target = Target(8, 9, "blocks")
    search = LayerNAS([[4, 3, 2, 1]] * 3, cost_fn=sum, target=target)
    assert search.target is target
    assert LayerNAS([[4, 3, 2, 1]] * 3, cost_fn=sum, target=(8, 9)).target == target


def test_cheapest_arch_takes_each_layers_cheapest_option_whatever_its_position():
    assert cheapest_arch([[8, 4, 6], [3, 1, 2]], lambda a: a[0] * a[1]) == (4, 1)


def test_as_maximized_flips_a_minimized_score_and_back():
    assert as_maximized(as_maximized(0.25, "min"), "min") == 0.25
    assert as_maximized(0.25, "min") == -0.25 and as_maximized(0.25, "max") == 0.25
