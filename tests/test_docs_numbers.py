"""Numbers quoted in the docs are the ones the benchmarks last measured.

Each claim renders, from a benchmark's JSON in benchmarks/results, the exact text
a doc must contain; rerunning a benchmark without updating the prose fails here,
naming the doc and the text it should say. To add a claim, quote the number in
the doc through the same format string as below.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _results(name: str) -> dict:
    return json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())


def _complete_search_row(speed: dict) -> str:
    run = next(b for b in speed["budgets"] if b["max_trials"] is None)
    return (f"| default `compress` (complete search + completion, end to end) | "
            f"{run['trials']:,} | {run['seconds']:.1f} s | {run['score']:.3f} | "
            f"{run['madds'] / 1e6:.2f} M |")


def _layernas_alone_row(speed: dict) -> str:
    search = speed["complete_search"]
    return (f"| complete LayerNAS search alone | {search['trials']:,} | (within the above) | "
            f"{search['score']:.3f} | {search['madds'] / 1e6:.2f} M |")


def _greedy_row(speed: dict) -> str:
    greedy = speed["greedy_from_base"]
    return (f"| greedy completion from the base model alone | - | {greedy['seconds']:.2f} s | "
            f"{greedy['score']:.3f} | {greedy['madds'] / 1e6:.2f} M |")


def _hundred_trials_row(speed: dict) -> str:
    run = next(b for b in speed["budgets"] if b["max_trials"] == 100)
    return (f"| `compress(max_trials=100)` | 100 | {run['seconds']:.1f} s | {run['score']:.3f} | "
            f"{run['madds'] / 1e6:.2f} M |")


def _demo_range(speed: dict) -> str:
    return f"{min(speed['demo_seconds']):.0f}-{max(speed['demo_seconds']):.0f} s"


def _multi_target_ways_row(multi: dict) -> str:
    one, separate, engine = multi["one_search"], multi["separate_searches"], multi["engine_only"]
    return (f"| trials | {one['trials']:,} | {separate['trials']:,} | {engine['span_trials']:,} |"
            f" | wall time (best of {multi['repeats']}) | {min(one['seconds']):.1f} s | "
            f"{min(separate['seconds']):.1f} s | - |"
            f" | of it, the LayerNAS search alone (timed apart, once) | "
            f"{engine['union_seconds']:.1f} s | {engine['separate_seconds']:.1f} s | - |")


def _multi_target_time_split(multi: dict) -> str:
    engine = multi["engine_only"]
    rest_one = min(multi["one_search"]["seconds"]) - engine["union_seconds"]
    rest_separate = min(multi["separate_searches"]["seconds"]) - engine["separate_seconds"]
    return (f"the rest (the space and score tables, and per budget the greedy completions, the "
            f"rebuild and the per-layer table) took {rest_one:.1f} s in the one search and "
            f"{rest_separate:.1f} s in the three, on a machine loaded by other jobs (load average "
            f"{multi['load_average_1min']:.1f}).")


def _multi_target_tier_rows(multi: dict) -> str:
    rows = []
    for tier, one, alone in zip(multi["tiers"], multi["one_search"]["tiers"],
                                multi["separate_searches"]["tiers"]):
        rows.append(f"| {tier} | {one['madds'] / 1e6:.2f} M, {one['score']:.4f} | "
                    f"{alone['madds'] / 1e6:.2f} M, {alone['score']:.4f} |")
    return " ".join(rows)


def _multi_target_small_cnn(multi: dict) -> str:
    far, adjacent = multi["small_cnn"]
    same = all(row[way]["best"] == row["union"]["best"]
               for row in (far, adjacent) for way in ("span", "separate"))
    scores = "same best score per tier in all three" if same else "best scores: see benchmarks.md"
    return (f"the span search told {far['span']['trials']} trials, the union "
            f"{far['union']['trials']}, and three separate searches {far['separate']['trials']} "
            f"together ({scores}); at 60%, 57% and 54% (adjacent "
            f"ranges, no gaps) they told {adjacent['span']['trials']}, "
            f"{adjacent['union']['trials']} and {adjacent['separate']['trials']}.")


def _what_data_buys_rows(quality: dict) -> str:
    """compress.md's table of what data buys: mean ± std per method, both targets."""
    entry = {(e["method"], e["target"]): e for e in quality["summary"]}
    methods = ("uniform_inherited", "compress_free", "compress_data", "compress_defaults", "compress_free_kd")
    cells = lambda target: [f"{100 * entry[(m, target)]['mean']:.2f} ± {100 * entry[(m, target)]['std']:.2f}"
                            for m in methods]
    return " ".join(f"| {target:.0%} | " + " | ".join(cells(target)) + " |" for target in (0.5, 0.3))


