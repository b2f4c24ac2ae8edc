"""Many budgets from one search against one search per budget, data-free.

MobileNetV2 1.0 (224x224, random weights) compressed to three tiers of its own
MAdds (60%, 45%, 30%):

* ``CompressionSearch(model, [tiers]).run()``: one LayerNAS search whose target
  is the union of the three ranges, then a choice (and greedy completion) per
  tier;
* three ``CompressionSearch(model, tier).run()`` calls, one per tier;
* for the design choice, the trial count of one LayerNAS search whose target is
  the span of the tiers (lowest low to highest high, the gaps included).

Wall time of each way (the lowest of ``--repeats`` runs, alternating which way
goes first), trials, and each tier's retained importance and MAdds both ways.

Run: ``python -m benchmarks.multi_target`` from the repository root.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import time

import keras

from benchmarks._report import markdown_table, write_json, write_section
from keras_layernas.compression import CompressionSearch, RetainedImportance, shrink_only
from keras_layernas.search import LayerNAS, Target
from keras_layernas.surgery import SearchSpace

TIERS = ("60%", "45%", "30%")


def _one_search(model: keras.Model) -> tuple[float, list]:
    start = time.perf_counter()
    results = CompressionSearch(model, list(TIERS), verbose=0).run()
    return time.perf_counter() - start, results


def _separate_searches(model: keras.Model) -> tuple[float, list]:
    start = time.perf_counter()
    results = [CompressionSearch(model, tier, verbose=0).run() for tier in TIERS]
    return time.perf_counter() - start, results


def _span_search_trials(model: keras.Model, targets: list[tuple[float, float]]) -> int:
    """Trials of one data-free LayerNAS search over the tiers' span, gaps included."""
    space = shrink_only(SearchSpace.from_model(model))
    scorer = RetainedImportance(space, model)
    span = Target(min(low for low, _ in targets), max(high for _, high in targets))
    search = LayerNAS(space.options, space.cost, target=span)
    while (candidate := search.ask()) is not None:
        search.tell(candidate, scorer(candidate.arch))
    return search.num_told


def _tier_rows(results: list) -> list[dict]:
    return [{"target": list(r.target), "madds": r.madds, "score": r.score, "completed": r.completed,
             "trials": r.trials} for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of each way; the lowest time counts (default: 2)")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, alpha=1.0, input_shape=(224, 224, 3))
    one_times, separate_times = [], []
    for repeat in range(args.repeats):
        ways = [(_one_search, one_times), (_separate_searches, separate_times)]
        for run, times in ways[::-1] if repeat % 2 else ways:
            seconds, results = run(model)
            times.append(seconds)
            if run is _one_search:
                together = results
            else:
                alone = results
            print(run.__name__, f"{seconds:.1f} s", [round(r.score, 4) for r in results], flush=True)
    payload = {
        "model": "MobileNetV2 alpha=1.0 224x224 weights=None (seed 0)",
        "tiers": list(TIERS),
        "base_madds": together[0].base_madds,
        "repeats": args.repeats,
        "one_search": {"seconds": one_times, "trials": together[0].trials,
                       "tiers": _tier_rows(together)},
        "separate_searches": {"seconds": separate_times, "trials": sum(r.trials for r in alone),
                              "tiers": _tier_rows(alone)},
        "span_search_trials": _span_search_trials(model, [r.target for r in together]),
        "load_average_1min": os.getloadavg()[0],
    }
    write_json("multi_target", payload)
    rows = [[tier, f"{a['madds'] / 1e6:.2f}", f"{a['score']:.4f}", f"{b['madds'] / 1e6:.2f}",
             f"{b['score']:.4f}", f"{a['score'] - b['score']:+.4f}"]
            for tier, a, b in zip(TIERS, payload["one_search"]["tiers"],
                                  payload["separate_searches"]["tiers"])]
    one, separate = payload["one_search"], payload["separate_searches"]
    write_section("multi_target", "\n".join([
        f"## Many budgets from one search: MobileNetV2 1.0 @224 -> {', '.join(TIERS)} of its MAdds",
        "",
        "`python -m benchmarks.multi_target`; data-free, scored by retained importance (1.0 = base).",
        f"One `CompressionSearch(model, {list(TIERS)})` against three single-target searches, "
        f"lowest wall time of {args.repeats} runs each (imports and model build excluded).",
        "",
        markdown_table(["way", "trials", "seconds"], [
            ["one search over the union of the three ranges", f"{one['trials']:,}",
             f"{min(one['seconds']):.1f}"],
            ["three separate searches", f"{separate['trials']:,}", f"{min(separate['seconds']):.1f}"],
            ["(one search over the span, gaps included: trials only)",
             f"{payload['span_search_trials']:,}", "-"],
        ]),
        "",
        markdown_table(["tier", "one search: MAdds (M)", "score", "separate: MAdds (M)", "score",
                        "difference"], rows),
        "",
        f"Load average {payload['load_average_1min']:.1f} at the end of the run (2 shared CPU cores).",
    ]))


if __name__ == "__main__":
    main()
