"""Time per ask() and tell() of each searcher on a 26-layer MobileNet-like space.

The search must never be the bottleneck of a tuner: the goal is <= 1 ms per
ask at H=100, k=3. The cost is synthetic but shaped like a MobileNet's: each
layer's MAdds are the product of its width and its input's width, so changing
one width changes two terms (cost is not a per-layer sum). Scores are a cheap
separable function, since only the searcher's own time is measured.

Usage:
    python -m benchmarks.search_overhead
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from benchmarks._report import markdown_table, write_json, write_section
from keras_layernas.search import LayerNAS, RandomSearch, RegularizedEvolution

NUM_LAYERS = 26
# Widths shrink from the base (first) option; 7 options per layer as in Table 7.
MULTIPLIERS = (1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25)


def mobilenet_like_space() -> tuple:
    """Options, cost function and a target of about half the base cost."""
    base_widths = [int(16 * 1.15**i) // 8 * 8 + 8 for i in range(NUM_LAYERS)]
    options = [[max(8, int(w * m) // 8 * 8) for m in MULTIPLIERS] for w in base_widths]
    options = [list(dict.fromkeys(layer)) for layer in options]  # drop repeats at small widths
    resolution = [112 // 2 ** min(i // 6, 4) for i in range(NUM_LAYERS)]

    def cost(arch: tuple) -> float:
        widths = (3,) + arch
        return float(sum(r * r * a * b for r, a, b in zip(resolution, widths, widths[1:])))

    base_cost = cost(tuple(layer[0] for layer in options))
    return options, cost, (0.45 * base_cost, 0.5 * base_cost)


def time_searcher(search, trials: int, seed: int = 0) -> dict:
    """Wall and CPU time of each ask() and tell() over ``trials`` sequential trials.

    CPU time (this thread only) is reported beside wall time because on a
    shared machine the wall-time tail is the scheduler's, not the searcher's.
    """
    rng = np.random.default_rng(seed)
    ask_wall, ask_cpu, tell_wall = [], [], []
    for _ in range(trials):
        cpu, wall = time.thread_time(), time.perf_counter()
        cand = search.ask()
        ask_wall.append(time.perf_counter() - wall)
        ask_cpu.append(time.thread_time() - cpu)
        if cand is None:
            break
        score = float(np.sum(np.log(cand.arch))) + 0.1 * rng.normal()
        wall = time.perf_counter()
        search.tell(cand, score)
        tell_wall.append(time.perf_counter() - wall)
    ask_ms, cpu_ms, tell_ms = (np.array(x) * 1e3 for x in (ask_wall, ask_cpu, tell_wall))
    return {
        "trials": len(tell_ms),
        "ask_mean_ms": float(ask_ms.mean()),
        "ask_p50_ms": float(np.median(ask_ms)),
        "ask_p99_ms": float(np.percentile(ask_ms, 99)),
        "ask_cpu_mean_ms": float(cpu_ms.mean()),
        "ask_cpu_p99_ms": float(np.percentile(cpu_ms, 99)),
        "ask_cpu_max_ms": float(cpu_ms.max()),
        "tell_mean_ms": float(tell_ms.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    args = parser.parse_args()
    options, cost, target = mobilenet_like_space()
    searchers = {
        "LayerNAS (H=100, k=3)": LayerNAS(options, cost, target, num_buckets=100, per_bucket=3),
        "RandomSearch": RandomSearch(options, cost, target),
        "RegularizedEvolution": RegularizedEvolution(options, cost, target),
    }
    results = {name: time_searcher(search, args.trials) for name, search in searchers.items()}
    reference = results["LayerNAS (H=100, k=3)"]["ask_mean_ms"]
    rows = [
        [name, r["trials"], f"{r['ask_mean_ms']:.3f}", f"{r['ask_p50_ms']:.3f}",
         f"{r['ask_p99_ms']:.2f}", f"{r['ask_cpu_mean_ms']:.3f}", f"{r['ask_cpu_p99_ms']:.2f}",
         f"{r['ask_cpu_max_ms']:.2f}", f"{r['tell_mean_ms']:.3f}",
         f"{r['ask_mean_ms'] / reference:.2f}"]
        for name, r in results.items()
    ]
    write_json("search_overhead", {
        "space": {"layers": NUM_LAYERS, "options_per_layer": [len(o) for o in options],
                  "target": list(target)},
        "results": results,
    })
    table = markdown_table(
        ["searcher", "trials", "ask wall mean ms", "ask wall p50 ms", "ask wall p99 ms",
         "ask CPU mean ms", "ask CPU p99 ms", "ask CPU max ms", "tell wall mean ms",
         "ask wall mean / LayerNAS"], rows)
    write_section("search_overhead", (
        f"Search overhead per trial on a synthetic 26-layer MobileNet-like space "
        f"({sum(len(o) for o in options)} options in all, coupled per-layer MAdds, target "
        f"45-50% of the base), {args.trials} sequential trials, one process "
        "(`python -m benchmarks.search_overhead`). Goal: LayerNAS ask() <= 1 ms. "
        "CPU time is the calling thread's; the wall-time tail includes waiting for a "
        f"shared CPU (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "at the end of this run).\n\n" + table
    ))
    print(table)


if __name__ == "__main__":
    main()
