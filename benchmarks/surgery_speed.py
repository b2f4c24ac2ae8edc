"""Speed of the surgery layer on MobileNetV2 1.0 (224x224, random weights).

Measures, side by side in one run:
* ``space.cost(arch)`` per call (goal: <= 50 us), over many random archs;
* ``space.materialize(arch)`` against a plain ``keras.applications.MobileNetV2``
  build (goal: <= 2x), alternating the two so machine load hits both alike.

Run: ``python -m benchmarks.surgery_speed`` from the repository root.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import random
import statistics
import time

import keras

from benchmarks._report import markdown_table, write_json, write_section
from keras_layernas.surgery import SearchSpace

REPEATS = 5
COST_ARCHS = 2000


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    build = lambda: keras.applications.MobileNetV2(weights=None, alpha=1.0)
    model = build()
    start = time.perf_counter()
    space = SearchSpace.from_model(model)
    space_seconds = time.perf_counter() - start

    rng = random.Random(0)
    archs = [tuple(rng.choice(l.options) for l in space.layers) for _ in range(COST_ARCHS)]
    space.cost(archs[0])
    start = time.perf_counter()
    for arch in archs:
        space.cost(arch)
    cost_us = (time.perf_counter() - start) / len(archs) * 1e6

    plain, base, random_arch = [], [], []
    for i in range(REPEATS):
        keras.backend.clear_session()
        plain.append(_seconds(build))
        base.append(_seconds(lambda: space.materialize(space.base_arch)))
        random_arch.append(_seconds(lambda: space.materialize(archs[i])))
    plain_s, base_s, random_s = (statistics.median(v) for v in (plain, base, random_arch))

    payload = {
        "model": "MobileNetV2 alpha=1.0, 224x224, weights=None",
        "searchable_layers": len(space.layers),
        "architectures": space.num_architectures,
        "base_madds": space.cost(space.base_arch),
        "space_from_model_s": space_seconds,
        "cost_us_per_call": cost_us,
        "cost_calls": len(archs),
        "plain_build_s": plain,
        "materialize_base_s": base,
        "materialize_random_s": random_arch,
        "materialize_over_plain_base": base_s / plain_s,
        "materialize_over_plain_random": random_s / plain_s,
    }
    write_json("surgery_speed", payload)
    rows = [
        ["`space.cost(arch)`", f"{cost_us:.1f} us / call ({len(archs)} random archs)", "<= 50 us"],
        ["plain `MobileNetV2()` build", f"{plain_s:.2f} s (median of {REPEATS})", ""],
        ["`materialize(base_arch)`", f"{base_s:.2f} s = {base_s / plain_s:.2f}x plain", "<= 2x"],
        ["`materialize(random arch)`", f"{random_s:.2f} s = {random_s / plain_s:.2f}x plain",
         "<= 2x"],
        ["`SearchSpace.from_model`", f"{space_seconds:.2f} s (once per search)", ""],
        ["`space.cost(base_arch)`", f"{payload['base_madds']:,} MAdds", "MobileNetV2's 300M"],
    ]
    write_section(
        "surgery_speed",
        "## surgery_speed\n\n"
        f"MobileNetV2 1.0 at 224x224 ({len(space.layers)} searchable layers, "
        f"{space.num_architectures:.2g} architectures); `python -m benchmarks.surgery_speed`. "
        "Builds alternate plain / materialize so machine load hits both alike.\n\n"
        + markdown_table(["what", "measured", "goal"], rows),
    )
    print(markdown_table(["what", "measured", "goal"], rows))


if __name__ == "__main__":
    main()
