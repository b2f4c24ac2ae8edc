"""A reduced NAS-Bench-201 topology-mode run on the real table (benchmarks/nb201.py)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from benchmarks.nb201 import (
    NUM_ARCHS,
    SEARCHERS,
    edge_options,
    layernas,
    load_table,
    node_options,
    op_code,
    search_run,
)


@pytest.fixture(scope="module")
def cifar10(shared_dir):
    return load_table("cifar10", shared_dir / "data" / "nas-benchmarks" / "nb201.csv.gz")


@pytest.mark.parametrize("encoding", [node_options, edge_options])
@pytest.mark.parametrize("default", ["none", "pass_through"])
def test_encoding_covers_every_cell_of_the_table_exactly_once(cifar10, encoding, default):
    options = encoding(default)
    expected_sizes = [5, 25, 125] if encoding is node_options else [5] * 6
    assert [len(layer) for layer in options] == expected_sizes
    codes = [op_code(arch) for arch in itertools.product(*options)]
    assert len(codes) == len(set(codes)) == NUM_ARCHS == 15_625
    assert set(codes) == set(cifar10.flops)


def test_pass_through_default_gives_layer_one_candidates_working_cells(cifar10):
    # A layer-1 candidate is (option, base, base). With the paper's "none"
    # default the output node is zero, so all score chance (one value); with
    # the pass-through default each is the cell "node 1 = op(input)", which
    # is dead only when op itself is none.
    def layer_one_scores(default):
        first, *later = node_options(default)
        return {op: cifar10.validation[op_code((op, *(layer[0] for layer in later)))][0]
                for op in first}

    assert op_code((("nor_conv_3x3",), ("none", "skip_connect"),
                    ("none", "none", "skip_connect"))) == "301001"
    assert set(layer_one_scores("none").values()) == {9.712}
    working = layer_one_scores("pass_through")
    assert working.pop(("none",)) == 9.712
    assert len(working) == 4 and min(working.values()) > 50.0


def test_layernas_pass_through_beats_random_search_and_paper_literal_default(cifar10):
    seeds, budget = range(3), 1000
    mean_test = {
        name: np.mean([search_run(cifar10, SEARCHERS[name], seed, budget)["returned"][-1]
                       for seed in seeds])
        for name in ("LayerNAS (default pass-through)", "LayerNAS (default none, paper)",
                     "RandomSearch")
    }
    assert mean_test["LayerNAS (default pass-through)"] >= mean_test["RandomSearch"]
    assert mean_test["LayerNAS (default pass-through)"] > mean_test["LayerNAS (default none, paper)"]
    assert cifar10.optimum - mean_test["LayerNAS (default pass-through)"] < 0.3


def test_search_run_stops_at_the_budget_and_returns_at_most_the_best_evaluated(cifar10):
    run = search_run(cifar10, SEARCHERS["LayerNAS (default pass-through)"], seed=0, budget=300)
    assert run["trials"] == 300
    assert np.all(run["returned"] <= run["evaluated"])
    assert np.all(np.diff(run["evaluated"]) >= 0)


def test_edge_pass_through_default_skips_from_the_previous_node_only():
    bases = [layer[0] for layer in edge_options("pass_through")]
    # edges in table order: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2
    assert op_code(bases) == "101001"


def test_load_table_rejects_an_unknown_dataset():
    with pytest.raises(ValueError, match="Received: dataset='imagenet'"):
        load_table("imagenet")


@pytest.mark.parametrize("encoding", [node_options, edge_options])
def test_encodings_reject_an_unknown_default(encoding):
    with pytest.raises(ValueError, match="Received: default='identity'"):
        encoding("identity")


def test_searcher_factories_reject_an_unknown_encoding():
    with pytest.raises(ValueError, match="Received: encoding='cells'"):
        layernas("pass_through", encoding="cells")
