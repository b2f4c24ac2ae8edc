"""LayerNAS specifics: Eq. 4 buckets, the O(H|S|L) bound, Appendix I's toy."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from keras_layernas.search import BestFirst, LayerNAS, RandomParent
from tests.search._spaces import CHAIN_OPTIONS, CHAIN_TARGET, chain_cost, chain_score

# Appendix I: 3 layers, options A-D costing 1-4 (M MAdds), default D.
TOY_OPTIONS = [["D", "C", "B", "A"]] * 3
TOY_COST = {"A": 1, "B": 2, "C": 3, "D": 4}
TOY_TARGET = (8, 9)


def toy_cost(arch):
    return float(sum(TOY_COST[v] for v in arch))


def toy_score(arch):
    """A separable accuracy (Assumption 4.2 holds): earlier layers matter more."""
    return float(sum(w * np.log(TOY_COST[v]) for w, v in zip((0.5, 0.3, 0.2), arch)))


def run(search, score):
    while (cand := search.ask()) is not None:
        search.tell(cand, score(cand.arch))
    return search


def test_eq4_buckets_reproduce_appendix_i_layouts():
    search = LayerNAS(TOY_OPTIONS, toy_cost, TOY_TARGET, num_buckets=4, per_bucket=2)
    index = {v: i for i, v in enumerate(TOY_OPTIONS[0])}

    def bucket(layer, arch):
        return search.bucket_of(layer, tuple(index[v] for v in arch))

    # layer 1: [9] [10] [11] [12]
    assert [bucket(0, a + "DD") for a in "ABCD"] == [0, 1, 2, 3]
    # layer 2: [6-7] [8] [9-10] [11-12]
    costs_to_bucket = {toy_cost(a + b + "D"): bucket(1, a + b + "D") for a in "ABCD" for b in "ABCD"}
    assert costs_to_bucket == {6: 0, 7: 0, 8: 1, 9: 2, 10: 2, 11: 3, 12: 3}
    # layer 3 over 3-12: the 8-9 target is one bucket
    assert bucket(2, "CAD") == bucket(2, "ADD") == bucket(2, "BCA") + 1


def test_appendix_i_toy_finds_the_true_best_with_few_evaluations():
    search = run(LayerNAS(TOY_OPTIONS, toy_cost, TOY_TARGET, num_buckets=4, per_bucket=2,
                          policy=BestFirst(explore=0.0)), toy_score)
    archs = list(itertools.product(*TOY_OPTIONS))
    truth = max((a for a in archs if 8 <= toy_cost(a) <= 9), key=toy_score)
    assert search.best() == (truth, toy_score(truth))
    # 64 architectures exist; the paper reports 12 evaluations for its run.
    assert search.num_told == 20
    assert search.finished


def test_unique_bucket_key_makes_the_search_complete():
    """With one bucket per architecture nothing is pruned (paper 4.1, Appendix E.1)."""
    rng = np.random.default_rng(0)
    archs = list(itertools.product(*TOY_OPTIONS))
    scores = dict(zip(archs, rng.random(len(archs))))  # no structure at all
    search = run(LayerNAS(TOY_OPTIONS, toy_cost, TOY_TARGET, per_bucket=1,
                          bucket_key=lambda layer, arch, cost: arch), scores.__getitem__)
    truth = max((a for a in archs if 8 <= toy_cost(a) <= 9), key=scores.__getitem__)
    assert search.best()[0] == truth


@pytest.mark.parametrize("num_buckets, per_bucket", [(1, 1), (2, 1), (3, 2)])
def test_evaluations_never_exceed_h_k_sum_s(num_buckets, per_bucket):
    options = [[5, 4, 3, 2, 1]] * 6
    rng = np.random.default_rng(1)
    archs = list(itertools.product(*options))
    scores = dict(zip(archs, rng.random(len(archs))))
    search = run(LayerNAS(options, lambda a: float(sum(a)), (12, 18), num_buckets=num_buckets,
                          per_bucket=per_bucket, policy=RandomParent(), seed=2),
                 scores.__getitem__)
    assert search.finished
    assert 0 < search.num_told <= num_buckets * per_bucket * sum(len(o) for o in options)


def test_buckets_keep_the_best_per_bucket_and_pareto_front_is_sorted():
    search = run(LayerNAS(CHAIN_OPTIONS, chain_cost, CHAIN_TARGET, num_buckets=6,
                          per_bucket=2), chain_score)
    tables = search.bucket_table()
    assert len(tables) == len(CHAIN_OPTIONS)
    told = {r.id: r for r in search.history}
    for table in tables:
        for members in table.values():
            assert 1 <= len(members) <= 2
            scores = [m["score"] for m in members]
            assert scores == sorted(scores, reverse=True)
            assert all(told[m["id"]].score == m["score"] for m in members)
    front = search.pareto_front()
    assert front and [r.cost for r in front] == sorted(r.cost for r in front)
    assert all(CHAIN_TARGET[0] <= r.cost <= CHAIN_TARGET[1] for r in front)
    assert max(r.score for r in front) == search.best()[1]


def test_candidates_are_prefixes_of_the_base_then_options():
    search = LayerNAS(CHAIN_OPTIONS, chain_cost, CHAIN_TARGET, num_buckets=6, per_bucket=2)
    base = tuple(o[0] for o in CHAIN_OPTIONS)
    for cand in iter(search.ask, None):
        assert cand.arch[cand.layer + 1:] == base[cand.layer + 1:]
        search.tell(cand, chain_score(cand.arch))


def test_ask_returns_none_while_waiting_but_is_not_finished():
    search = LayerNAS(CHAIN_OPTIONS, chain_cost, CHAIN_TARGET, num_buckets=6, per_bucket=2)
    first_layer = list(iter(search.ask, None))
    assert {c.layer for c in first_layer} == {0}
    assert not search.finished  # parents for layer 1 arrive with these scores
    search.tell(first_layer[0], 1.0)
    assert search.ask() is not None


def test_bad_layernas_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="num_buckets"):
        LayerNAS(CHAIN_OPTIONS, chain_cost, CHAIN_TARGET, num_buckets=0)
    with pytest.raises(ValueError, match="per_bucket"):
        LayerNAS(CHAIN_OPTIONS, chain_cost, CHAIN_TARGET, per_bucket=1.5)
    with pytest.raises(ValueError, match="policy"):
        LayerNAS(CHAIN_OPTIONS, chain_cost, CHAIN_TARGET, policy="greedy")
    with pytest.raises(ValueError, match="explore"):
        BestFirst(explore=2)
    with pytest.raises(ValueError, match="bucket_key"):
        LayerNAS(CHAIN_OPTIONS, chain_cost, CHAIN_TARGET, bucket_key="cost")
