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
goes first), trials, and each tier's retained importance and MAdds both ways;
then the LayerNAS searches alone (once), to split the search from the rest.

The same three trial counts (union, span, separate) and each tier's best score
for a small depthwise CNN, where a narrow range prunes most of the space, at
tiers far apart and adjacent.

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
SMALL_TIERS = ((0.7, 0.5, 0.3), (0.6, 0.57, 0.54))  # shares of the small CNN's MAdds


def _one_search(model: keras.Model) -> tuple[float, list]:
    start = time.perf_counter()
    results = CompressionSearch(model, list(TIERS), verbose=0).run()
    return time.perf_counter() - start, results


def _separate_searches(model: keras.Model) -> tuple[float, list]:
    start = time.perf_counter()
    results = [CompressionSearch(model, tier, verbose=0).run() for tier in TIERS]
    return time.perf_counter() - start, results


def _searched(space: SearchSpace, scorer: RetainedImportance, target: Target) -> LayerNAS:
    """One complete data-free LayerNAS search."""
    search = LayerNAS(space.options, space.cost, target=target)
    while (candidate := search.ask()) is not None:
        search.tell(candidate, scorer(candidate.arch))
    return search


def _engine_only(model: keras.Model, targets: list[Target]) -> dict:
    """The LayerNAS searches alone (no completion, rebuild or report): seconds and trials.

    One search over the union of ``targets``, one per target, and (trials only)
    one over their span, gaps included.
    """
    space = shrink_only(SearchSpace.from_model(model))
    scorer = RetainedImportance(space, model)
    start = time.perf_counter()
    union = _searched(space, scorer, Target.union(targets))
    union_seconds = time.perf_counter() - start
    start = time.perf_counter()
    separate = [_searched(space, scorer, target) for target in targets]
    separate_seconds = time.perf_counter() - start
    span = Target(min(t.low for t in targets), max(t.high for t in targets))
    return {"union_seconds": union_seconds, "union_trials": union.num_told,
            "separate_seconds": separate_seconds,
            "separate_trials": sum(s.num_told for s in separate),
            "span_trials": _searched(space, scorer, span).num_told}


def depthwise_cnn() -> keras.Model:
    """A 32x32 CNN with a depthwise conv: four searchable layers."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="c2")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.Conv2D(64, 1, activation="relu", name="c3")(x)
    outputs = keras.layers.Dense(10, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def _small_model_trials() -> list[dict]:
    """Union, span and separate searches of the small CNN: trials and each tier's best score."""
    model = depthwise_cnn()
    space = shrink_only(SearchSpace.from_model(model))
    scorer = RetainedImportance(space, model)
    base = space.cost(space.base_arch)
    rows = []
    for shares in SMALL_TIERS:
        ranges = [Target(0.95 * share * base, share * base) for share in shares]
        searches = {"union": [_searched(space, scorer, Target.union(ranges))],
                    "span": [_searched(space, scorer, Target(ranges[-1].low, ranges[0].high))],
                    "separate": [_searched(space, scorer, r) for r in ranges]}
        row = {"tiers": list(shares)}
        for way, done in searches.items():
            per_tier = done if way == "separate" else done * len(ranges)
            row[way] = {"trials": sum(s.num_told for s in done),
                        "best": [max(h.score for h in s.history if r.contains(h.cost))
                                 for s, r in zip(per_tier, ranges)]}
        rows.append(row)
    return rows


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
        "engine_only": _engine_only(model, [r.target for r in together]),
        "small_cnn": _small_model_trials(),
        "load_average_1min": os.getloadavg()[0],
    }
    write_json("multi_target", payload)
    rows = [[tier, f"{a['madds'] / 1e6:.2f}", f"{a['score']:.4f}", f"{b['madds'] / 1e6:.2f}",
             f"{b['score']:.4f}", f"{a['score'] - b['score']:+.4f}"]
            for tier, a, b in zip(TIERS, payload["one_search"]["tiers"],
                                  payload["separate_searches"]["tiers"])]
    one, separate = payload["one_search"], payload["separate_searches"]
    engine = payload["engine_only"]
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
            ["the LayerNAS search alone, union", f"{engine['union_trials']:,}",
             f"{engine['union_seconds']:.1f}"],
            ["the three LayerNAS searches alone", f"{engine['separate_trials']:,}",
             f"{engine['separate_seconds']:.1f}"],
            ["(one search over the span, gaps included: trials only)",
             f"{engine['span_trials']:,}", "-"],
        ]),
        "",
        markdown_table(["tier", "one search: MAdds (M)", "score", "separate: MAdds (M)", "score",
                        "difference"], rows),
        "",
        "Trials of complete data-free LayerNAS searches of a small depthwise CNN (32x32, four "
        "searchable layers) to three shares of its MAdds, and each tier's best searched score:",
        "",
        markdown_table(["tiers", "union", "span", "separate", "best per tier (union / span / separate)"], [
            [", ".join(f"{share:.0%}" for share in row["tiers"]), row["union"]["trials"],
             row["span"]["trials"], row["separate"]["trials"],
             " / ".join(", ".join(f"{b:.4f}" for b in row[way]["best"])
                        for way in ("union", "span", "separate"))]
            for row in payload["small_cnn"]]),
        "",
        f"Load average {payload['load_average_1min']:.1f} at the end of the run (2 shared CPU cores).",
    ]))


if __name__ == "__main__":
    main()
