"""Every speed goal of the project, measured side by side in one process.

The separate speed benchmarks each ran at their own time, under their own
machine load; this script re-measures their headline numbers back to back so
the ratios can be read against each other:

* ``count_madds`` vs TF's graph profiler (MobileNetV2 1.0 @224), as in
  ``benchmarks.profile_speed``;
* ``space.cost(arch)`` in microseconds and ``space.materialize(arch)`` vs a
  plain ``keras.applications.MobileNetV2`` build, as in ``benchmarks.surgery_speed``;
* LayerNAS ``ask()``/``tell()`` per trial on the 26-layer space of
  ``benchmarks.search_overhead``;
* ``LayerNASOracle`` vs KerasTuner's ``RandomSearchOracle`` per trial through a
  real Tuner whose ``run_trial`` is a table look-up, as in
  ``benchmarks.oracle_comparison``.

Usage:
    python -m benchmarks.speed_summary            # JSON + docs section
    python -m benchmarks.speed_summary --quick    # fewer repeats and trials
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import random
import statistics
import time
from dataclasses import asdict, dataclass

import keras

from benchmarks import oracle_comparison, profile_speed, search_overhead, surgery_speed
from benchmarks._report import markdown_table, write_json, write_section
from benchmarks.nats_sss import load_table
from keras_layernas.profiling import count_madds, tf_profiler_madds
from keras_layernas.search import LayerNAS
from keras_layernas.surgery import SearchSpace


@dataclass(frozen=True)
class Budget:
    """How much of each measurement to repeat; --quick trades precision for time."""

    profiler_repeats_tf: int
    profiler_repeats_ours: int
    cost_archs: int
    builds: int
    search_trials: int
    oracle_seeds: tuple
    oracle_trials: int


FULL = Budget(3, 200, 2000, surgery_speed.REPEATS, 2000, (0, 1, 2), 200)
QUICK = Budget(1, 20, 200, 2, 300, (0,), 40)


def _build_mobilenet_v2() -> keras.Model:
    return keras.applications.MobileNetV2(weights=None, alpha=1.0, input_shape=(224, 224, 3))


def measure_profiler(model: keras.Model, budget: Budget) -> dict:
    """Median seconds of ``count_madds`` and of TF's profiler on the same model.

    Raises:
        RuntimeError: the two counts differ (the ratio would compare unequal work).
    """
    ours, theirs = count_madds(model), tf_profiler_madds(model)
    if ours != theirs:
        raise RuntimeError(f"count_madds={ours} but TF profiler={theirs} on MobileNetV2 1.0.")
    ours_s = profile_speed._median_seconds(lambda: count_madds(model), budget.profiler_repeats_ours)
    tf_s = profile_speed._median_seconds(lambda: tf_profiler_madds(model),
                                         budget.profiler_repeats_tf)
    return {"madds": ours, "ours_median_s": ours_s, "tf_profiler_median_s": tf_s,
            "speedup": tf_s / ours_s}


def measure_surgery(model: keras.Model, budget: Budget) -> dict:
    """``space.cost`` per call, and materialize vs a plain build, alternated per repeat."""
    space = SearchSpace.from_model(model)
    rng = random.Random(0)
    archs = [tuple(rng.choice(layer.options) for layer in space.layers)
             for _ in range(budget.cost_archs)]
    space.cost(archs[0])  # first call fills caches; the goal is about the steady state
    start = time.perf_counter()
    for arch in archs:
        space.cost(arch)
    cost_us = (time.perf_counter() - start) / len(archs) * 1e6

    plain, base, random_arch = [], [], []
    for i in range(budget.builds):
        keras.backend.clear_session()
        plain.append(surgery_speed._seconds(_build_mobilenet_v2))
        base.append(surgery_speed._seconds(lambda: space.materialize(space.base_arch)))
        random_arch.append(surgery_speed._seconds(lambda: space.materialize(archs[i])))
    plain_s, base_s, random_s = (statistics.median(v) for v in (plain, base, random_arch))
    return {"cost_us_per_call": cost_us, "cost_calls": len(archs),
            "plain_build_median_s": plain_s, "materialize_base_median_s": base_s,
            "materialize_random_median_s": random_s,
            "materialize_over_plain_base": base_s / plain_s,
            "materialize_over_plain_random": random_s / plain_s}


def measure_search(budget: Budget) -> dict:
    """LayerNAS (H=100, k=3) ask/tell times on the 26-layer MobileNet-like space."""
    options, cost, target = search_overhead.mobilenet_like_space()
    search = LayerNAS(options, cost, target, num_buckets=100, per_bucket=3)
    return search_overhead.time_searcher(search, budget.search_trials)


def measure_oracles(budget: Budget) -> dict:
    """Per-trial wall time of LayerNASOracle and RandomSearchOracle through a Tuner.

    Seeds alternate between the two oracles so machine load hits both alike.
    """
    oracle_comparison.quiet_failed_trials()
    table = load_table("cifar10")
    names = ("LayerNAS", "RandomSearch")
    logs = {name: [] for name in names}
    for seed in budget.oracle_seeds:
        for name in names:
            logs[name].append(oracle_comparison.run_one(
                oracle_comparison.SEARCHERS[name], table, 0.0, seed, budget.oracle_trials))
    result = {}
    for name in names:
        trials = sum(len(log.archs) for log in logs[name])
        result[name] = {
            "trials": trials,
            "ms_per_trial": 1000 * sum(log.search_seconds for log in logs[name]) / trials,
            "populate_space_ms_per_trial":
                1000 * sum(sum(log.propose_seconds) for log in logs[name]) / trials,
        }
    return result


def section(measured: dict, budget: Budget, command: str, seconds: float) -> str:
    """The docs/benchmarks.md section: one table, every number from this run."""
    profiler, surgery = measured["profiler"], measured["surgery"]
    search, oracles = measured["search"], measured["oracles"]
    layernas, random_search = oracles["LayerNAS"], oracles["RandomSearch"]
    propose_ratio = (layernas["populate_space_ms_per_trial"]
                     / random_search["populate_space_ms_per_trial"])
    rows = [
        ["MAdds count, MobileNetV2 1.0 @224",
         f"`count_madds` {profiler['ours_median_s'] * 1e3:.2f} ms",
         f"TF profiler {profiler['tf_profiler_median_s']:.2f} s",
         f"{profiler['speedup']:.0f}x faster", ">= 500x"],
        ["`space.cost(arch)`, MobileNetV2 1.0 @224", f"{surgery['cost_us_per_call']:.1f} us / call",
         f"{surgery['cost_calls']} random archs", "", "<= 50 us"],
        ["`materialize(base_arch)`", f"{surgery['materialize_base_median_s']:.2f} s",
         f"plain `MobileNetV2()` {surgery['plain_build_median_s']:.2f} s",
         f"{surgery['materialize_over_plain_base']:.2f}x", "<= 2x"],
        ["`materialize(random arch)`", f"{surgery['materialize_random_median_s']:.2f} s",
         f"plain `MobileNetV2()` {surgery['plain_build_median_s']:.2f} s",
         f"{surgery['materialize_over_plain_random']:.2f}x", "<= 2x"],
        ["LayerNAS `ask()`, 26-layer space (H=100, k=3)",
         f"{search['ask_mean_ms']:.3f} ms wall mean ({search['ask_cpu_mean_ms']:.3f} ms CPU, "
         f"p99 CPU {search['ask_cpu_p99_ms']:.2f} ms)",
         f"{search['trials']} trials", "", "<= 1 ms"],
        ["LayerNAS `tell()`, same run", f"{search['tell_mean_ms']:.3f} ms wall mean", "", "", ""],
        ["Tuner trial, look-up `run_trial` (NATS-sss cifar10)",
         f"`LayerNASOracle` {layernas['ms_per_trial']:.1f} ms",
         f"`RandomSearchOracle` {random_search['ms_per_trial']:.1f} ms",
         f"{layernas['ms_per_trial'] / random_search['ms_per_trial']:.2f}x", ""],
        ["of which the oracle's `populate_space`",
         f"{layernas['populate_space_ms_per_trial']:.2f} ms",
         f"{random_search['populate_space_ms_per_trial']:.2f} ms",
         f"{propose_ratio:.2f}x",
         ""],
    ]
    return (
        "## speed_summary: every speed goal, side by side in one run\n\n"
        f"`{command}` (raw: `benchmarks/results/speed_summary.json`), one process, "
        f"{seconds:.0f} s in all, measured one after another on a {os.cpu_count()}-core machine "
        f"shared with other jobs (1-min load average {measured['load_average_1min']:.1f} at the "
        "end; the separate sections above saw times vary 2-3x between runs). Each row reuses "
        "the functions of the benchmark named in its section above: `profile_speed` (medians of "
        f"{budget.profiler_repeats_ours} / {budget.profiler_repeats_tf} calls), `surgery_speed` "
        f"(builds alternate plain / materialize, medians of {budget.builds}), `search_overhead` "
        f"({budget.search_trials} sequential trials), `oracle_comparison` (sigma 0, seeds "
        f"{list(budget.oracle_seeds)} x {budget.oracle_trials} trials per oracle, alternating; "
        "the RandomSearch oracle rejects out-of-target architectures with `FailedTrialError`, "
        "the time of a whole `Tuner.search` divided by its trials).\n\n"
        + markdown_table(["what", "measured", "against", "ratio", "goal"], rows)
        + "\n\n" + verdict(measured)
        + "\n\nEvery section of this page, this one last: `python -m benchmarks.run_all` "
        "(`--quick` runs each script's reduced mode and prints which scripts it skips; it "
        "overwrites the sections with smoke-test numbers, so restore them with "
        "`git checkout -- docs benchmarks/results`)."
    )


def verdict(measured: dict) -> str:
    """Which goals this run met, and the one cost LayerNAS adds over KerasTuner's own oracle."""
    profiler, surgery = measured["profiler"], measured["surgery"]
    oracles = measured["oracles"]
    goals = [
        ("profiler speed-up >= 500x", profiler["speedup"] >= 500),
        ("`cost()` <= 50 us", surgery["cost_us_per_call"] <= 50),
        ("materialize <= 2x a plain build", max(surgery["materialize_over_plain_base"],
                                                 surgery["materialize_over_plain_random"]) <= 2),
        ("`ask()` <= 1 ms", measured["search"]["ask_mean_ms"] <= 1),
    ]
    met = [name for name, ok in goals if ok]
    missed = [name for name, ok in goals if not ok]
    extra_ms = oracles["LayerNAS"]["ms_per_trial"] - oracles["RandomSearch"]["ms_per_trial"]
    return (
        f"Goals met in this run: {', '.join(met) or 'none'}"
        + (f"; NOT met: {', '.join(missed)}." if missed else ".")
        + f" The oracle's own decision is not what costs: a `LayerNASOracle` trial took "
        f"{extra_ms:.1f} ms more than a `RandomSearchOracle` trial, in KerasTuner's loop outside "
        "`populate_space` (the oracle_comparison section above traces this to the oracle's "
        f"crash-safe state files): {extra_ms / oracles['LayerNAS']['ms_per_trial']:.0%} of a "
        "look-up trial, negligible against a trial that trains a model for minutes."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats and trials (a smoke check, numbers noisier)")
    args = parser.parse_args()
    budget = QUICK if args.quick else FULL
    start = time.perf_counter()
    model = _build_mobilenet_v2()
    measured = {"profiler": measure_profiler(model, budget)}
    print(f"profiler: {measured['profiler']['speedup']:.0f}x", flush=True)
    measured["surgery"] = measure_surgery(model, budget)
    print(f"surgery: cost {measured['surgery']['cost_us_per_call']:.1f} us", flush=True)
    measured["search"] = measure_search(budget)
    print(f"search: ask {measured['search']['ask_mean_ms']:.3f} ms", flush=True)
    measured["oracles"] = measure_oracles(budget)
    measured["load_average_1min"] = os.getloadavg()[0]
    seconds = time.perf_counter() - start
    command = "python -m benchmarks.speed_summary" + (" --quick" if args.quick else "")
    write_json("speed_summary", {"command": command, "budget": asdict(budget),
                                 "seconds": seconds, **measured})
    text = section(measured, budget, command, seconds)
    write_section("speed_summary", text)
    print(text)


if __name__ == "__main__":
    main()
