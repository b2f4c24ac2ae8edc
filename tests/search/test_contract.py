"""The ask/tell contract every searcher honours (LayerNAS and both baselines)."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from keras_layernas.search import LayerNAS, RandomSearch, RegularizedEvolution
from tests.search._spaces import (
    CHAIN_OPTIONS,
    CHAIN_TARGET,
    can_complete_in_target,
    chain_cost,
    chain_score,
)

SEARCHERS = {
    "layernas": lambda **kw: LayerNAS(CHAIN_OPTIONS, chain_cost, CHAIN_TARGET,
                                      num_buckets=8, per_bucket=2, **kw),
    "random": lambda **kw: RandomSearch(CHAIN_OPTIONS, chain_cost, CHAIN_TARGET, **kw),
    # one missed draw and it walks (what a deep cut of a large space does)
    "random_walk": lambda **kw: RandomSearch(CHAIN_OPTIONS, chain_cost, CHAIN_TARGET, max_attempts=1, **kw),
    "evolution": lambda **kw: RegularizedEvolution(CHAIN_OPTIONS, chain_cost, CHAIN_TARGET,
                                                   population_size=8, tournament_size=3, **kw),
}
CLASSES = {"layernas": LayerNAS, "random": RandomSearch, "random_walk": RandomSearch,
           "evolution": RegularizedEvolution}


@pytest.fixture(params=sorted(SEARCHERS))
def name(request):
    return request.param


def run_sequential(search, limit=10_000):
    asked = []
    while len(asked) < limit and (cand := search.ask()) is not None:
        asked.append(cand)
        search.tell(cand, chain_score(cand.arch))
    return asked


def test_runs_to_finished_without_duplicates(name):
    search = SEARCHERS[name](max_trials=60)
    asked = run_sequential(search)
    assert len(asked) > 10
    assert len({c.arch for c in asked}) == len(asked)
    assert [c.id for c in asked] == list(range(len(asked)))
    assert search.finished and search.ask() is None
    assert search.num_told == len(asked)


def test_never_proposes_an_architecture_that_cannot_reach_target(name):
    search = SEARCHERS[name](max_trials=80)
    for cand in run_sequential(search):
        assert cand.cost == chain_cost(cand.arch)
        prefix = cand.arch[: cand.layer + 1]
        assert can_complete_in_target(prefix, CHAIN_OPTIONS, chain_cost, CHAIN_TARGET), cand
        if name != "layernas":
            assert CHAIN_TARGET[0] <= cand.cost <= CHAIN_TARGET[1]


def test_best_is_the_top_scored_told_candidate_in_target(name):
    search = SEARCHERS[name](max_trials=40)
    assert search.best() is None
    asked = run_sequential(search)
    in_target = [c for c in asked if CHAIN_TARGET[0] <= c.cost <= CHAIN_TARGET[1]]
    expected = max(in_target, key=lambda c: chain_score(c.arch))
    assert search.best() == (expected.arch, chain_score(expected.arch))


def test_async_tells_in_any_order_keep_the_contract(name):
    search = SEARCHERS[name](max_trials=50)
    seen, batch = [], []
    while not search.finished:
        while len(batch) < 5 and (cand := search.ask()) is not None:
            batch.append(cand)
        assert batch, "nothing pending yet ask() gave nothing and the search is not finished"
        batch.reverse()  # the newest comes back first
        cand = batch.pop(0) if len(seen) % 2 else batch.pop()
        search.tell(cand.id, chain_score(cand.arch))  # tell by id, as a tuner does
        seen.append(cand.arch)
    assert len(set(seen)) == len(seen) == search.num_told
    assert search.pending == []


def test_json_round_trip_continues_identically(name):
    uninterrupted = SEARCHERS[name](seed=3, max_trials=45)
    interrupted = SEARCHERS[name](seed=3, max_trials=45)
    for search in (uninterrupted, interrupted):
        for _ in range(12):
            cand = search.ask()
            search.tell(cand, chain_score(cand.arch))
        search.ask()  # one left pending across the save
    restored = CLASSES[name].from_json(json.loads(json.dumps(interrupted.to_json())), chain_cost)
    assert [c.id for c in restored.pending] == [c.id for c in uninterrupted.pending]
    for search in (uninterrupted, restored):
        pending = search.pending[0]
        search.tell(pending, chain_score(pending.arch))
    rest_a = run_sequential(uninterrupted)
    rest_b = run_sequential(restored)
    assert rest_a and [(c.id, c.arch, c.layer) for c in rest_a] == [
        (c.id, c.arch, c.layer) for c in rest_b
    ]
    assert restored.to_json() == uninterrupted.to_json()


def test_same_seed_same_proposals_different_seed_differs(name):
    first = [c.arch for c in run_sequential(SEARCHERS[name](seed=5, max_trials=30))]
    again = [c.arch for c in run_sequential(SEARCHERS[name](seed=5, max_trials=30))]
    assert first == again
    if name != "layernas":  # LayerNAS with exploration only diverges after a while
        other = [c.arch for c in run_sequential(SEARCHERS[name](seed=6, max_trials=30))]
        assert other != first


def test_failed_trials_are_never_best(name):
    search = SEARCHERS[name](max_trials=30)
    for i, cand in enumerate(iter(search.ask, None)):
        search.tell(cand, None if i % 2 == 0 else (math.nan if i % 3 == 0 else -float(i)))
    best_arch, best_score = search.best()
    assert best_score == max(r.score for r in search.history if r.score is not None
                             and CHAIN_TARGET[0] <= r.cost <= CHAIN_TARGET[1])
    failed = [i for i in range(search.num_told) if i % 2 == 0 or i % 3 == 0]
    assert [r.id for r in search.history if r.score is None] == failed


@pytest.mark.parametrize(
    "bad_tell, message",
    [
        (lambda s, c: s.tell(99, 1.0), "was never asked"),
        (lambda s, c: (s.tell(c, 1.0), s.tell(c, 1.0)), "already told"),
        (lambda s, c: s.tell(c, "high"), "score"),
        (lambda s, c: s.tell(c, math.inf), "finite"),
        (lambda s, c: s.tell("0", 1.0), "Candidate from ask"),
        (lambda s, c: s.tell(type(c)(c.id, c.arch[:2], c.indices[:2], 1, 3.0), 1.0),
         "has 2 values but this search has 4 layers"),
        (lambda s, c: s.tell(type(c)(c.id, c.arch, c.indices, c.layer, c.cost + 1), 1.0),
         "does not match"),
    ],
)
def test_bad_tells_raise_clear_errors(name, bad_tell, message):
    search = SEARCHERS[name]()
    cand = search.ask()
    with pytest.raises(ValueError, match=message):
        bad_tell(search, cand)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(options=[]), "empty"),
        (dict(options=[[1, 2], []]), r"options\[1\]` is empty"),
        (dict(options=[[1, 1, 2]]), "repeats"),
        (dict(target=(1.0, 2.0, 3.0)), "pair"),
        (dict(target=(5.0, 1.0)), "low <= high"),
        (dict(target=(1e9, 2e9)), "outside the reachable range"),
        (dict(cost_fn=lambda arch: math.nan), "finite number"),
        (dict(max_trials=0), "max_trials"),
    ],
)
def test_bad_arguments_raise_clear_errors(name, kwargs, message):
    args = {"options": CHAIN_OPTIONS, "cost_fn": chain_cost, "target": CHAIN_TARGET, **kwargs}
    with pytest.raises(ValueError, match=message):
        CLASSES[name](args.pop("options"), args.pop("cost_fn"), args.pop("target"), **args)


def test_from_json_rejects_another_cost_fn_or_class(name):
    search = SEARCHERS[name]()
    cand = search.ask()
    search.tell(cand, 1.0)
    with pytest.raises(ValueError, match="disagrees"):
        CLASSES[name].from_json(search.to_json(), lambda arch: chain_cost(arch) + 1)
    other = LayerNAS if name != "layernas" else RandomSearch
    with pytest.raises(ValueError, match="restore it with"):
        other.from_json(search.to_json(), chain_cost)


def test_option_values_of_any_json_type_round_trip(name):
    options = [["wide", "narrow"], [(3, 3), (5, 5), (1, 1)], [True, False], [None, 2.5]]
    weight = {"wide": 4, "narrow": 2, (3, 3): 3, (5, 5): 5, (1, 1): 1,
              True: 2, False: 1, None: 2, 2.5: 1}

    def cost(arch):
        return float(sum(weight[v] if not isinstance(v, bool) else (2 if v else 1) for v in arch))

    search = CLASSES[name](options, cost, (6.0, 9.0))
    cand = search.ask()
    search.tell(cand, 0.5)
    restored = CLASSES[name].from_json(search.to_json(), cost)
    assert restored.options == search.options
    assert restored.history[0].arch == cand.arch
    assert all(type(a) is type(b) for a, b in zip(restored.history[0].arch, cand.arch))


def test_unserialisable_option_values_are_refused_at_save(name):
    class Custom:
        pass

    options = [[Custom(), Custom()], [1, 2]]
    search = CLASSES[name](options, lambda arch: float(arch[1]), (1.0, 2.0))
    with pytest.raises(TypeError, match="Received"):
        search.to_json()


def test_importing_search_loads_neither_tensorflow_nor_keras():
    code = (
        "import sys, keras_layernas.search\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert out.stdout.strip() == "[]"
