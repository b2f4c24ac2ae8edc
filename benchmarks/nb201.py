"""LayerNAS in topology mode on NAS-Bench-201 vs random search and regularized evolution.

NAS-Bench-201's cell has 4 nodes: node 0 is the cell input, node i (1..3) is
the sum of one operation on every edge j -> i (j < i), and node 3 is the cell
output. Following the paper (Section 4.1, Appendix C.1), each *layer* adds one
node: its option is the tuple of operations on the node's incoming edges, so
the 6-edge cell becomes 3 layers with 5, 25 and 125 options
(5 x 25 x 125 = 15,625 architectures, each exactly once). The bucket key is
the architecture itself (the paper's "unique id"), so LayerNAS never merges
two architectures and its polynomial bound does not apply: what decides the
outcome at a fixed budget is which parents it expands first. The same cell
as 6 edge layers (5 options each) is compared too: there an expansion
proposes 4 children instead of up to 124.

A trial is a table look-up: the searcher is told the 200-epoch *validation*
accuracy of one training seed (drawn per run seed and architecture, the same
draw for every searcher), and the benchmark reports the 200-epoch *test*
accuracy (mean over seeds) of the architecture ``best()`` returns.

Usage:
    python -m benchmarks.nb201            # 3 datasets, 20 seeds: JSON, PNG, docs table
    python -m benchmarks.nb201 --quick    # cifar10, 3 seeds (smoke check)
"""
from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable

import numpy as np

