"""How well does a calibrated per-layer latency model predict TFLite latency?

On MobileNetV2 (random weights, the data-free search space of compress()), in one run:

* calibrates :class:`keras_layernas.LatencyModel` on N architectures (wall time measured);
* measures a held-out set of seeded random architectures for real and compares: Spearman
  rank correlation and median absolute % error of the latency model, side by side with
  plain MAdds (rank) and a one-feature fit ``latency = a * MAdds + b`` (error);
* times ``predict()`` per call;
* runs one data-free ``CompressionSearch(target_latency_ms=..., cost="latency")`` with a
  fresh calibration: predicted vs measured latency of the result, end-to-end seconds.

Every latency is the lowest of 5 medians of 20 single-thread (num_threads=1) float32
LiteRT inferences of one exported file; the machine is shared and loaded, hence one
thread, medians and the least disturbed block.

Run: ``python -m benchmarks.latency_model`` from the repository root (``--quick``: MobileNetV2
0.35 at 96x96, fewer architectures).
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import random
import tempfile
import time

import keras
import numpy as np

from benchmarks._report import RESULTS, atomic_path, markdown_table, write_json, write_section
from keras_layernas.compression import CompressionSearch, shrink_only
from keras_layernas.latency import LatencyModel, fit_nonnegative
from keras_layernas.surgery import SearchSpace

NAME = "latency_model"
HELD_OUT_SEED = 1000
PREDICT_CALLS = 2000


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman rank correlation (latencies are continuous: no ties to average)."""
    rank_a = np.argsort(np.argsort(a))
    rank_b = np.argsort(np.argsort(b))
    return float(np.corrcoef(rank_a, rank_b)[0, 1])


def median_abs_error(predicted: list[float], measured: list[float]) -> float:
    return float(np.median(np.abs(np.array(predicted) / np.array(measured) - 1.0)))


def held_out_archs(space: SearchSpace, count: int, exclude: set) -> list[tuple]:
    rng = random.Random(HELD_OUT_SEED)
    archs: list[tuple] = []
    while len(archs) < count:
        arch = tuple(rng.choice(layer.options) for layer in space.layers)
        if arch not in exclude and arch not in archs:
            archs.append(arch)
    return archs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="MobileNetV2 0.35 at 96x96, 6 calibration and 8 held-out archs")
    args = parser.parse_args()
    alpha, size, num_calibration, num_held_out, runs = (
        (0.35, 96, 6, 8, 20) if args.quick else (1.0, 224, 12, 10, 20)
    )
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, alpha=alpha, input_shape=(size, size, 3))
    space = shrink_only(SearchSpace.from_model(model))

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        latency_model = LatencyModel.calibrate(space, num_archs=num_calibration, runs=runs,
                                               cache=os.path.join(folder, "cache.json"), verbose=1)
        calibration_seconds = time.perf_counter() - started
    calibration = [(space.decode(dict(zip(space.names, m["arch"]))), m["latency_ms"])
                   for m in latency_model.measurements]

    held_out = []
    for number, arch in enumerate(held_out_archs(space, num_held_out, {a for a, _ in calibration})):
        measured = latency_model.measure(space.materialize(arch))
        held_out.append((arch, measured))
        print(f"held-out {number + 1}/{num_held_out}: {measured:.3f} ms")

    arch = held_out[0][0]
    started = time.perf_counter()
    for _ in range(PREDICT_CALLS):
        latency_model.predict(arch)
    predict_us = (time.perf_counter() - started) / PREDICT_CALLS * 1e6

    measured = [ms for _, ms in held_out]
    predicted = [latency_model.predict(a) for a, _ in held_out]
    madds = [space.cost(a) for a, _ in held_out]
    # Baseline: latency proportional to MAdds, fitted on the same calibration archs.
    calibration_madds = np.array([[1.0, space.cost(a)] for a, _ in calibration])
    calibration_ms = np.array([ms for _, ms in calibration])
    intercept, slope = fit_nonnegative(calibration_madds / calibration_ms[:, None],
                                       np.ones(len(calibration_ms)))
    madds_fit = [intercept + slope * m for m in madds]

    # 60% of the predicted base: the target the search itself compares against
    target_ms = round(0.6 * latency_model.predict(space.base_arch), 3)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = CompressionSearch(model, target_latency_ms=target_ms, directory=folder,
                                   calibration_archs=num_calibration, latency_runs=runs,
                                   verbose=0).run()
        compress_seconds = time.perf_counter() - started

    payload = {
        "model": f"MobileNetV2 alpha={alpha} {size}x{size} weights=None, data-free space",
        "settings": {**latency_model.settings, "statistic": "lowest median of the repeats",
                     "calibration_archs": num_calibration, "held_out_archs": num_held_out},
        "fit": latency_model.to_dict(),
        "calibration_wall_seconds": calibration_seconds,
        "calibration": [{"madds": space.cost(a), "measured_ms": ms,
                         "predicted_ms": latency_model.predict(a)} for a, ms in calibration],
        "held_out": [{"madds": m, "measured_ms": ms, "predicted_ms": p, "madds_fit_ms": f}
                     for m, ms, p, f in zip(madds, measured, predicted, madds_fit)],
        "held_out_spearman": {"latency_model": spearman(predicted, measured),
                              "madds": spearman(madds, measured)},
        "held_out_median_abs_error": {"latency_model": median_abs_error(predicted, measured),
                                      "madds_fit": median_abs_error(madds_fit, measured)},
        "predict_us": predict_us,
        "compress": {
            "target_ms": target_ms, "target_range_ms": list(result.target),
            "predicted_ms": result.latency["predicted_ms"],
            "measured_ms": result.latency["measured_ms"],
            "base_measured_ms": result.latency["base_measured_ms"],
            "madds": result.madds, "base_madds": result.base_madds,
            "score": result.score, "seconds": compress_seconds,
            "calibration_seconds": result.latency["calibration_seconds"],
        },
    }
    write_json(NAME, payload)
    _plot(calibration, held_out, latency_model, result)
    write_section(NAME, _markdown(payload, args.quick))


