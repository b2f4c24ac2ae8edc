"""`make demo`: the main job end to end, offline, on an embedded default.

Compresses a Keras MobileNetV2 (alpha 1.0, 224x224, 300.8 M MAdds) to 150 M
MAdds with the data-free search, prints the per-layer summary and writes the
slim model (with ``model.preprocess.json``, its input scaling), its TFLite
file, the report and the Pareto plot into ``demo_out/``.

Without internet the model has random weights (``weights=None``); with
internet pass ``--weights imagenet`` to slim the trained ImageNet model, then
fine-tune the result on your data.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Sequence

from keras_layernas.cli import quiet_tensorflow

DEFAULT_TARGET = 150e6


def run(out_dir: str, target_madds: float = DEFAULT_TARGET, weights: str | None = None,
        max_trials: int | None = None) -> dict[str, str]:
    """Compress MobileNetV2 1.0 @224 and write every artefact into ``out_dir``.

    Args:
        out_dir: folder for ``model.keras``, ``model.preprocess.json``,
            ``model.tflite``, ``report.json`` (its trials in
            ``report.history.jsonl.gz``) and ``pareto.png`` (created if missing).
        target_madds: the MAdds budget.
        weights: ``None`` (random, offline) or ``"imagenet"``.
        max_trials: cap on search trials; None runs the complete search.

    Returns:
        ``{artefact: path}`` of the files written.
    """
    import keras

    import keras_layernas as layernas
    from keras_layernas.cli import PREPROCESS_PRESETS

    os.makedirs(out_dir, exist_ok=True)
    started = time.perf_counter()
    keras.utils.set_random_seed(0)  # random weights: the same model, so the same result, every run
    model = keras.applications.MobileNetV2(weights=weights, alpha=1.0, input_shape=(224, 224, 3))
    result = layernas.CompressionSearch(model, target_madds, max_trials=max_trials, verbose=1).run()
    paths = {
        "model": os.path.join(out_dir, "model.keras"),
        "report": os.path.join(out_dir, "report.json"),
        "plot": os.path.join(out_dir, "pareto.png"),
        "tflite": os.path.join(out_dir, "model.tflite"),
    }
    result.model.save(paths["model"])
    # MobileNetV2 takes [-1, 1]: recorded so `layernas export --int8 --data` scales alike
    paths["preprocess"] = str(PREPROCESS_PRESETS["mobilenet"].write_record(Path(paths["model"])))
    result.save_report(paths["report"])
    result.plot_pareto(paths["plot"])
    layernas.export_tflite(result.model, paths["tflite"])
    print(f"\nWrote {', '.join(paths.values())} in {time.perf_counter() - started:.0f} s.")
    if weights is None:
        print("The base model had random weights (offline demo): fine-tune the slim model on "
              "real data before use (docs/compress.md).")
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    parser.add_argument("--target-madds", type=float, default=DEFAULT_TARGET)
    parser.add_argument("--weights", choices=["imagenet"], default=None,
                        help="slim the ImageNet-trained model (needs internet)")
    args = parser.parse_args(argv)
    quiet_tensorflow()
    run(args.out, args.target_madds, args.weights)


if __name__ == "__main__":
    main()