from benchmarks._report import RESULTS, machine, markdown_table, write_json, write_section
from keras_layernas.search import BaseSearch, LayerNAS, RandomSearch, RegularizedEvolution

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nas-benchmarks" / "nb201.csv.gz"
# The table's op_code digits, in this order.
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
VALIDATION_SEEDS = ("s777", "s888", "s999")
NUM_NODES = 3  # nodes added after the cell input; node i has i incoming edges
NUM_ARCHS = len(OPS) ** (NUM_NODES * (NUM_NODES + 1) // 2)
BUDGETS = (50, 100, 200, 400, 1000)
# Table 3 of the paper: mean test accuracy over 5 runs at a 1e5-second search budget.
PAPER_TABLE3 = {
    "cifar10": {"RS": 92.39, "RE": 94.13, "LayerNAS": 94.34, "optimal": 94.37},
    "cifar100": {"RS": 63.54, "RE": 71.40, "LayerNAS": 73.01, "optimal": 73.51},
    "ImageNet16-120": {"RS": 42.71, "RE": 44.76, "LayerNAS": 46.58, "optimal": 47.31},
}

Arch = tuple
SearcherFactory = Callable[["Table", int, int], BaseSearch]


@dataclass
class Table:
    """One dataset's columns of NAS-Bench-201, keyed by the 6-digit op code.

    Attributes:
        dataset: cifar10, cifar100 or ImageNet16-120.
        flops: MFLOPs per op code.
        validation: per op code, the 200-epoch validation accuracy of each
            training seed present in the table (2 or 3).
        test: 200-epoch test accuracy per op code, mean over training seeds.
    """

    dataset: str
    flops: dict[str, float]
    validation: dict[str, tuple[float, ...]]
    test: dict[str, float]

    @property
    def optimum(self) -> float:
        """The best test accuracy in the space (the paper's "optimal")."""
        return max(self.test.values())

    @property
    def flops_range(self) -> tuple[float, float]:
        """Cheapest and dearest cell: a LayerNAS target that excludes nothing."""
        return min(self.flops.values()), max(self.flops.values())


def load_table(dataset: str, path: Path = DATA) -> Table:
    """Read one dataset's columns of nb201.csv.gz.

    Raises:
        ValueError: unknown dataset name.
    """
    if dataset not in DATASETS:
        raise ValueError(
            f"Unknown NAS-Bench-201 dataset. Expected one of {list(DATASETS)}. "
            f"Received: dataset={dataset!r}"
        )
    flops, validation, test = {}, {}, {}
    with gzip.open(path, "rt") as f:
        for row in csv.DictReader(f):
            code = row["op_code"]
            flops[code] = float(row[f"flops_{dataset}"])
            test[code] = float(row[f"test_acc200_mean_{dataset}"])
            validation[code] = tuple(
                float(row[f"val_acc200_{seed}_{dataset}"])
                for seed in VALIDATION_SEEDS
                if row[f"val_acc200_{seed}_{dataset}"]  # s999 is absent for half the cells
            )
    return Table(dataset, flops, validation, test)


# ------------------------------------------------------------------ encodings
def node_options(default: str) -> list[list[tuple[str, ...]]]:
    """The paper's layer encoding: layer i chooses the ops on node i+1's incoming edges.

    Args:
        default: the base option every not-yet-searched node holds.
            ``"none"``: all incoming edges are ``none`` (the paper's "no-op"
            default); a layer-1 or layer-2 candidate then has a zero output
            node, so every such candidate scores chance accuracy.
            ``"pass_through"``: only the edge from the previous node is a
            ``skip_connect``, so a not-yet-searched node copies the newest
            searched one and every candidate is a working cell.

    Returns:
        3 lists (5, 25, 125 options) of op-name tuples, the default first.

    Raises:
        ValueError: unknown default.
    """
    options = []
    for node in range(1, NUM_NODES + 1):
        if default == "none":
            base = ("none",) * node
        elif default == "pass_through":
            base = ("none",) * (node - 1) + ("skip_connect",)
        else:
            raise ValueError(
                "`default` must be 'none' or 'pass_through'. "
                f"Received: default={default!r}"
            )
        others = [ops for ops in itertools.product(OPS, repeat=node) if ops != base]
        options.append([base, *others])
    return options


def edge_options(default: str = "none") -> list[list[str]]:
    """NAS-Bench-201's own encoding: 6 edge layers with 5 ops each, in the table's order.

    Args:
        default: ``"none"``: every edge's base op is ``none``.
            ``"pass_through"``: the edge from the previous node (1<-0, 2<-1,
            3<-2) has base ``skip_connect``, so, as in :func:`node_options`,
            every partial candidate is a working cell.

    Returns:
        6 lists of op names, the default first.

    Raises:
        ValueError: unknown default.
    """
    if default not in ("none", "pass_through"):
        raise ValueError(
            f"`default` must be 'none' or 'pass_through'. Received: default={default!r}"
        )
    options = []
    for node in range(1, NUM_NODES + 1):
        for source in range(node):
            passes = default == "pass_through" and source == node - 1
            base = "skip_connect" if passes else "none"
            options.append([base, *(op for op in OPS if op != base)])
    return options


def op_code(arch: Arch) -> str:
    """The table's 6-digit op code of an architecture in either encoding.

    Both encodings list the edges in the table's order
    (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2), so flattening is enough.
    """
    edges = [op for item in arch for op in (item if isinstance(item, tuple) else (item,))]
    return "".join(str(OPS.index(op)) for op in edges)


def architecture_id(layer: int, arch: Arch, cost: float) -> Hashable:
    """LayerNAS bucket key: every architecture in its own bucket (the paper's choice)."""
    return arch


# ----------------------------------------------------------------- searchers
def _encoded_options(encoding: str, default: str) -> list[list]:
    """Option lists of the ``"nodes"`` or ``"edges"`` encoding.

    Raises:
        ValueError: unknown encoding or default.
    """
    if encoding == "nodes":
        return node_options(default)
    if encoding == "edges":
        return edge_options(default)
    raise ValueError(
        f"`encoding` must be 'nodes' or 'edges'. Received: encoding={encoding!r}"
    )


def _flops_fn(table: Table) -> Callable[[Arch], float]:
    return lambda arch: table.flops[op_code(arch)]


def layernas(default: str, encoding: str = "nodes",
             bucket_key: Callable[[int, Arch, float], Hashable] | None = architecture_id,
             **kwargs) -> SearcherFactory:
    """LayerNAS over the node (paper) or edge encoding; the target spans every cell's FLOPs.

    LayerNAS has no "no cost target" mode, so the whole FLOPs range stands in
    for it: every candidate can reach that target, nothing is filtered.

    Args:
        default: ``"none"`` or ``"pass_through"`` (see :func:`node_options`).
        encoding: ``"nodes"`` (3 layers, the paper's) or ``"edges"`` (6 layers).
        bucket_key: LayerNAS's bucket key; None for Eq. 4 FLOPs buckets.
        **kwargs: other LayerNAS arguments (``policy``, ``per_bucket``, ...).

    Returns:
        ``(table, seed, budget) -> LayerNAS``.
    """
    options = _encoded_options(encoding, default)
    return lambda table, seed, budget: LayerNAS(
        options, _flops_fn(table), table.flops_range, seed=seed,
        max_trials=budget, bucket_key=bucket_key, **kwargs)


def random_search() -> SearcherFactory:
    """Uniform over all 15,625 cells (the encoding does not change the distribution)."""
    return lambda table, seed, budget: RandomSearch(
        edge_options(), _flops_fn(table), table.flops_range, seed=seed, max_trials=budget)


def evolution(encoding: str) -> SearcherFactory:
    """Regularized evolution (population 50, tournament 10, paper Appendix C).

    Args:
        encoding: ``"edges"`` mutates one edge (NAS-Bench-201's usual RE);
            ``"nodes"`` mutates one node's whole tuple of incoming edges.
    """
    options = _encoded_options(encoding, "none")
    return lambda table, seed, budget: RegularizedEvolution(
        options, _flops_fn(table), table.flops_range, seed=seed, max_trials=budget)


SEARCHERS: dict[str, SearcherFactory] = {
    "LayerNAS (default none, paper)": layernas("none"),
    "LayerNAS (default pass-through)": layernas("pass_through"),
    "LayerNAS (6 edge layers, pass-through)": layernas("pass_through", encoding="edges"),
    "RandomSearch": random_search(),
    "RegularizedEvolution (edges)": evolution("edges"),
}
# Same seeds and budgets; what changes is one LayerNAS setting at a time.
VARIANTS: dict[str, SearcherFactory] = {
    "LayerNAS pass-through, Eq. 4 FLOPs buckets (H=100, k=3)": layernas(
        "pass_through", bucket_key=None),
    "LayerNAS pass-through, random parents": layernas("pass_through", policy="random"),
    "LayerNAS 6 edge layers, default none": layernas("none", encoding="edges"),
    "RegularizedEvolution (nodes)": evolution("nodes"),
}


# ----------------------------------------------------------------------- runs
def validation_draws(table: Table, seed: int) -> dict[str, float]:
    """The validation accuracy each cell reports in run ``seed``.

    One training seed per cell, drawn once per run seed, so every searcher
    sees the same score for the same cell (NATS-Bench's API also answers a
    query with one random training seed).
    """
    rng = np.random.default_rng([seed, 201])
    codes = sorted(table.validation)
    picks = rng.random(len(codes))
    return {
        code: table.validation[code][int(pick * len(table.validation[code]))]
        for code, pick in zip(codes, picks)
    }


def search_run(table: Table, factory: SearcherFactory, seed: int, budget: int) -> dict:
    """One search of ``budget`` trials.

    Returns:
        ``{"returned": test accuracy of best() after each trial,
        "evaluated": best test accuracy among the cells evaluated so far,
        "trials": trials actually run}``. ``returned`` is what a user gets;
        ``evaluated`` is what a perfect choice among the evaluated cells would
        give, so their gap is the cost of choosing by one noisy validation seed.

    Raises:
        RuntimeError: the benchmark's running best disagrees with ``best()``.
    """
    scores = validation_draws(table, seed)
    search = factory(table, seed, budget)
    returned, evaluated = np.full(budget, np.nan), np.full(budget, np.nan)
    best_key, best_code, best_test = None, None, -np.inf
    trials = 0
    while (cand := search.ask()) is not None:
        code = op_code(cand.arch)
        score = scores[code]
        search.tell(cand, score)
        # best()'s rule (highest score, then cheaper, then earlier), kept
        # incrementally: calling best() after every trial is quadratic.
        key = (-score, cand.cost, trials)
        if best_key is None or key < best_key:
            best_key, best_code = key, code
        best_test = max(best_test, table.test[code])
        returned[trials], evaluated[trials] = table.test[best_code], best_test
        trials += 1
    if trials and op_code(search.best()[0]) != best_code:
        raise RuntimeError(
            f"The running best {best_code} disagrees with search.best() "
            f"{op_code(search.best()[0])}: the benchmark's bookkeeping is wrong."
        )
    for curve in (returned, evaluated):  # finished early: the result stays
        curve[trials:] = curve[trials - 1] if trials else np.nan
    return {"returned": returned, "evaluated": evaluated, "trials": trials}


def run(datasets, seeds, searchers: dict, budget: int = max(BUDGETS)) -> dict:
    """Every dataset x searcher x seed.

    Returns:
        ``{(dataset, searcher name): {"returned", "evaluated"`` (seeds x
        budget arrays), ``"seconds", "optimum"}}``.
    """
    results = {}
    for dataset in datasets:
        table = load_table(dataset)
        for name, factory in searchers.items():
            start = time.perf_counter()
            runs = [search_run(table, factory, seed, budget) for seed in seeds]
            results[(dataset, name)] = {
                "returned": np.array([r["returned"] for r in runs]),
                "evaluated": np.array([r["evaluated"] for r in runs]),
                "seconds": time.perf_counter() - start,
                "optimum": table.optimum,
            }
    return results


def _median_trials_to_optimum(evaluated: np.ndarray, optimum: float) -> float | None:
    """Median over seeds of the trial that first evaluates the optimum (None: most never do).

    Seeds that never evaluate it count as infinitely late, so the median is
    defined only while at least half of the seeds find it.
    """
    hits = evaluated == optimum
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, np.inf)
    median = float(np.median(first))
    return median if np.isfinite(median) else None


