"""LayerNASOracle vs KerasTuner's own oracles on NATS-Bench size search.

Every searcher runs inside a real ``keras_tuner.Tuner`` whose ``run_trial``
looks the architecture's 90-epoch validation accuracy up in the NATS-sss table
(plus optional Gaussian noise) instead of training, so KerasTuner's own
machinery (trial files, oracle state, best-trial ranking) is exercised and
timed as a user would run it.

LayerNAS gets the space as ``SearchSpace.from_options`` with FLOPs from the
table as the cost and the target range as ``target``. KerasTuner's oracles get
the equivalent ``hp.Choice`` space and know nothing about the target, so the
user's ``run_trial`` must reject out-of-target architectures itself:

- ``fail``: raise ``keras_tuner.errors.FailedTrialError`` (no training, the
  trial still counts against ``max_trials``; ``max_consecutive_failed_trials``
  raised to the budget, or KerasTuner stops after 3 such trials in a row);
- ``penalty``: report a score of 0 (the oracle learns from it, e.g. the GP of
  Bayesian optimization).

Random and grid search ignore scores, so for them the two are the same search.
The returned architecture is ``oracle.get_best_trials(1)`` (checked at the end
of every run against this script's own bookkeeping); regret = optimum in target
minus its noiseless accuracy.

Usage:
    python -m benchmarks.oracle_comparison            # full run: JSON, PNG, docs table
    python -m benchmarks.oracle_comparison --quick    # cifar10, 2 seeds, 100 trials
                                                      # (Bayesian: 1 seed, 40 trials)
    # or in parallel processes, then merged:
    python -m benchmarks.oracle_comparison --only fast --datasets cifar10 --raw a.json
    python -m benchmarks.oracle_comparison --only bayesian --seeds 2 3 --raw b.json
    python -m benchmarks.oracle_comparison --merge a.json b.json
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks._report import RESULTS, atomic_write, markdown_table, write_json, write_section
from benchmarks.nats_sss import BUDGETS, CHANNELS, TARGETS, Table, load_table

LAYERS = [f"c{i}" for i in range(1, 6)]
OBJECTIVE = "val_accuracy"
PENALTY_SCORE = 0.0  # accuracy in % reported for an out-of-target architecture
TRAINED = (20, 40)  # models trained: random search reaches ~44 in 400 trials


@dataclass(frozen=True)
class Searcher:
    """One row of the comparison: which oracle, and how it meets infeasible archs.

    Attributes:
        oracle: ``"layernas"``, ``"random"``, ``"bayesian"`` or ``"grid"``.
        infeasible: ``"fail"`` or ``"penalty"`` for KerasTuner's oracles;
            ``None`` for LayerNAS, which never proposes an architecture that
            cannot reach the target (and whose wider, intermediate trials are
            real trials with real scores).
        max_budget: trials per run; smaller for the slow Bayesian oracle.
    """

    oracle: str
    infeasible: str | None
    max_budget: int = max(BUDGETS)


SEARCHERS = {
    "LayerNAS": Searcher("layernas", None),
    "RandomSearch": Searcher("random", "fail"),
    "GridSearch": Searcher("grid", "fail"),
    # Each Bayesian proposal fits a GP (20 restarts) and runs 50 L-BFGS-B starts:
    # ~4 s here, so these rows get fewer trials, seeds and datasets (see main).
    # With "fail" the GP starts only after 15 in-target trials (~135 trials).
    "BayesianOptimization (fail)": Searcher("bayesian", "fail", 200),
    "BayesianOptimization (penalty)": Searcher("bayesian", "penalty", 100),
}
BAYESIAN_DATASETS = ["cifar10"]
BAYESIAN_SEEDS = 2


@dataclass
class RunLog:
    """What one tuner run did, trial by trial, in the order trials ended."""

    archs: list = field(default_factory=list)
    scores: list = field(default_factory=list)  # reported score; None for a failed trial
    infeasible: list = field(default_factory=list)
    propose_seconds: list = field(default_factory=list)
    search_seconds: float = 0.0


def make_oracle(searcher: Searcher, table: Table, seed: int, budget: int):
    """The KerasTuner oracle a user would build for this searcher.

    Raises:
        ValueError: unknown ``searcher.oracle``.
    """
    import keras_tuner

    from keras_layernas import LayerNASOracle, SearchSpace

    objective = keras_tuner.Objective(OBJECTIVE, "max")
    if searcher.oracle == "layernas":
        space = SearchSpace.from_options(
            {name: CHANNELS for name in LAYERS},
            cost_fn=lambda values: table.flops[tuple(values[n] for n in LAYERS)])
        return LayerNASOracle(space, objective=objective, target=table.target,
                              max_trials=budget, seed=seed)
    hyperparameters = keras_tuner.HyperParameters()
    for name in LAYERS:
        hyperparameters.Choice(name, CHANNELS)  # same order: default = base = widest
    common = dict(objective=objective, max_trials=budget, seed=seed,
                  hyperparameters=hyperparameters,
                  # with infeasible="fail" most trials fail; KerasTuner's default
                  # (3 in a row) would end the search after a few trials
                  max_consecutive_failed_trials=budget + 1)
    if searcher.oracle == "random":
        return keras_tuner.oracles.RandomSearchOracle(**common)
    if searcher.oracle == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(**common)
    if searcher.oracle == "grid":
        return keras_tuner.oracles.GridSearchOracle(**common)
    raise ValueError(
        f"Unknown oracle {searcher.oracle!r}. Expected 'layernas', 'random', 'bayesian' or 'grid'.")


def make_tuner(oracle, table: Table, noise: float, seed: int, infeasible: str | None,
               directory: str, log: RunLog):
    """A ``keras_tuner.Tuner`` whose trials are table look-ups.

    The oracle's ``populate_space`` is wrapped to time the proposal alone, so the
    per-trial overhead splits into "the oracle deciding" and "KerasTuner's
    bookkeeping" (trial files, oracle state, tuner state).
    """
    import keras_tuner

    noise_rng = np.random.default_rng([seed, 7])  # the stream benchmarks.nats_sss uses
    populate_space = oracle.populate_space

    def timed_populate_space(trial_id):
        start = time.perf_counter()
        response = populate_space(trial_id)
        log.propose_seconds.append(time.perf_counter() - start)
        return response

    oracle.populate_space = timed_populate_space

    class LookupTuner(keras_tuner.Tuner):
        """Scores a trial by table look-up; rejects out-of-target archs as configured."""

        def run_trial(self, trial, *args, **kwargs):
            arch = tuple(trial.hyperparameters.get(name) for name in LAYERS)
            out_of_target = not in_target(table, arch)
            log.archs.append(arch)
            log.infeasible.append(out_of_target and infeasible is not None)
            if out_of_target and infeasible == "fail":
                log.scores.append(None)
                raise keras_tuner.errors.FailedTrialError(
                    f"{table.flops[arch]:.1f} MFLOPs is outside the target {table.target}.")
            if out_of_target and infeasible == "penalty":
                score = PENALTY_SCORE
            else:
                score = table.accuracy[arch] + noise * noise_rng.normal()
            log.scores.append(score)
            return {OBJECTIVE: score}

    return LookupTuner(oracle=oracle, directory=directory, project_name="search")


def quiet_failed_trials() -> None:
    """Stop KerasTuner printing a traceback for every rejected (failed) trial.

    ``keras_tuner.config.DEBUG`` defaults to True; thousands of expected
    ``FailedTrialError`` tracebacks would drown the output and the timing.
    """
    import warnings

    from keras_tuner.src import config

    config.DEBUG = False
    # The GP's hyperparameter fit warns about bounds on most proposals.
    warnings.filterwarnings("ignore", module="sklearn")


def run_one(searcher: Searcher, table: Table, noise: float, seed: int, budget: int) -> RunLog:
    """One tuner search; checks that KerasTuner's best trial is the one we score.

    Raises:
        RuntimeError: ``oracle.get_best_trials(1)`` disagrees with the best
            in-target trial of this run's log (the regret would be wrong).
    """
    log = RunLog()
    with tempfile.TemporaryDirectory(prefix="oracle_comparison_") as directory:
        oracle = make_oracle(searcher, table, seed, budget)
        tuner = make_tuner(oracle, table, noise, seed, searcher.infeasible, directory, log)
        start = time.perf_counter()
        tuner.search(verbose=0)
        log.search_seconds = time.perf_counter() - start
        best = oracle.get_best_trials(1)
        ours = returned_trials(table, log)[-1] if log.archs else None
        if ours is not None:
            theirs = tuple(best[0].hyperparameters.get(name) for name in LAYERS)
            if theirs != log.archs[ours]:
                raise RuntimeError(
                    f"{type(oracle).__name__}.get_best_trials(1) returned {theirs}, but the "
                    f"best in-target trial logged here is {log.archs[ours]}: the regret "
                    "bookkeeping no longer matches KerasTuner's ranking.")
    return log


def in_target(table: Table, arch: tuple) -> bool:
    """Whether the architecture's FLOPs lie in the target range (bounds included)."""
    return table.target[0] <= table.flops[arch] <= table.target[1]


