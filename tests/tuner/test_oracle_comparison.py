"""A reduced oracle comparison: real KerasTuner Tuners over NATS-sss table look-ups."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks import nats_sss
from benchmarks.oracle_comparison import (
    SEARCHERS,
    RunLog,
    load_table,
    regret_curve,
    run_one,
)


@pytest.fixture(scope="module")
def cifar10(shared_dir):
    return load_table("cifar10", shared_dir / "data" / "nas-benchmarks" / "nats_sss.csv.gz")


def test_regret_counts_only_scored_in_target_trials_and_keeps_the_earliest_tie(cifar10):
    in_target = sorted((a for a, f in cifar10.flops.items()
                        if cifar10.target[0] <= f <= cifar10.target[1]),
                       key=cifar10.accuracy.__getitem__)
    worse, better = in_target[0], in_target[-1]
    too_big = (64, 64, 64, 64, 64)
    log = RunLog(archs=[too_big, worse, better, too_big, worse],
                 scores=[None, 50.0, 50.0, 99.0, 60.0],
                 infeasible=[True, False, False, True, False])

    curve = regret_curve(cifar10, log, budget=7)

    regret_worse = cifar10.optimum - cifar10.accuracy[worse]
    assert np.isnan(curve[0])  # a failed trial is no answer
    # the tie at 50.0 keeps the earlier trial; the out-of-target 99.0 is never returned
    np.testing.assert_allclose(curve[1:5], [regret_worse] * 4)
    np.testing.assert_allclose(curve[5:], [regret_worse] * 2)  # stopped early: answer stays


@pytest.mark.slow
def test_layernas_oracle_beats_random_and_grid_search_oracles_through_tuners(
        cifar10, monkeypatch):
    from keras_tuner.src import config

    monkeypatch.setattr(config, "DEBUG", False)  # no traceback per rejected trial
    seeds, budget = (0, 1), 100
    logs = {name: [run_one(SEARCHERS[name], cifar10, 0.0, seed, budget) for seed in seeds]
            for name in ("LayerNAS", "RandomSearch", "GridSearch")}
    # run_one also asserts that oracle.get_best_trials(1) is the trial scored here
    final_regret = {name: np.mean([regret_curve(cifar10, log, budget)[-1] for log in runs])
                    for name, runs in logs.items()}

    assert all(len(log.archs) == budget for runs in logs.values() for log in runs)
    # through KerasTuner, LayerNAS proposes exactly what the bare search core does
    for seed, log in zip(seeds, logs["LayerNAS"]):
        core = nats_sss.regret_curves(cifar10, nats_sss.SEARCHERS["LayerNAS"], seed, 0.0, budget)
        np.testing.assert_array_equal(regret_curve(cifar10, log, budget), core[0])
    assert final_regret["LayerNAS"] < 0.1
    assert final_regret["LayerNAS"] < final_regret["RandomSearch"]
    # only ~11% of NATS-sss lies in (112, 140] MFLOPs: random search rejects most trials
    assert not any(any(log.infeasible) for log in logs["LayerNAS"])
    assert np.mean([np.mean(log.infeasible) for log in logs["RandomSearch"]]) > 0.7
    # the grid starts at the widest architecture and never reaches the target in 100 trials
    assert np.isnan(final_regret["GridSearch"])
