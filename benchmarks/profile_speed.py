"""How much faster count_madds is than TF's graph profiler, on the same models.

Both start from the same built Keras model and return the same number (checked
here): ours walks the Keras call graph; TF's needs a traced, frozen graph
(``tf_profiler_madds``: trace + freeze + profile, what a user would run). Times
are medians of repeated calls in one process, side by side.

    python benchmarks/profile_speed.py [--repeats-tf 3] [--repeats-ours 200]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402

from benchmarks._report import markdown_table, write_json, write_section  # noqa: E402
from keras_layernas.profiling import count_madds, tf_profiler_madds  # noqa: E402

GOAL = 500


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cases() -> list[tuple[str, Callable[[], keras.Model], Optional[tuple]]]:
    """(label, model builder, input_shape passed to both counters)."""
    apps = keras.applications
    return [
        ("MobileNetV2 1.0 @224", lambda: apps.MobileNetV2(weights=None, input_shape=(224, 224, 3)), None),
        ("MobileNetV2 0.35 @224", lambda: apps.MobileNetV2(weights=None, alpha=0.35, input_shape=(224, 224, 3)), None),
        ("MobileNetV3Large 1.0 @224", lambda: apps.MobileNetV3Large(weights=None, input_shape=(224, 224, 3)), None),
        ("MobileNetV3Small 1.0 @224", lambda: apps.MobileNetV3Small(weights=None, input_shape=(224, 224, 3)), None),
        # Built with an unknown size: our side must re-trace every layer's shape.
        ("MobileNetV3Large 1.0 (None,None) -> 224, re-traced", lambda: apps.MobileNetV3Large(weights=None), (224, 224, 3)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats-tf", type=int, default=3)
    parser.add_argument("--repeats-ours", type=int, default=200)
    args = parser.parse_args()

    results = []
    for label, build, input_shape in _cases():
        model = build()
        # First calls pay one-off costs (rule lookup caches, TF op registration).
        first_start = time.perf_counter()
        ours = count_madds(model, input_shape)
        ours_first_s = time.perf_counter() - first_start
        tf_madds = tf_profiler_madds(model, input_shape)
        if ours != tf_madds:
            raise SystemExit(f"{label}: count_madds={ours} but TF profiler={tf_madds}")
        ours_s = _median_seconds(lambda: count_madds(model, input_shape), args.repeats_ours)
        tf_s = _median_seconds(lambda: tf_profiler_madds(model, input_shape), args.repeats_tf)
        results.append(
            {
                "model": label,
                "madds": ours,
                "tf_profiler_madds": tf_madds,
                "ours_median_s": ours_s,
                "ours_first_call_s": ours_first_s,
                "tf_profiler_median_s": tf_s,
                "speedup": tf_s / ours_s,
            }
        )
        print(f"{label}: {ours / 1e6:.2f} M MAdds, ours {ours_s * 1e3:.2f} ms, "
              f"TF {tf_s:.2f} s, {tf_s / ours_s:.0f}x", flush=True)

    load = os.getloadavg()[0]
    write_json(
        "profile_speed",
        {
            "goal_speedup": GOAL,
            "load_average_1min": load,
            "repeats_tf": args.repeats_tf,
            "repeats_ours": args.repeats_ours,
            "results": results,
        },
    )
    rows = [
        [r["model"], f"{r['madds'] / 1e6:.2f}", "yes" if r["madds"] == r["tf_profiler_madds"] else "no",
         f"{r['ours_median_s'] * 1e3:.2f}", f"{r['ours_first_call_s'] * 1e3:.1f}",
         f"{r['tf_profiler_median_s']:.2f}", f"{r['speedup']:.0f}x"]
        for r in results
    ]
    fixed = [r for r in results if "re-traced" not in r["model"]]
    retraced = [r for r in results if "re-traced" in r["model"]]
    worst_fixed = min(r["speedup"] for r in fixed)
    verdict = (
        f"Slowest model built at a fixed size: {worst_fixed:.0f}x (goal >= {GOAL}x: "
        + ("met" if worst_fixed >= GOAL else "NOT met")
        + ")."
    )
    for r in retraced:
        verdict += (
            f" Built with an unknown input size and evaluated at `input_shape=(224, 224, 3)`, "
            f"every layer's shape is re-derived first: {r['speedup']:.0f}x"
            + ("" if r["speedup"] >= GOAL else f", below the {GOAL}x goal")
            + "."
        )
    write_section(
        "profile_speed",
        "## profile_speed: `count_madds` vs TF's graph profiler\n\n"
        "`python benchmarks/profile_speed.py` (raw: `benchmarks/results/profile_speed.json`). "
        "Same built model on both sides; TF's side is `tf_profiler_madds` = trace at batch 1 + "
        "freeze variables + `tf.compat.v1.profiler` over Conv2D/DepthwiseConv2dNative/MatMul "
        f"(FLOPs / 2). Medians of {args.repeats_ours} (ours) and {args.repeats_tf} (TF) calls "
        f"in one process, on a {os.cpu_count()}-core machine shared with other jobs (1-min load "
        f"average {load:.1f} at the end): times and ratios varied 2-3x between runs.\n\n"
        + markdown_table(
            ["model", "MAdds (M)", "equal to TF", "ours (ms)", "ours, first call (ms)",
             "TF profiler (s)", "speed-up"],
            rows,
        )
        + "\n\n"
        + verdict,
    )


if __name__ == "__main__":
    main()
