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


# -- several ranges: one search serving several budgets -------------------------------
def test_a_union_contains_a_cost_in_any_range_and_none_between_them():
    tiers = Target.union([(95, 100), (45, 50)], "MAdds", "target_madds")
    assert tiers == (45, 100) and tiers.ranges == ((45, 50), (95, 100))
    assert [tiers.contains(c) for c in (44, 45, 50, 70, 95, 100, 101)] == [
        False, True, True, False, True, True, False]
    assert [tiers.overlaps(*r) for r in ((60, 80), (60, 95), (30, 44), (49, 60))] == [
        False, True, False, True]


def test_a_union_round_trips_through_its_encoding_pickle_and_copies():
    tiers = Target.union([(95, 100), (45, 50)], "MAdds", "target_madds")
    assert tiers.encode() == [[45, 50], [95, 100]] and Target(1, 2).encode() == [1, 2]
    decoded = Target.of(json.loads(json.dumps(tiers.encode())))
    assert decoded.ranges == tiers.ranges
    for clone in (pickle.loads(pickle.dumps(tiers)), copy.copy(tiers), copy.deepcopy(tiers)):
        assert clone.ranges == tiers.ranges and clone.name == "target_madds"


def test_layernas_never_tries_a_last_layer_candidate_between_two_ranges_and_resumes_them():
    options = [[4, 3, 2, 1]] * 3  # option value = its cost: sums 3..12
    tiers = Target.union([(11, 12), (4, 5)])

    def search_to_the_end(search):
        while (candidate := search.ask()) is not None:
            search.tell(candidate, score=candidate.arch[0] + candidate.arch[1] / 10)
        return search

    search = search_to_the_end(LayerNAS(options, cost_fn=sum, target=tiers, num_buckets=4,
                                        per_bucket=2))
    last = [r.cost for r in search.history if r.layer == 2]
    assert last and all(tiers.contains(cost) for cost in last)
    assert {tiers.contains(r.cost) for r in search.history} == {True, False}  # earlier layers
    spanning = search_to_the_end(LayerNAS(options, cost_fn=sum, target=(4, 12), num_buckets=4,
                                          per_bucket=2))
    assert search.num_told < spanning.num_told
    restored = LayerNAS.from_json(search.to_json(), sum)
    assert restored.target.ranges == tiers.ranges and restored.best() == search.best()