def returned_trials(table: Table, log: RunLog) -> list[int | None]:
    """After each trial, the index of the trial the tuner returns as best.

    That is the best-scored completed in-target trial, the earliest on ties
    (``get_best_trials`` sorts stably); None before the first one.
    """
    returned, best = [], None
    for i, (arch, score) in enumerate(zip(log.archs, log.scores)):
        if score is not None and in_target(table, arch):
            if best is None or score > log.scores[best]:
                best = i
        returned.append(best)
    return returned


def regret_curve(table: Table, log: RunLog, budget: int) -> np.ndarray:
    """Regret of the returned architecture after each trial (NaN before any in target).

    A run that stopped early (the oracle had nothing left) keeps its last answer.
    """
    curve = np.full(budget, np.nan)
    for i, best in enumerate(returned_trials(table, log)):
        if best is not None:
            curve[i] = table.optimum - table.accuracy[log.archs[best]]
    trials = len(log.archs)
    if 0 < trials < budget:
        curve[trials:] = curve[trials - 1]
    return curve


def regret_after_trained(table: Table, log: RunLog, trained: int) -> float | None:
    """Regret once ``trained`` models were trained (rejected trials train nothing).

    Rejected trials cost a ``max_trials`` slot but no training; this is the
    comparison at equal training cost. None if the run trained fewer models.
    """
    trained_so_far = np.cumsum(~np.asarray(log.infeasible, dtype=bool))
    reached = np.flatnonzero(trained_so_far == trained)
    if reached.size == 0:
        return None
    curve = regret_curve(table, log, len(log.archs))
    value = curve[reached[0]]
    return None if np.isnan(value) else float(value)