def _rank_trial_and_data_free(quality: dict) -> str:
    rank = {(r["target"], r["score"]): r for r in quality["rank"]}
    trial, free = rank[(0.5, "trial")], rank[(0.5, "retained_equal")]
    return (f"Kendall tau against accuracy was {trial['kendall_tau']:+.2f} (90% interval "
            f"{trial['ci90'][0]:+.2f} to {trial['ci90'][1]:+.2f}) for the trial score and "
            f"{free['kendall_tau']:+.2f} ({free['ci90'][0]:+.2f} to {free['ci90'][1]:+.2f}) for the "
            "data-free retained importance")


def _rank_at_30(quality: dict) -> str:
    rank = {(r["target"], r["score"]): r for r in quality["rank"]}
    trial, free = rank[(0.3, "trial")], rank[(0.3, "retained_equal")]
    return (f"At 30% ({trial['n']} candidates) the trial score still ranks ({trial['kendall_tau']:+.2f}) "
            f"but the data-free score barely does ({free['kendall_tau']:+.2f}, interval "
            f"{free['ci90'][0]:+.2f} to {free['ci90'][1]:+.2f})")


def _steps_rows(quality: dict) -> str:
    """compress.md's table of one search against the cut in steps, with the paired difference."""
    entry = {(e["method"], e["target"]): e for e in quality["summary"]}
    pair = {(c["method"], c["versus"], c["target"]): c for c in quality["comparisons"]}
    steps = {r["target"]: len(r["steps"]) for r in quality["rows"] if r["method"] == "compress_steps"}
    cell = lambda method, target: (f"{100 * entry[(method, target)]['mean']:.2f} ± "
                                   f"{100 * entry[(method, target)]['std']:.2f}")
    rows = []
    for target in (0.5, 0.3):
        versus = pair[("compress_steps", "compress_defaults", target)]
        rows.append(f"| {target:.0%} | {cell('compress_defaults', target)} | {cell('compress_steps', target)} "
                    f"({steps[target]} steps) | {100 * versus['difference']:+.2f} ± "
                    f"{100 * versus['difference_std']:.2f} |")
    return " ".join(rows)


def _defaults_at_70(quality: dict) -> str:
    entry = {(e["method"], e["target"]): e for e in quality["summary"]}
    mean = lambda method: f"{100 * entry[(method, 0.7)]['mean']:.2f}"
    return (f"At 70% the default call scored {mean('compress_defaults')} ± "
            f"{100 * entry[('compress_defaults', 0.7)]['std']:.2f}% (uniform cut {mean('uniform_inherited')}%, "
            f"data-free {mean('compress_free')}%; the base {100 * quality['base']['test_acc']:.2f}%).")


def _synthetic_rows(synthetic: dict) -> str:
    """benchmark-quality.md's table of the synthetic-input scores at 30%."""
    rows = {(r["score"], r["candidates"]): r for r in synthetic["rows"]}
    signed = lambda value: f"{value:+.2f}"
    lines = []
    for score in ("synthetic_0_epochs", "synthetic_1_epoch"):
        own, every = rows[(score, "layernas")], rows[(score, "all")]
        lines.append(f"| `{score}` | {signed(own['kendall_tau'])} ({signed(own['ci90'][0])} to "
                     f"{signed(own['ci90'][1])}), n={own['n']} | {signed(own['kendall_tau_val'])} | "
                     f"{signed(every['kendall_tau'])}, n={every['n']} |")
    return " ".join(lines)


def _calibration_rows(synthetic: dict) -> str:
    """benchmark-quality.md's table of compress_free as returned and with BatchNorm re-estimated."""
    name = lambda target: "the base" if target == 1.0 else f"`compress(base, {target:.0%})`"
    return " ".join(f"| {name(r['target'])} | {100 * r['as_returned']:.2f}% | {100 * r['synthetic_bn']:.2f}% | "
                    f"{100 * r['real_bn']:.2f}% |" for r in synthetic["calibration"])


def _as_returned(synthetic: dict) -> str:
    """compress.md: the data-free models as returned and with BatchNorm re-estimated on real images."""
    rows = {r["target"]: r for r in synthetic["calibration"]}
    pct = lambda key: ", ".join(f"{100 * rows[t][key]:.1f}%" for t in (0.7, 0.5)) + f" and {100 * rows[0.3][key]:.1f}%"
    return (f"returned models at {pct('as_returned')} test accuracy (chance) at 70%, 50% and 30% of the "
            f"MAdds; re-estimating BatchNorm on 20 batches of training images alone brought them to "
            f"{pct('real_bn')}")


