"""LayerNAS vs random search vs regularized evolution on NATS-Bench size search.

A trial is a table look-up of the real 90-epoch validation accuracy (plus
optional Gaussian noise), so the whole comparison runs in seconds without
training. Regret is the optimum in target minus the *noiseless* accuracy of
the architecture ``best()`` returns after each trial.

Usage:
    python -m benchmarks.nats_sss            # full run: JSON, PNGs, docs table
    python -m benchmarks.nats_sss --quick    # one dataset, 3 seeds (smoke check)
"""
from __future__ import annotations

import argparse
import csv
import gzip
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks._report import RESULTS, markdown_table, write_json, write_section
from keras_layernas.search import (
    BestFirst,
    LayerNAS,
    RandomParent,
    RandomSearch,
    RegularizedEvolution,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nas-benchmarks" / "nats_sss.csv.gz"
CHANNELS = [64, 56, 48, 40, 32, 24, 16, 8]  # base (largest) first, as LayerNAS expects
# Paper targets (MFLOPs); the range is (0.8 T, T).
TARGETS = {"cifar10": 140.0, "cifar100": 140.0, "ImageNet16-120": 35.0}
BUDGETS = (50, 100, 200, 400)
SEARCHERS = {
    "LayerNAS": lambda opts, cost, target, seed, budget: LayerNAS(
        opts, cost, target, seed=seed, max_trials=budget),
    "RandomSearch": lambda opts, cost, target, seed, budget: RandomSearch(
        opts, cost, target, seed=seed, max_trials=budget),
    "RegularizedEvolution": lambda opts, cost, target, seed, budget: RegularizedEvolution(
        opts, cost, target, seed=seed, max_trials=budget),
}


@dataclass
class Table:
    """One dataset's FLOPs and accuracy per architecture (5 channel counts)."""

    dataset: str
    flops: dict
    accuracy: dict
    target: tuple
    optimum: float


def load_table(dataset: str, path: Path = DATA) -> Table:
    """Read one dataset's columns of the NATS-sss table.

    Raises:
        ValueError: unknown dataset name.
    """
    if dataset not in TARGETS:
        raise ValueError(f"Unknown dataset {dataset!r}. Expected one of {sorted(TARGETS)}.")
    flops, accuracy = {}, {}
    with gzip.open(path, "rt") as f:
        for row in csv.DictReader(f):
            arch = tuple(int(row[f"c{i}"]) for i in range(1, 6))
            flops[arch] = float(row[f"flops_{dataset}"])
            accuracy[arch] = float(row[f"val_acc90_s777_{dataset}"])
    target = (0.8 * TARGETS[dataset], TARGETS[dataset])
    optimum = max(acc for arch, acc in accuracy.items() if target[0] <= flops[arch] <= target[1])
    return Table(dataset, flops, accuracy, target, optimum)


def regret_curves(table: Table, factory, seed: int, noise: float, budget: int) -> tuple:
    """Regret after each of ``budget`` trials (NaN before any in target).

    Args:
        table: the dataset's look-up table.
        factory: ``(options, cost_fn, target, seed, max_trials) -> searcher``.
        seed: seeds the searcher and the noise.
        noise: standard deviation of the Gaussian noise added to each score.
        budget: number of trials.

    Returns:
        ``(returned, evaluated)``: regret of the architecture ``best()`` returns
        (chosen by noisy score), and of the truly best in-target architecture
        evaluated so far. Their gap is the cost of choosing by noisy scores.
    """
    search = factory([CHANNELS] * 5, table.flops.__getitem__, table.target, seed, budget)
    # Noise has its own stream so every searcher sees the same noise per seed.
    noise_rng = np.random.default_rng([seed, 7])
    returned, evaluated = np.full(budget, np.nan), np.full(budget, np.nan)
    best_evaluated = np.nan
    trials = 0
    while (cand := search.ask()) is not None:
        true_accuracy = table.accuracy[cand.arch]
        search.tell(cand, true_accuracy + noise * noise_rng.normal())
        if table.target[0] <= cand.cost <= table.target[1]:
            best_evaluated = np.fmax(best_evaluated, true_accuracy)
        best = search.best()
        returned[trials] = np.nan if best is None else table.optimum - table.accuracy[best[0]]
        evaluated[trials] = table.optimum - best_evaluated
        trials += 1
    for curve in (returned, evaluated):  # finished early: the result stays
        curve[trials:] = curve[trials - 1] if trials else np.nan
    return returned, evaluated


def run(datasets, seeds, noises, searchers: dict = SEARCHERS, budget: int = max(BUDGETS)) -> dict:
    """Regret curves for every dataset x noise x searcher x seed.

    Returns:
        ``{(dataset, noise, searcher name): {"curves", "evaluated", "seconds",
        "optimum"}}`` with one regret curve per seed (see regret_curves).
    """
    results = {}
    for dataset in datasets:
        table = load_table(dataset)
        for noise in noises:
            for searcher, factory in searchers.items():
                start = time.perf_counter()
                pairs = [regret_curves(table, factory, s, noise, budget) for s in seeds]
                results[(dataset, noise, searcher)] = {
                    "curves": np.array([returned for returned, _ in pairs]),
                    "evaluated": np.array([evaluated for _, evaluated in pairs]),
                    "seconds": time.perf_counter() - start,
                    "optimum": table.optimum,
                }
    return results


def policy_variants() -> dict:
    """LayerNAS parent-selection variants compared in docs/algorithm.md."""
    def variant(**kwargs):
        return lambda opts, cost, target, seed, budget: LayerNAS(
            opts, cost, target, seed=seed, max_trials=budget, **kwargs)

    return {
        "BestFirst(explore=0.05), k=3 [default]": variant(),
        "BestFirst(explore=0), k=3": variant(policy=BestFirst(explore=0.0)),
        "BestFirst(explore=0.2), k=3": variant(policy=BestFirst(explore=0.2)),
        "BestFirst(explore=0.05, per_visit=2), k=3": variant(policy=BestFirst(per_visit=2)),
        "BestFirst(explore=0.05), k=1": variant(per_bucket=1),
        "RandomParent, k=3": variant(policy=RandomParent()),
    }


def _nanmean(curves: np.ndarray) -> np.ndarray:
    """Mean over seeds, NaN where no seed has a result yet (without a warning)."""
    counts = np.sum(~np.isnan(curves), axis=0)
    sums = np.nansum(curves, axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def summarise(results: dict) -> list[dict]:
    """Mean regret per budget, optimum hits at 200 trials, and run time."""
    rows = []
    for (dataset, noise, searcher), value in results.items():
        curves = value["curves"]
        rows.append({
            "dataset": dataset,
            "noise": noise,
            "searcher": searcher,
            "seeds": len(curves),
            "mean_regret": {b: float(np.nanmean(curves[:, b - 1])) for b in BUDGETS},
            "optimum_hits_at_200": int(np.sum(curves[:, 199] == 0)),
            "optimum_evaluated_by_400": int(np.sum(value["evaluated"][:, -1] == 0)),
            "seconds": value["seconds"],
        })
    return rows


def table_markdown(rows: list[dict], reference: str) -> str:
    """One row per dataset x noise x searcher; ratios against ``reference``."""
    lookup = {(r["dataset"], r["noise"], r["searcher"]): r for r in rows}
    lines = []
    for r in rows:
        ref = lookup[(r["dataset"], r["noise"], reference)]["mean_regret"][200]
        mine = r["mean_regret"][200]
        if ref > 0:
            ratio = f"{mine / ref:.1f}x"
        else:  # the reference found the optimum in every seed: a ratio is meaningless
            ratio = "1.0x (both 0)" if mine == 0 else f"inf ({reference} at 0)"
        lines.append([
            r["dataset"], r["noise"], r["searcher"],
            *(f"{r['mean_regret'][b]:.3f}" for b in BUDGETS),
            f"{r['optimum_hits_at_200']}/{r['seeds']}",
            f"{r['optimum_evaluated_by_400']}/{r['seeds']}",
            ratio,
        ])
    return markdown_table(
        ["dataset", "noise", "searcher", *(f"regret@{b}" for b in BUDGETS),
         "optimum at 200", "optimum evaluated by 400", f"regret@200 / {reference}"], lines)


def plot(results: dict, dataset: str, path: Path) -> None:
    """Best-so-far noiseless accuracy vs trials: mean and 10-90% band per searcher."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Before the first in-target trial every seed's best() is NaN (nothing to plot yet).
    warnings.filterwarnings("ignore", "Mean of empty slice|All-NaN slice", RuntimeWarning)

    noises = sorted({n for d, n, _ in results if d == dataset})
    fig, axes = plt.subplots(1, len(noises), figsize=(6 * len(noises), 4), squeeze=False)
    for ax, noise in zip(axes[0], noises):
        for (d, n, searcher), value in results.items():
            if d != dataset or n != noise:
                continue
            accuracy = value["optimum"] - value["curves"]
            trials = np.arange(1, accuracy.shape[1] + 1)
            ax.plot(trials, np.nanmean(accuracy, axis=0), label=searcher)
            ax.fill_between(trials, np.nanpercentile(accuracy, 10, axis=0),
                            np.nanpercentile(accuracy, 90, axis=0), alpha=0.2)
        optimum = next(v["optimum"] for (d, _, _), v in results.items() if d == dataset)
        ax.axhline(optimum, color="k", linestyle=":", linewidth=1, label="optimum in target")
        ax.set_ylim(optimum - 2.0, optimum + 0.2)
        ax.set_xlabel("trials")
        ax.set_ylabel("validation accuracy of best() (noiseless, %)")
        ax.set_title(f"NATS-sss {dataset}, noise sigma={noise}")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="cifar10 only, 3 seeds")
    args = parser.parse_args()
    datasets = ["cifar10"] if args.quick else list(TARGETS)
    seeds = range(3 if args.quick else 10)
    noises = (0.0, 0.2)
    start = time.perf_counter()
    results = run(datasets, seeds, noises)
    for dataset in datasets:
        plot(results, dataset, RESULTS / f"nats_sss_{dataset}.png")
    ablation = run(datasets, seeds, noises, searchers=policy_variants())
    rows, ablation_rows = summarise(results), summarise(ablation)
    write_json("nats_sss", {
        "datasets": datasets, "seeds": list(seeds), "noises": list(noises),
        "budgets": list(BUDGETS), "targets_mflops": {d: TARGETS[d] for d in datasets},
        "searchers": rows, "layernas_policies": ablation_rows,
        # mean over seeds after each trial (NaN before any seed has an in-target result)
        "mean_regret_curves": {
            f"{d}|{n}|{s}": [None if np.isnan(x) else round(float(x), 3)
                             for x in _nanmean(v["curves"])]
            for (d, n, s), v in results.items()
        },
        "seconds": time.perf_counter() - start,
    })
    text = (
        f"NATS-Bench size search (5 layers x 8 channel options, real 90-epoch validation "
        f"accuracy), target (0.8T, T] with T = 140/140/35 MFLOPs, {len(seeds)} seeds, "
        "Gaussian noise sigma (accuracy points) added per trial; regret = optimum in target "
        "minus the noiseless accuracy of `best()` (mean over seeds). 'optimum at 200' = seeds "
        "whose `best()` is the optimum after 200 trials; 'optimum evaluated by 400' = seeds that "
        "evaluated it at all (under noise `best()` may still prefer a luckier neighbour). Defaults: LayerNAS H=100, k=3, "
        "BestFirst(explore=0.05); evolution population 50, tournament 10. "
        f"`python -m benchmarks.nats_sss`{' --quick' if args.quick else ''}; plots: "
        "`benchmarks/results/nats_sss_<dataset>.png`.\n\n"
        + table_markdown(rows, "LayerNAS")
        + "\n\nLayerNAS parent-selection policies (same seeds and noise; see docs/algorithm.md):\n\n"
        + table_markdown(ablation_rows, "BestFirst(explore=0.05), k=3 [default]")
    )
    write_section("nats_sss", text)
    print(text)


if __name__ == "__main__":
    main()