def run(datasets: list[str], seeds: list[int], noises: list[float], searchers: dict,
        budget_cap: int | None = None, progress: Callable[..., None] = print) -> dict:
    """Every dataset x noise x searcher x seed, side by side in one process.

    Returns:
        ``{(dataset, noise, searcher name): {"curves", "logs", "budget",
        "optimum"}}`` with one regret curve and one ``RunLog`` per seed.
    """
    results = {}
    for dataset in datasets:
        table = load_table(dataset)
        for noise in noises:
            for name, searcher in searchers.items():
                budget = min(searcher.max_budget, budget_cap or searcher.max_budget)
                logs = [run_one(searcher, table, noise, seed, budget) for seed in seeds]
                results[(dataset, noise, name)] = {
                    "curves": np.array([regret_curve(table, log, budget) for log in logs]),
                    "logs": logs,
                    "budget": budget,
                    "optimum": table.optimum,
                    "table": table,
                }
                seconds = sum(log.search_seconds for log in logs)
                progress(f"{dataset} sigma={noise} {name}: {len(seeds)} runs x {budget} "
                         f"trials in {seconds:.0f} s", flush=True)
    return results


def summarise(results: dict, budgets: tuple) -> list[dict]:
    """Per dataset x noise x searcher: mean regret per budget, waste, overhead."""
    rows = []
    for (dataset, noise, name), value in results.items():
        curves, logs, budget = value["curves"], value["logs"], value["budget"]
        trials = sum(len(log.archs) for log in logs)
        duplicates = sum(len(log.archs) - len(set(log.archs)) for log in logs)
        rejected_repeats = sum(_rejected_repeats(log) for log in logs)
        rows.append({
            "dataset": dataset,
            "noise": noise,
            "searcher": name,
            "seeds": len(logs),
            "budget": budget,
            # None where the budget exceeds this searcher's run, or no seed has an answer
            "mean_regret": {b: _mean_or_none(curves[:, b - 1]) if b <= budget else None
                            for b in budgets},
            # at equal training cost: {models trained: [mean regret, seeds that got there]}
            "regret_after_trained": {
                n: _mean_and_count([regret_after_trained(value["table"], log, n) for log in logs])
                for n in TRAINED},
            "no_answer_at_budget": int(np.sum(np.isnan(curves[:, -1]))),
            "optimum_at_budget": int(np.sum(curves[:, -1] == 0)),
            "trials": trials,
            "infeasible_share": sum(sum(log.infeasible) for log in logs) / trials,
            # trained although outside the target: LayerNAS's wider intermediate candidates
            "trained_outside_target_share": sum(
                not rejected and not in_target(value["table"], arch)
                for log in logs for arch, rejected in zip(log.archs, log.infeasible)) / trials,
            "duplicate_share": duplicates / trials,
            "rejected_repeat_share": rejected_repeats / trials,
            "ms_per_trial": 1000 * sum(log.search_seconds for log in logs) / trials,
            "propose_ms_per_trial": 1000 * sum(sum(log.propose_seconds) for log in logs) / trials,
        })
    return rows