def summarise(results: dict) -> list[dict]:
    """Mean and standard deviation over seeds of the returned test accuracy per budget."""
    rows = []
    for (dataset, searcher), value in results.items():
        returned, evaluated = value["returned"], value["evaluated"]
        rows.append({
            "dataset": dataset,
            "searcher": searcher,
            "seeds": len(returned),
            "mean_test": {b: float(np.mean(returned[:, b - 1])) for b in BUDGETS},
            "std_test": {b: float(np.std(returned[:, b - 1])) for b in BUDGETS},
            "mean_best_evaluated_test": {b: float(np.mean(evaluated[:, b - 1])) for b in BUDGETS},
            "optimum": value["optimum"],
            "optimum_evaluated_by_1000": int(np.sum(evaluated[:, -1] == value["optimum"])),
            "median_trials_to_optimum": _median_trials_to_optimum(evaluated, value["optimum"]),
            "seconds": value["seconds"],
        })
    return rows


def table_markdown(rows: list[dict], reference: str) -> str:
    """One row per dataset x searcher: test accuracy (mean +- std) and the gap to ``reference``."""
    lookup = {(r["dataset"], r["searcher"]): r for r in rows}
    lines = []
    for r in rows:
        ref = lookup[(r["dataset"], reference)]["mean_test"]
        lines.append([
            r["dataset"], r["searcher"],
            *(f"{r['mean_test'][b]:.2f} +- {r['std_test'][b]:.2f}" for b in BUDGETS),
            f"{r['mean_best_evaluated_test'][1000]:.2f}",
            f"{r['optimum_evaluated_by_1000']}/{r['seeds']}",
            "-" if r["median_trials_to_optimum"] is None else f"{r['median_trials_to_optimum']:.0f}",
            *(f"{r['mean_test'][b] - ref[b]:+.2f}" for b in (200, 1000)),
        ])
    return markdown_table(
        ["dataset", "searcher", *(f"test@{b}" for b in BUDGETS),
         "best evaluated@1000", "optimum evaluated by 1000", "median trials to optimum",
         f"gap@200 vs {reference}", "gap@1000"], lines)