def _plot(calibration: list, held_out: list, latency_model: LatencyModel, result) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for points, label, marker in ((calibration, "calibration", "o"), (held_out, "held out", "s")):
        ax.scatter([ms for _, ms in points], [latency_model.predict(a) for a, _ in points],
                   marker=marker, label=label)
    ax.scatter([result.latency["measured_ms"]], [result.latency["predicted_ms"]], marker="*",
               s=160, c="tab:red", label="compress() result")
    values = [ms for _, ms in calibration + held_out]
    line = [min(values) * 0.9, max(values) * 1.1]
    ax.plot(line, line, c="0.5", lw=1, label="predicted = measured")
    ax.set_xlabel("measured latency (ms, median, 1 thread)")
    ax.set_ylabel("predicted latency (ms)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(RESULTS / f"{NAME}.png", suffix=".png") as temporary:
        fig.savefig(temporary, dpi=110)
    plt.close(fig)


def _markdown(payload: dict, quick: bool) -> str:
    fit, compress = payload["fit"], payload["compress"]
    rank, error = payload["held_out_spearman"], payload["held_out_median_abs_error"]
    settings = payload["settings"]
    rows = [
        ["latency model (4 features, NNLS)", f"{rank['latency_model']:.3f}",
         f"{error['latency_model']:.1%}"],
        ["MAdds alone (rank) / a * MAdds + b (error)", f"{rank['madds']:.3f}",
         f"{error['madds_fit']:.1%}"],
    ]
    held = payload["held_out"]
    return "\n".join([
        "## Latency as the cost: a calibrated per-layer TFLite latency model"
        + (" (--quick)" if quick else ""),
        "",
        f"`python -m benchmarks.latency_model`; {payload['model']}. Every latency is the lowest "
        f"of {settings['repeats']} medians of {settings['runs']} float32 LiteRT inferences with "
        "num_threads=1 (the machine is shared and loaded by other jobs: one thread, medians and "
        "the least disturbed block keep timings comparable).",
        "",
        f"Calibration: {settings['calibration_archs']} architectures measured in "
        f"{payload['calibration_wall_seconds']:.0f} s wall "
        f"({payload['calibration_wall_seconds'] / settings['calibration_archs']:.1f} s each: "
        f"materialize + TFLite export + timing); median error on them "
        f"{fit['calibration_median_abs_error']:.1%}. `predict()`: "
        f"{payload['predict_us']:.1f} µs per call (no model is built).",
        "",
        f"Held-out: {settings['held_out_archs']} seeded random architectures "
        f"({min(h['measured_ms'] for h in held):.2f}-{max(h['measured_ms'] for h in held):.2f} ms "
        "measured):",
        "",
        markdown_table(["predictor", "Spearman vs measured", "median abs. error"], rows),
        "",
        f"compress(target_latency_ms={compress['target_ms']}, data-free, fresh calibration): "
        f"predicted {compress['predicted_ms']:.2f} ms (target range "
        f"{compress['target_range_ms'][0]:.2f}-{compress['target_range_ms'][1]:.2f}), measured "
        f"{compress['measured_ms']:.2f} ms ({compress['measured_ms'] / compress['predicted_ms'] - 1:+.1%}); "
        f"base measured {compress['base_measured_ms']:.2f} ms; MAdds "
        f"{compress['base_madds'] / 1e6:.1f} M -> {compress['madds'] / 1e6:.1f} M; "
        f"{compress['seconds']:.0f} s end to end, of which calibration "
        f"{compress['calibration_seconds']:.0f} s.",
        "",
        f"Raw: `benchmarks/results/{NAME}.json`; plot of predicted against measured latency: "
        f"`benchmarks/results/{NAME}.png`.",
    ])


if __name__ == "__main__":
    main()