def _rejected_repeats(log: RunLog) -> int:
    """Trials that repeat an architecture already tried and are rejected again."""
    seen, repeats = set(), 0
    for arch, rejected in zip(log.archs, log.infeasible):
        repeats += arch in seen and rejected
        seen.add(arch)
    return repeats


def _mean_and_count(values: list) -> list:
    """[mean of the non-None values or None, how many were not None]."""
    present = [v for v in values if v is not None]
    return [float(np.mean(present)) if present else None, len(present)]


def _mean_or_none(values: np.ndarray) -> float | None:
    """Mean over the seeds that have an answer; None if none has."""
    answered = values[~np.isnan(values)]
    return float(answered.mean()) if answered.size else None


def regret_markdown(rows: list[dict], budgets: tuple, reference: str = "LayerNAS") -> str:
    """Mean regret per budget; seeds without an in-target answer are counted apart."""
    lookup = {(r["dataset"], r["noise"], r["searcher"]): r for r in rows}
    lines = []
    for r in rows:
        ref = lookup[(r["dataset"], r["noise"], reference)]["mean_regret"].get(200)
        mine = r["mean_regret"].get(200)
        lines.append([
            r["dataset"], r["noise"], r["searcher"],
            *(_fmt(r["mean_regret"][b]) for b in budgets),
            f"{r['no_answer_at_budget']}/{r['seeds']}",
            f"{r['optimum_at_budget']}/{r['seeds']} @{r['budget']}",
            f"{100 * r['infeasible_share']:.0f}%",
            f"{100 * r['trained_outside_target_share']:.0f}%",
            f"{100 * r['duplicate_share']:.0f}%",
            _ratio(mine, ref, reference),
            *(f"{_fmt(r['regret_after_trained'][n][0])} ({r['regret_after_trained'][n][1]})"
              for n in TRAINED),
        ])
    return markdown_table(
        ["dataset", "noise", "searcher", *(f"regret@{b}" for b in budgets),
         "no in-target answer at end", "optimum returned at end", "trials rejected (out of target)",
         "trials trained outside target",
         "repeated archs", f"regret@200 / {reference}",
         *(f"regret after {n} trained (seeds with an answer)" for n in TRAINED)], lines)


def overhead_totals(rows: list[dict]) -> dict:
    """Per searcher over all its runs: trials, ms per trial, populate_space ms per trial."""
    sums = {}
    for r in rows:
        total = sums.setdefault(r["searcher"], [0, 0.0, 0.0])
        total[0] += r["trials"]
        total[1] += r["ms_per_trial"] * r["trials"]
        total[2] += r["propose_ms_per_trial"] * r["trials"]
    return {name: {"trials": n, "ms": ms / n, "propose_ms": propose / n}
            for name, (n, ms, propose) in sums.items()}