def paper_markdown(rows: list[dict], datasets) -> str:
    """The paper's Table 3 next to this run's test accuracy at 1000 trials."""
    ours = {(r["dataset"], r["searcher"]): r["mean_test"][1000] for r in rows}
    lines = []
    for dataset in datasets:
        paper = PAPER_TABLE3[dataset]
        lines.append([
            dataset, paper["RS"], f"{ours[(dataset, 'RandomSearch')]:.2f}",
            paper["RE"], f"{ours[(dataset, 'RegularizedEvolution (edges)')]:.2f}",
            paper["LayerNAS"], f"{ours[(dataset, 'LayerNAS (default none, paper)')]:.2f}",
            f"{ours[(dataset, 'LayerNAS (default pass-through)')]:.2f}",
            f"{ours[(dataset, 'LayerNAS (6 edge layers, pass-through)')]:.2f}",
            paper["optimal"],
        ])
    return markdown_table(
        ["dataset", "paper RS", "RS", "paper RE", "RE (edges)", "paper LayerNAS",
         "LayerNAS (none)", "LayerNAS (pass-through)", "LayerNAS (6 edges)", "optimal test"],
        lines)


def plot(results: dict, datasets, path: Path) -> None:
    """Test accuracy of best() vs trials: mean and 10-90% band per searcher and dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        optimum = None
        for (d, searcher), value in results.items():
            if d != dataset:
                continue
            optimum = value["optimum"]
            accuracy = value["returned"]
            trials = np.arange(1, accuracy.shape[1] + 1)
            ax.plot(trials, accuracy.mean(axis=0), label=searcher)
            ax.fill_between(trials, np.percentile(accuracy, 10, axis=0),
                            np.percentile(accuracy, 90, axis=0), alpha=0.15)
        ax.axhline(optimum, color="k", linestyle=":", linewidth=1, label="optimal test")
        ax.set_xscale("log")
        ax.set_ylim(optimum - 5.0, optimum + 0.3)
        ax.set_xlabel("trials (log)")
        ax.set_ylabel("test accuracy of best() (%)")
        ax.set_title(f"NAS-Bench-201 {dataset}")
        ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _rounded(results: dict) -> dict:
    """Mean returned test accuracy after every trial, for the JSON."""
    return {f"{d}|{s}": [round(float(x), 3) for x in v["returned"].mean(axis=0)]
            for (d, s), v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="cifar10 only, 3 seeds")
    args = parser.parse_args()
    datasets = ["cifar10"] if args.quick else list(DATASETS)
    seeds = range(3 if args.quick else 20)
    start = time.perf_counter()
    results = run(datasets, seeds, SEARCHERS)
    variants = run(datasets, seeds, {**VARIANTS, "LayerNAS (default pass-through)":
                                     SEARCHERS["LayerNAS (default pass-through)"]})
    plot(results, datasets, RESULTS / "nb201.png")
    rows, variant_rows = summarise(results), summarise(variants)
    write_json("nb201", {
        "datasets": datasets, "seeds": list(seeds), "budgets": list(BUDGETS),
        "paper_table3": {d: PAPER_TABLE3[d] for d in datasets},
        "searchers": rows, "variants": variant_rows,
        "mean_test_curves": _rounded(results),
        "seconds": time.perf_counter() - start,
    })
    text = (
        "## nb201: LayerNAS in topology mode (NAS-Bench-201)\n\n"
        f"`python -m benchmarks.nb201{' --quick' if args.quick else ''}` (raw: "
        "`benchmarks/results/nb201.json`, plot: `benchmarks/results/nb201.png`; "
        "encoding and discussion: [topology-search.md](topology-search.md)). "
        "The 6-edge cell as 3 layers (one per added node) with 5/25/125 options, bucket key = "
        "the architecture, target = the whole FLOPs range. A trial tells the searcher the "
        "200-epoch validation accuracy of one training seed (drawn per run and cell, the same "
        "for every searcher); the table shows the 200-epoch test accuracy (mean over training "
        f"seeds) of the cell `best()` returns, mean +- std over {len(seeds)} search seeds. "
        "'best evaluated' = best test accuracy among the evaluated cells (a perfect choice); "
        "'median trials to optimum' = median trial at which the cell with the best test "
        "accuracy was evaluated ('-': in fewer than half of the seeds). Gaps are in accuracy "
        "points against LayerNAS (default pass-through). Trial budgets, not the paper's "
        "1e5 seconds: the table has no training times. "
        f"Machine: {machine()['processor']}, {machine()['cpus']} CPUs (shared), Python "
        f"{machine()['python']}; whole run {time.perf_counter() - start:.0f} s.\n\n"
        + table_markdown(rows, "LayerNAS (default pass-through)")
        + "\n\nOne LayerNAS setting changed at a time, and evolution over the node encoding "
        "(same seeds and draws):\n\n"
        + table_markdown(variant_rows, "LayerNAS (default pass-through)")
        + "\n\nAgainst the paper's Table 3 (paper: mean of 5 runs at 1e5 s; here: 1000 trials, "
        f"{len(seeds)} seeds):\n\n"
        + paper_markdown(rows, datasets)
    )
    write_section("nb201", text)
    print(text)


if __name__ == "__main__":
    main()
