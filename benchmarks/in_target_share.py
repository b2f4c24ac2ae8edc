"""Share of LayerNAS's trials inside the target, by where the search starts.

With data every trial costs a fine-tune, so a budget of 12-48 trials must go to
candidates the user can ship. This counts, for the compression-quality
benchmark's base (MobileNetV2 0.35 @ 64x64) and its default data search space,
how many of the first 12, 24 and 48 candidates LayerNAS hands out lie inside
the target range, starting from the base (the paper) or from the uniform cut
(``start="uniform"``). Candidates are scored by the data-free retained
importance here (a proxy for trial scores: which candidates are handed out
depends on the scores only through the per-bucket selection), so the run takes
seconds.

Run: python -m benchmarks.in_target_share
"""
from __future__ import annotations

import json

import keras_layernas as layernas
from benchmarks import _cifar10
from benchmarks._report import write_json, write_section
from benchmarks.compression_quality import BASE_WEIGHTS, TARGETS, TOLERANCE, load_base
from keras_layernas.compression import RetainedImportance, greedy_fill, start_from, uniform_arch
from keras_layernas.search import LayerNAS, Target

BUDGETS = (12, 24, 48)


def shares(space: layernas.SearchSpace, scorer: RetainedImportance, target: Target,
           fill: bool = False) -> dict:
    """In-target counts among the first ``BUDGETS`` candidates of one search; with ``fill``,
    of what each trial would train under ``start="greedy"`` (the greedy walk alone: compress
    falls back on a data-free search over the free layers where it steps over the range)."""
    search = LayerNAS(space.options, space.cost, target=target, max_trials=max(BUDGETS))
    in_target = []
    while (candidate := search.ask()) is not None:
        arch = candidate.arch
        if fill:
            arch = greedy_fill(space, arch, scorer.log_term, target) or arch
        search.tell(candidate, scorer(arch))
        in_target.append(target.contains(space.cost(arch)))
    return {str(b): sum(in_target[:b]) / min(b, len(in_target)) for b in BUDGETS}


def main() -> None:
    trained = BASE_WEIGHTS.exists()
    base = load_base() if trained else _cifar10.mobilenet_v2(0.35, 64, seed=0)
    space = layernas.SearchSpace.from_model(base)
    scorer = RetainedImportance(space, base)
    madds = space.cost(space.base_arch)
    rows = []
    for fraction in TARGETS:
        target = Target((1 - TOLERANCE) * fraction * madds, fraction * madds)
        for start in ("base", "uniform", "greedy"):
            searched = start_from(space, uniform_arch(space, target)) if start == "uniform" else space
            rows.append({"target": fraction, "start": start,
                         "in_target_share": shares(searched, scorer, target, fill=start == "greedy")})
            print(json.dumps(rows[-1]))
    write_json("in_target_share", {"trained_base": trained, "budgets": BUDGETS, "rows": rows,
                                   "command": "python -m benchmarks.in_target_share"})
    lines = ["| target | start | in target of first 12 | of 24 | of 48 |", "|---|---|---|---|---|"]
    lines += [f"| {r['target']:.0%} | {r['start']} | " + " | ".join(
        f"{100 * r['in_target_share'][str(b)]:.0f}%" for b in BUDGETS) + " |" for r in rows]
    write_section("in_target_share", "## Share of LayerNAS trials in target\n\n"
                  "`python -m benchmarks.in_target_share` (results/in_target_share.json): the first "
                  "candidates LayerNAS hands out for the compression-quality base, data-free scores "
                  "as a proxy for trial scores.\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