def overhead_markdown(rows: list[dict], reference: str = "RandomSearch") -> str:
    """Wall time per trial through the whole Tuner loop, and the oracle's share."""
    totals = overhead_totals(rows)
    ref = totals[reference]
    lines = [[name, t["trials"], f"{t['ms']:.1f}", f"{t['propose_ms']:.2f}",
              f"{t['ms'] - t['propose_ms']:.1f}", f"{t['ms'] / ref['ms']:.2f}x",
              f"{t['propose_ms'] / ref['propose_ms']:.1f}x"]
             for name, t in totals.items()]
    return markdown_table(
        ["searcher", "trials timed", "ms / trial (whole Tuner loop)", "of which populate_space ms",
         "rest (KerasTuner bookkeeping, look-up) ms", f"ms / trial vs {reference}",
         f"populate_space vs {reference}"], lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ratio(mine: float | None, ref: float | None, reference: str) -> str:
    if mine is None or ref is None:
        return "-"
    if ref > 0:
        return f"{mine / ref:.1f}x"
    return "1.0x (both 0)" if mine == 0 else f"inf ({reference} at 0)"


def plot(results: dict, datasets: list[str], path: Path) -> None:
    """Mean regret vs trials, one panel per dataset x noise (symlog y axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    noises = sorted({n for _, n, _ in results})
    fig, axes = plt.subplots(len(noises), len(datasets), squeeze=False,
                             figsize=(5 * len(datasets), 3.6 * len(noises)))
    top = {}
    for (dataset, noise, name), value in results.items():
        ax = axes[noises.index(noise)][datasets.index(dataset)]
        mean = np.array([np.nan if m is None else m
                         for m in (_mean_or_none(c) for c in value["curves"].T)])
        if np.all(np.isnan(mean)):
            name += " (no in-target answer)"
        else:
            top[ax] = max(top.get(ax, 0.0), float(np.nanmax(mean)))
        ax.plot(np.arange(1, len(mean) + 1), mean, label=name)
        ax.set_title(f"NATS-sss {dataset}, noise sigma={noise}")
    for row in axes:
        for ax in row:
            ax.set_yscale("symlog", linthresh=0.1)
            # set after all lines: the autoscale would stop at the first line's range
            ax.set_ylim(0, 1.3 * top.get(ax, 1.0))
            ax.set_xlabel("trials (KerasTuner max_trials)")
            ax.set_ylabel("mean regret (accuracy points)")
            ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def save_raw(results: dict, path: Path) -> None:
    """Keep one process's runs, so slow parts can run in parallel and merge later."""
    payload = [
        {"key": list(key), "budget": value["budget"], "optimum": value["optimum"],
         "logs": [asdict(log) for log in value["logs"]]}
        for key, value in results.items()
    ]
    atomic_write(path, json.dumps(payload))


def load_raw(path: Path) -> dict:
    """Inverse of :func:`save_raw`; regret curves are recomputed from the logs."""
    results = {}
    for entry in json.loads(Path(path).read_text()):
        dataset, noise, name = entry["key"]
        table = load_table(dataset)
        logs = []
        for raw in entry["logs"]:
            log = RunLog(**raw)
            log.archs = [tuple(arch) for arch in log.archs]
            logs.append(log)
        results[(dataset, noise, name)] = {
            "curves": np.array([regret_curve(table, log, entry["budget"]) for log in logs]),
            "logs": logs, "budget": entry["budget"], "optimum": entry["optimum"],
            "table": table,
        }
    return results


def report(results: dict, command: str) -> None:
    """JSON, PNG and the docs section from merged results."""
    seconds = sum(log.search_seconds for value in results.values() for log in value["logs"])
    datasets = [d for d in TARGETS if any(k[0] == d for k in results)]
    noises = sorted({k[1] for k in results})
    results = {key: results[key] for key in sorted(
        results, key=lambda k: (datasets.index(k[0]), k[1], list(SEARCHERS).index(k[2])))}
    budgets = tuple(b for b in BUDGETS if b <= max(v["budget"] for v in results.values()))
    rows = summarise(results, budgets)
    plot(results, datasets, RESULTS / "oracle_comparison.png")
    write_json("oracle_comparison", {
        "command": command, "datasets": datasets, "noises": noises, "budgets": list(budgets),
        "targets_mflops": {d: TARGETS[d] for d in datasets},
        "searchers": {n: {"oracle": s.oracle, "infeasible": s.infeasible,
                          "max_budget": s.max_budget} for n, s in SEARCHERS.items()},
        "rows": rows,
        # mean over the seeds with an answer, after each trial (None before any)
        "mean_regret_curves": {
            f"{d}|{n}|{s}": [None if x is None else round(x, 3)
                             for x in (_mean_or_none(c) for c in v["curves"].T)]
            for (d, n, s), v in results.items()
        },
        "load_average_at_end": os.getloadavg(),
        "search_seconds_summed_over_runs": seconds,
    })
    text = section_markdown(results, rows, budgets, command, seconds)
    write_section("oracle_comparison", text)
    print(text)


def section_markdown(results: dict, rows: list[dict], budgets: tuple, command: str,
                     seconds: float) -> str:
    """The docs/benchmarks.md section: set-up, both tables, what they show."""
    runs = {name: sorted({(d, n) for d, n, s in results if s == name}) for name in SEARCHERS}
    seeds = {name: len(v["logs"]) for (_, _, name), v in results.items()}
    coverage = "; ".join(
        f"{name}: {seeds[name]} seeds x {sorted({d for d, _ in runs[name]})} x "
        f"{results[next(k for k in results if k[2] == name)]['budget']} trials"
        for name in SEARCHERS if runs[name])
    load = os.getloadavg()[0]
    return (
        "## oracle_comparison: LayerNASOracle vs KerasTuner's own oracles (NATS-sss)\n\n"
        f"`{command}` (raw: `benchmarks/results/oracle_comparison.json`, plot: "
        "`benchmarks/results/oracle_comparison.png`). Same space, data and regret as "
        "`nats_sss` above (5 layers x 8 channel counts, real 90-epoch validation accuracy, "
        "target (0.8T, T] with T = 140/140/35 MFLOPs, noise sigma 0 and 0.2 added per trial), "
        "but every searcher is a KerasTuner oracle driven by a real `keras_tuner.Tuner` whose "
        "`run_trial` looks the score up (no model is built). LayerNAS: `LayerNASOracle` over "
        "`SearchSpace.from_options` (cost = the table's FLOPs, `target` = the range). "
        "KerasTuner's `RandomSearchOracle`, `GridSearchOracle` and "
        "`BayesianOptimizationOracle` (defaults; 15 random initial points) get the same five "
        "`hp.Choice(name, [64, 56, ..., 8])` and no notion of cost, so `run_trial` rejects an "
        "out-of-target architecture before training, as a user would have to: **fail** = raise "
        "`keras_tuner.errors.FailedTrialError` (with `max_consecutive_failed_trials` raised to "
        "the budget: with KerasTuner's default of 3, a one-off check stopped the cifar10 random "
        "search with a `RuntimeError` after 3-6 trials in all 10 seeds), "
        "**penalty** = report accuracy 0. Random and grid search never read scores, so only "
        "the Bayesian oracle is run both ways. A rejected trial trains nothing but uses one of "
        "`max_trials`. The returned architecture is `oracle.get_best_trials(1)` "
        "(`LayerNASOracle` ranks in-target trials only), checked against the script's own "
        f"bookkeeping after every run. Coverage: {coverage}. "
        "Each GP proposal of the Bayesian oracle "
        "takes seconds (a GP fit with 20 optimizer restarts plus 50 L-BFGS-B starts on the "
        "acquisition; averages in the overhead table), so its rows have fewer datasets, seeds "
        "and trials (coverage above); "
        "it needs scikit-learn (`pip install keras-tuner[bayesian]`), which "
        "the project venv lacks (installed beside it for this run).\n\n"
        "Mean regret (accuracy points; mean over the seeds that have an in-target answer, "
        "'no in-target answer' counts the others) against `max_trials`, and, in the last two "
        "columns, after the same number of *trained* models (rejected trials excluded):\n\n"
        + regret_markdown(rows, budgets)
        + "\n\nPer-trial overhead through the whole `Tuner.search` loop (create trial, look-up, "
        "end trial, KerasTuner's trial/oracle/tuner JSON files), summed over all runs above; "
        "`populate_space` is the oracle's own decision. The runs were split over parallel "
        "processes (command above), on a 2-core machine shared with other jobs "
        f"(1-min load average {load:.1f} at the end; `Tuner.search` time summed over all runs "
        f"{seconds / 60:.0f} min):\n\n"
        + overhead_markdown(rows)
        + "\n\n" + discussion(rows)
    )


def discussion(rows: list[dict]) -> str:
    """What the tables show, with the numbers read from them."""
    by = {(r["dataset"], r["noise"], r["searcher"]): r for r in rows}
    layernas = [r for r in rows if r["searcher"] == "LayerNAS"]
    random = {(r["dataset"], r["noise"]): r for r in rows if r["searcher"] == "RandomSearch"}
    at = min(200, max(layernas[0]["mean_regret"]))  # 100 with --quick
    at_budget = [(r["mean_regret"][at], random[(r["dataset"], r["noise"])]["mean_regret"][at])
                 for r in layernas]
    wins = sum(mine < theirs for mine, theirs in at_budget)
    trained = [(r["regret_after_trained"][40][0],
                random[(r["dataset"], r["noise"])]["regret_after_trained"][40][0])
               for r in layernas]
    wins40 = sum(m is not None and t is not None and m < t for m, t in trained)
    outside = [100 * r["trained_outside_target_share"] for r in layernas]
    totals = overhead_totals(rows)
    bayes = [r for r in rows if r["searcher"].startswith("BayesianOptimization")]
    lines = [
        "What this shows:",
        f"- **Against `RandomSearchOracle`** at the same `max_trials`, LayerNAS has the lower "
        f"mean regret at {at} trials in {wins} of {len(at_budget)} dataset x noise cells. "
        f"{100 * random[next(iter(random))]['infeasible_share']:.0f}% of the random trials "
        "are out of target (only 11% of the 32,768 architectures lie in the target), so a "
        "KerasTuner user's random search trains about one model in nine; note that "
        "`benchmarks.nats_sss`'s own RandomSearch samples in-target architectures only and "
        "so does better than KerasTuner's here.",
        f"- **At equal training cost** (regret after 40 trained models; random search gets "
        f"there in only some seeds within 400 trials) LayerNAS is still lower in {wins40} of "
        f"{len(trained)} cells. LayerNAS's trained models are not all target-sized: "
        f"{min(outside):.0f}-{max(outside):.0f}% of its trials are the wider or narrower "
        "intermediate candidates of earlier layers, which cost training time of their own.",
        "- **`GridSearchOracle`** starts at the default (widest) architecture and varies the "
        "last `hp.Choice` fastest: "
        + ", ".join(f"{r['dataset']} {100 * r['infeasible_share']:.0f}%"
                    for r in rows if r["searcher"] == "GridSearch" and r["noise"] == 0)
        + " of its trials are out of target, so with no in-target trial it returns nothing. "
        "A grid over 8^5 architectures in a fixed order is hopeless at these budgets.",
    ]
    if bayes:
        fail = [r for r in bayes if "fail" in r["searcher"]]
        penalty = [r for r in bayes if "penalty" in r["searcher"]]
        lines.append(
            "- **`BayesianOptimizationOracle`** (cifar10 only, few seeds: treat as indicative). "
            "With *fail* the GP never sees a rejected trial, and it starts only after 15 "
            "*completed* trials, i.e. after ~130 random trials; from then on it proposes the "
            "same rejected architectures again and again (KerasTuner's Bayesian oracle does not "
            "skip repeats, and nothing it sees changes): "
            + ", ".join(f"{100 * r['rejected_repeat_share']:.0f}%" for r in fail)
            + " of all its trials (noise " + ", ".join(str(r["noise"]) for r in fail)
            + ") repeat an already rejected architecture, so it is a random search that stops "
            "searching. With *penalty* the GP learns from the zeros and rejects fewer trials "
            "than random search ("
            + ", ".join(f"{100 * r['infeasible_share']:.0f}%" for r in penalty)
            + ") but re-trains in-target architectures it already knows ("
            + ", ".join(f"{100 * r['duplicate_share']:.0f}%" for r in penalty)
            + " of its trials are repeats). Either way its regret stays far above LayerNAS's, "
            f"and a proposal cost {totals[fail[0]['searcher']]['propose_ms'] / 1000:.1f} s on "
            "average (the cheap random ones included) against LayerNAS's "
            f"{totals['LayerNAS']['propose_ms']:.2f} ms.")
    ratio = totals["LayerNAS"]["ms"] / totals["RandomSearch"]["ms"]
    lines += [
        f"- **Where LayerNAS loses: per-trial bookkeeping.** Its `populate_space` is as cheap "
        f"as random search's ({totals['LayerNAS']['propose_ms']:.2f} vs "
        f"{totals['RandomSearch']['propose_ms']:.2f} ms), but a whole trial through the Tuner "
        f"took {ratio:.1f}x as long ({totals['LayerNAS']['ms']:.0f} vs "
        f"{totals['RandomSearch']['ms']:.0f} ms). A one-off cProfile of one 200-trial "
        "LayerNAS run (not part of this script) put 46% of the time in `os.fsync` and 30% in "
        "`json.dump`: `LayerNASOracle` writes 7 files per trial atomically with fsync (4 saves "
        "of the whole oracle state, which includes the LayerNAS state and grows with the "
        "trials, plus 3 trial files). That is the price of its crash-safe resume; against a "
        "trial that trains a model for minutes it is negligible, but it is not free.",
        "- **Where LayerNAS loses: noise.** Under sigma 0.2 its returned architecture can get "
        "worse with more trials (cifar10: "
        f"{_fmt(by[('cifar10', 0.2, 'LayerNAS')]['mean_regret'].get(200))} at 200, "
        f"{_fmt(by[('cifar10', 0.2, 'LayerNAS')]['mean_regret'].get(400))} at 400): a later "
        "neighbour of the optimum with a luckier noisy score takes its place, as in "
        "`nats_sss`. The numbers through KerasTuner equal `nats_sss`'s LayerNAS rows exactly "
        "(same seeds and noise stream; `tests/tuner/test_oracle_comparison.py` checks this), "
        "so the oracle adds no behaviour of its own.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="cifar10, 2 seeds, 100 trials (Bayesian: 1 seed, 40 trials)")
    parser.add_argument("--only", choices=["fast", "bayesian"],
                        help="run only LayerNAS/random/grid, or only the Bayesian rows")
    parser.add_argument("--raw", type=Path, help="save the runs here instead of reporting")
    parser.add_argument("--merge", type=Path, nargs="+",
                        help="report from runs saved with --raw (runs nothing)")
    parser.add_argument("--datasets", nargs="+", choices=list(TARGETS),
                        help="run only these datasets (to split the work over processes)")
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="these seeds instead of 0..9 (0, 1 for the Bayesian rows)")
    parser.add_argument("--noises", type=float, nargs="+", help="noise sigmas (default 0 0.2)")
    parser.add_argument("--searchers", nargs="+", choices=list(SEARCHERS),
                        help="run only these searchers")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    quiet_failed_trials()
    if args.merge:
        results = {}
        for path in args.merge:
            for key, value in load_raw(path).items():
                if key in results:  # the same rows run for more seeds in another process
                    results[key]["logs"] += value["logs"]
                    results[key]["curves"] = np.vstack([results[key]["curves"], value["curves"]])
                else:
                    results[key] = value
        report(results, "python -m benchmarks.oracle_comparison --only fast --datasets D "
               "--raw fast_D.json` (one process per dataset) and `... --only bayesian --raw "
               "bayesian.json` (seeds 0, 1) in parallel, then `... --only bayesian --seeds 2 3 4 "
               "--noises S --searchers B --raw more_B_S.json` (one process per Bayesian row "
               "and noise), then `... --merge *.json")
        return
    datasets = ["cifar10"] if args.quick else args.datasets or list(TARGETS)
    seeds = args.seeds or list(range(2 if args.quick else 10))
    bayesian_seeds = args.seeds or seeds[:1 if args.quick else BAYESIAN_SEEDS]
    chosen = {n: s for n, s in SEARCHERS.items() if n in (args.searchers or SEARCHERS)}
    budget_cap = 100 if args.quick else None
    noises = args.noises or [0.0, 0.2]
    wants_bayesian = args.only != "fast" and any(
        s.oracle == "bayesian" for s in chosen.values())
    if wants_bayesian and importlib.util.find_spec("sklearn") is None:
        # fail now, not after the hour the other rows take
        parser.error("the BayesianOptimization rows need scikit-learn (pip install "
                     "keras-tuner[bayesian]); install it or pass --only fast.")
    results = {}
    if args.only != "bayesian":
        fast = {n: s for n, s in chosen.items() if s.oracle != "bayesian"}
        results.update(run(datasets, seeds, noises, fast, budget_cap))
    if args.only != "fast":
        slow = {n: s for n, s in chosen.items() if s.oracle == "bayesian"}
        slow_datasets = [d for d in datasets if d in BAYESIAN_DATASETS]
        # --quick: 25 GP proposals per Bayesian run instead of ~85
        slow_cap = 40 if args.quick else None
        results.update(run(slow_datasets, bayesian_seeds, noises, slow, slow_cap))
    if args.raw:
        save_raw(results, args.raw)
        return
    command = "python -m benchmarks.oracle_comparison" + (" --quick" if args.quick else "")
    report(results, command)


if __name__ == "__main__":
    main()
