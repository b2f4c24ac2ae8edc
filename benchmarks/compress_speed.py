"""Data-free compress() on MobileNetV2 1.0 (224x224, random weights) to 150 M MAdds.

Measures, in one run:
* the default data-free search end to end (goal: under 2 minutes on 2 CPU cores), and the
  result's retained importance at smaller ``max_trials`` budgets;
* the complete LayerNAS search's best against the greedy completion from the base model
  (both scored by retained importance);
* why data-free trials bypass KerasTuner: the same trials through LayerNASTuner (state
  written after every trial) against the in-process loop, side by side;
* ``make demo`` once installed (``python -m keras_layernas.demo`` in a fresh process:
  imports, model build, search, summary and every artefact), the time the README quotes.

Run: ``python -m benchmarks.compress_speed`` from the repository root.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import subprocess
import sys
import tempfile
import time

import keras
import keras_tuner

from benchmarks._report import markdown_table, write_json, write_section
from keras_layernas.compression import complete_to_target
from keras_layernas.compression import RetainedImportance
from keras_layernas.compression import CompressionSearch, shrink_only
from keras_layernas.search import LayerNAS
from keras_layernas.surgery import SearchSpace
from keras_layernas.tuner import LayerNASTuner

TARGET = 150e6
BUDGETS = (100, 1000, 5000, None)
TUNER_TRIALS = 300
DEMO_RUNS = 3


class _ScoreOnlyTuner(LayerNASTuner):
    """A tuner whose trial is the data-free score: measures KerasTuner's own overhead."""

    def __init__(self, space, scorer, **kwargs):
        super().__init__(space, **kwargs)
        self.scorer = scorer

    def run_trial(self, trial, *args, **kwargs):
        return {"score": self.scorer(self.oracle.architecture(trial))}


def _seconds(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _demo_seconds() -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "keras_layernas.demo", "--out", out], check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def main() -> None:
    model = keras.applications.MobileNetV2(weights=None, alpha=1.0, input_shape=(224, 224, 3))
    budgets = []
    for max_trials in BUDGETS:
        seconds, result = _seconds(
            lambda: CompressionSearch(model, TARGET, max_trials=max_trials, verbose=0).run()
        )
        budgets.append({
            "max_trials": max_trials, "trials": result.trials, "seconds": seconds,
            "score": result.score, "madds": result.madds, "completed": result.completed,
        })
        print(budgets[-1])

    space = shrink_only(SearchSpace.from_model(model))
    scorer = RetainedImportance(space, model)
    target = (0.95 * TARGET, TARGET)
    search = LayerNAS(space.options, space.cost, target=target)
    while (candidate := search.ask()) is not None:
        search.tell(candidate, scorer(candidate.arch))
    searched_arch, searched_score = search.best()
    greedy_seconds, greedy_arch = _seconds(
        lambda: complete_to_target(space, space.base_arch, scorer.log_term, target)
    )

    in_process_seconds, _ = _seconds(lambda: _run_in_process(space, scorer, target))
    with tempfile.TemporaryDirectory() as directory:
        tuner = _ScoreOnlyTuner(space, scorer, objective=keras_tuner.Objective("score", "max"),
                                target=target, max_trials=TUNER_TRIALS, directory=directory,
                                project_name="bench")
        tuner_seconds, _ = _seconds(lambda: tuner.search(verbose=0))

    payload = {
        "model": "MobileNetV2 alpha=1.0 224x224 weights=None",
        "target": TARGET,
        "budgets": budgets,
        "complete_search": {"trials": search.num_told, "score": searched_score,
                            "madds": space.cost(searched_arch)},
        "greedy_from_base": {"seconds": greedy_seconds, "score": scorer(greedy_arch),
                             "madds": space.cost(greedy_arch)},
        "trial_overhead": {"trials": TUNER_TRIALS, "in_process_s": in_process_seconds,
                           "keras_tuner_s": tuner_seconds},
        "demo_seconds": [_demo_seconds() for _ in range(DEMO_RUNS)],
        "load_average_1min": os.getloadavg()[0],
    }
    write_json("compress_speed", payload)
    rows = [[b["max_trials"] or "None (complete)", b["trials"], f"{b['seconds']:.1f}",
             f"{b['score']:.4f}", f"{b['madds'] / 1e6:.2f}", "yes" if b["completed"] else "no"]
            for b in budgets]
    overhead = payload["trial_overhead"]
    write_section("compress_speed", "\n".join([
        "## Data-free compress(): MobileNetV2 1.0 @224 -> 150 M MAdds",
        "",
        "`python -m benchmarks.compress_speed`; wall time includes building the space, the search,",
        "completion, materialize and the summary table. Score: retained importance (1.0 = base).",
        "",
        markdown_table(["max_trials", "trials", "seconds", "score", "MAdds (M)", "chosen by completion"],
                       rows),
        "",
        f"Complete LayerNAS search alone: {search.num_told} trials, best score "
        f"{searched_score:.4f}; greedy completion from the base model: {scorer(greedy_arch):.4f} "
        f"in {greedy_seconds:.2f} s (compress keeps the better of the two).",
        "",
        f"Trial overhead, {TUNER_TRIALS} data-free trials: in-process loop "
        f"{overhead['in_process_s']:.2f} s, through LayerNASTuner {overhead['keras_tuner_s']:.1f} s "
        f"({overhead['keras_tuner_s'] / max(overhead['in_process_s'], 1e-9):.0f}x), which is why "
        "data-free searches drive LayerNAS in process.",
        "",
        f"`make demo` once installed (`python -m keras_layernas.demo`, fresh process, "
        f"{DEMO_RUNS} runs): {min(payload['demo_seconds']):.0f}-"
        f"{max(payload['demo_seconds']):.0f} s; load average {payload['load_average_1min']:.1f} "
        "at the end of the run.",
    ]))


def _run_in_process(space: SearchSpace, scorer: RetainedImportance, target: tuple) -> None:
    search = LayerNAS(space.options, space.cost, target=target, max_trials=TUNER_TRIALS)
    while (candidate := search.ask()) is not None:
        search.tell(candidate, scorer(candidate.arch))


if __name__ == "__main__":
    main()
