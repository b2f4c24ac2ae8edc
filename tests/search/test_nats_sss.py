"""A reduced NATS-Bench size-search run: LayerNAS must beat random search on real data."""
from __future__ import annotations

import numpy as np

from benchmarks.nats_sss import SEARCHERS, load_table, regret_curves


def test_layernas_beats_random_search_at_200_trials_on_cifar100(shared_dir):
    table = load_table("cifar100", shared_dir / "data" / "nas-benchmarks" / "nats_sss.csv.gz")
    assert table.optimum == 70.40  # the README's optimum under 140 MFLOPs
    seeds, budget = range(3), 200
    mean_accuracy = {
        name: np.mean([table.optimum - regret_curves(table, SEARCHERS[name], s, 0.2, budget)[0][-1]
                       for s in seeds])
        for name in ("LayerNAS", "RandomSearch")
    }
    assert mean_accuracy["LayerNAS"] > mean_accuracy["RandomSearch"]
    assert table.optimum - mean_accuracy["LayerNAS"] < 0.3