def _synthesis_convergence(synthetic: dict) -> str:
    """benchmark-quality.md: a 4x longer synthesis does not make the inputs stand in for real ones."""
    probe = synthetic["convergence"]
    short, long = probe["synthetic"]
    return (f"Four times the steps on one batch of {probe['batch_size']} lowered the BatchNorm loss from "
            f"{short['bn_loss']:.1f} to {long['bn_loss']:.1f}, and the base with BatchNorm re-estimated "
            f"on it still scored {100 * long['acc']:.2f}% ({100 * short['acc']:.2f}% after "
            f"{short['steps']} steps), against {100 * probe['real_batch_acc']:.2f}% on one batch of real "
            "training images.")


def test_the_untrained_warning_quotes_the_measurement():
    from keras_layernas.compression._compress import UNTRAINED_RESULT

    at_70 = next(r for r in _results("synthetic_scores")["calibration"] if r["target"] == 0.7)
    assert (f"{100 * at_70['as_returned']:.0f}% test accuracy at 70% of the MAdds, "
            f"{100 * at_70['real_bn']:.0f}% once BatchNorm was re-estimated") in UNTRAINED_RESULT


def _scratch_rows(quality: dict) -> str:
    """benchmark-quality.md's table of the uniform model trained from scratch against inherited ones."""
    entry = {(e["method"], e["target"]): e for e in quality["summary"]}
    cell = lambda method, target: (f"{100 * entry[(method, target)]['mean']:.2f} ± "
                                   f"{100 * entry[(method, target)]['std']:.2f}")
    minutes = {r["target"]: r["scratch_train_s"] / 60 for r in quality["rows"] if r["method"] == "uniform_scratch"}
    rows = []
    for target in sorted(minutes, reverse=True):
        steps = cell("compress_steps", target) if ("compress_steps", target) in entry else "-"
        kd = cell("compress_free_kd", target) if ("compress_free_kd", target) in entry else "-"
        rows.append(f"| {target:.0%} | {cell('uniform_scratch', target)} ({minutes[target]:.0f} min) | "
                    f"{cell('uniform_inherited', target)} | {cell('compress_defaults', target)} | {steps} | {kd} |")
    return " ".join(rows)


# (doc, benchmark JSON, the text the doc must contain)
CLAIMS: list[tuple[str, str, Callable[[dict], str]]] = [
    ("docs/compress.md", "compress_speed", _complete_search_row),
    ("docs/compress.md", "compress_speed", _layernas_alone_row),
    ("docs/compress.md", "compress_speed", _greedy_row),
    ("docs/compress.md", "compress_speed", _hundred_trials_row),
    ("docs/compress.md", "compress_speed", lambda speed: f"took {_demo_range(speed)}."),
    ("README.md", "compress_speed",
     lambda speed: f"it took {_demo_range(speed)} on 2 shared CPU cores once installed"),
    ("docs/quickstart.md", "compress_speed",
     lambda speed: f"It took {_demo_range(speed)} on 2 shared CPU cores."),
    ("docs/compress.md", "multi_target", _multi_target_ways_row),
    ("docs/compress.md", "multi_target", _multi_target_tier_rows),
    ("docs/compress.md", "multi_target", _multi_target_small_cnn),
    ("docs/compress.md", "multi_target", _multi_target_time_split),
    ("docs/compress.md", "compression_quality", _what_data_buys_rows),
    ("docs/compress.md", "compression_quality", _rank_trial_and_data_free),
    ("docs/compress.md", "compression_quality", _steps_rows),
    ("docs/compress.md", "compression_quality", _rank_at_30),
    ("docs/compress.md", "compression_quality", _defaults_at_70),
    ("docs/compress.md", "synthetic_scores", _as_returned),
    ("docs/benchmark-quality.md", "synthetic_scores", _synthetic_rows),
    ("docs/benchmark-quality.md", "synthetic_scores", _calibration_rows),
    ("docs/benchmark-quality.md", "synthetic_scores", _synthesis_convergence),
    ("docs/benchmark-quality.md", "compression_quality", _scratch_rows),
]


@pytest.mark.parametrize(
    "doc, benchmark, render", CLAIMS, ids=[f"{doc}:{render.__name__}" for doc, _, render in CLAIMS]
)
def test_doc_quotes_the_benchmark_number(doc, benchmark, render):
    expected = render(_results(benchmark))
    text = " ".join((ROOT / doc).read_text().split())  # prose may wrap anywhere
    assert expected in text, (
        f"{doc} does not quote benchmarks/results/{benchmark}.json: it should say "
        f"{expected!r}"
    )
