"""The ``layernas`` command line.

Each subcommand is one function decorated with :func:`command`, which receives
its argparse sub-parser to declare options and returns the handler that runs
it (docs/cli.md has the reference).

    layernas profile mobilenet_v2 --alpha 1.0 --input-size 224
    layernas space mobilenet_v2
    layernas compress mobilenet_v2 --target-madds 150e6 --out slim
    layernas export slim/model.keras --float16

The input scaling a model was trained with travels with it: ``compress`` and
``export`` write it beside what they save (``model.preprocess.json``), and
``export`` reads it back, so int8 calibration images are scaled like the
training images were.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from keras_layernas import __version__

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: list[Callable[[argparse.ArgumentParser], Handler]] = []


def command(define: Callable[[argparse.ArgumentParser], Handler]):
    """Register a subcommand; its name is the function name, its help the docstring."""
    _COMMANDS.append(define)
    return define


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="layernas",
        description="Shrink a Keras vision model to a MAdds budget with LayerNAS.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for define in _COMMANDS:
        doc = inspect.getdoc(define) or ""
        sub = subparsers.add_parser(
            define.__name__,
            help=doc.splitlines()[0] if doc else None,
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=define(sub))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``layernas`` console script.

    Returns:
        The process exit status.
    """
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    try:
        return args.handler(args)
    except ValueError as error:
        print(f"layernas {args.command}: error: {error}", file=sys.stderr)
        return 2


def quiet_tensorflow() -> None:
    """Imports TensorFlow without its C++ log lines, unless the user asked for them.

    TF_CPP_MIN_LOG_LEVEL (3 unless the user set it) hides later messages, e.g.
    the CUDA error on a machine without GPU; but the info lines TensorFlow
    prints while loading, before its logging is set up, ignore it, so stderr
    is closed at the file-descriptor level for that import alone. A user who
    sets TF_CPP_MIN_LOG_LEVEL=0 sees every line.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0" or "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            with contextlib.suppress(ImportError):  # reported by the first real use
                import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@command
def profile(parser: argparse.ArgumentParser) -> Handler:
    """Print the per-layer MAdds/params table and totals of a model.

    MODEL is a keras.applications name (mobilenet_v2, mobilenet_v3_small,
    mobilenet_v3_large, resnet50, efficientnet_b0, ...; built with random
    weights) or the path of a saved .keras/.h5 model.

    examples:
      layernas profile mobilenet_v2 --alpha 1.0 --input-size 224
      layernas profile mobilenet_v3_large --alpha 0.75
      layernas profile path/to/model.keras --input-size 160
    """
    _add_model_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print rows and totals as JSON")

    def run(args: argparse.Namespace) -> int:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from keras_layernas.profiling import profile as profile_model

        model, input_shape = _load_model(args)
        report = profile_model(model, input_shape)
        if args.json:
            payload = {
                "model": model.name,
                "madds": report.madds,
                "params": report.params,
                "layers": report.to_list(),
            }
            print(json.dumps(payload, indent=2))
        else:
            print(f"Model: {model.name}")
            print(report)
        return 0

    return run


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL and the options that build a keras.applications model by name."""
    parser.add_argument("model", metavar="MODEL", help="keras.applications name or model file")
    parser.add_argument(
        "--input-size",
        type=_positive_int,
        default=None,
        help="square input resolution (default: 224 for names, the model's own for files)",
    )
    parser.add_argument("--alpha", type=_positive_float, default=None,
                        help="width multiplier (MobileNets)")
    parser.add_argument(
        "--classes", type=_positive_int, default=None, help="classifier outputs (default: 1000)"
    )
    parser.add_argument(
        "--minimalistic", action="store_true", help="MobileNetV3 minimalistic variant"
    )


@command
def compress(parser: argparse.ArgumentParser) -> Handler:
    """Shrink a model to a MAdds or latency budget; write the slim model, TFLite, report, plot.

    Without --data the search is data-free (retained weight importance: fast,
    but no accuracy measurement; fine-tune the result on real data). With
    --data every candidate is fine-tuned and scored on validation accuracy.
    Writes OUT/model.keras, OUT/model.tflite (and OUT/model_int8.tflite with
    --int8), OUT/report.json (every trial in OUT/report.history.jsonl.gz), OUT/pareto.png and OUT/model.preprocess.json (the
    input scaling, which `layernas export` reads back); the search state lives
    in OUT/search, so running the same command again resumes. Several budgets,
    comma-separated (--target-madds 300e6,200e6,100e6 or 60%,30%), share one
    search and write those files per budget into OUT/target_300M,
    OUT/target_60pct, ... --target-latency-ms
    searches on a latency model fitted to --calibration-archs measured
    architectures (single-thread float32 TFLite, this machine) instead of MAdds;
    its measurements are cached in OUT/search too.

    examples:
      layernas compress mobilenet_v2 --target-madds 150e6
      layernas compress mobilenet_v2 --target-madds 50%
      layernas compress mobilenet_v2 --target-madds 200e6,150e6,100e6 --out tiers
      layernas compress mobilenet_v2 --target-latency-ms 15
      layernas compress model.keras --target-madds 60e6 --data npz:cifar.npz \\
          --preprocess mobilenet --max-trials 20
      layernas compress mobilenet_v2 --alpha 0.35 --input-size 96 --classes 10 \\
          --target-madds 6e6 --data tfds:cifar10 --int8 --out slim_cifar
    """
    _add_model_arguments(parser)
    _add_preprocess_argument(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-madds", type=_madds_budgets, default=None,
                        help="MAdds budget, e.g. 150e6, or a percentage of the model's own "
                             "MAdds, e.g. 50%%; several, comma-separated (300e6,200e6 or "
                             "60%%,30%%), share one search and get a folder each")
    target.add_argument("--target-latency-ms", type=_latency_budget, default=None,
                        help="budget of median single-thread float32 TFLite latency (ms) on "
                             "this machine, e.g. 15")
    parser.add_argument("--calibration-archs", type=_positive_int, default=12,
                        help="architectures measured to fit the latency model "
                             "(with --target-latency-ms; default: 12)")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="result within [(1 - tolerance) x target, target] (default: 0.05)")
    parser.add_argument("--data", default=None,
                        help="tfds:NAME or npz:PATH of raw 0-255 images (default: data-free)")
    parser.add_argument("--max-trials", type=_positive_int, default=None,
                        help="cap on evaluated candidates (default: complete search without "
                             "data, 12 with data, one pass with data and several budgets)")
    parser.add_argument("--epochs-per-trial", type=_non_negative_int, default=1,
                        help="fine-tuning epochs per candidate (with --data)")
    parser.add_argument("--finetune-epochs", type=_non_negative_int, default=None,
                        help="fine-tuning epochs of the winner, which starts from its trial's "
                             "weights (with --data; default: 12, as compress())")
    parser.add_argument("--steps", type=_steps, default=1,
                        help="with --data and one MAdds budget: reach it in N compressions, each of "
                             "the previous trained winner, or 'auto' (each keeps >= 70%% of the "
                             "previous cost); trials and epochs are split over them (default: 1)")
    parser.add_argument("--exclude", type=_layer_names, default=(),
                        help="comma-separated layer names whose width and kernel never change, "
                             "e.g. Conv1,Conv_1 (see `layernas space` for the names)")
    parser.add_argument("--int8", action="store_true",
                        help="also write OUT/model_int8.tflite (calibrated on --data)")
    parser.add_argument("--out", default="layernas_out", help="output folder (default: layernas_out)")
    parser.add_argument("--overwrite", action="store_true", help="start the search over")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")

    def run(args: argparse.Namespace) -> int:
        import keras_layernas as layernas

        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise ValueError(
                f"--out must be a folder, and '{out}' is a file. Received: --out {args.out}; "
                "pass a new or existing folder name."
            )
        _check_data(args.data)
        model, input_shape = _load_model(args)
        preprocess = _preprocess(args)
        if args.data is not None:
            _require_preprocess(args, preprocess, "training on --data")
        out.mkdir(parents=True, exist_ok=True)
        settings = dict(
            target_latency_ms=args.target_latency_ms, data=args.data, tolerance=args.tolerance,
            max_trials=args.max_trials, epochs_per_trial=args.epochs_per_trial,
            finetune_epochs=args.finetune_epochs, directory=str(out / "search"),
            overwrite=args.overwrite, input_shape=input_shape, verbose=0 if args.quiet else 1,
            preprocess=preprocess.as_callable() if preprocess else None, exclude=args.exclude,
        )
        try:
            if args.steps != 1:
                result = layernas.compression.compress_in_steps(
                    model, args.target_madds, steps=args.steps, **settings)[-1]
            else:
                result = layernas.CompressionSearch(
                    model, args.target_madds, calibration_archs=args.calibration_archs, **settings).run()
        except RuntimeError as error:
            if "tolerance" not in str(error):
                raise
            raise ValueError(f"{error} Received: --tolerance {args.tolerance}") from error
        if not isinstance(result, list):
            _write_compressed(args, result, preprocess, out)
            return 0
        for budget, one in zip(args.target_madds, result):
            folder = out / _target_folder(budget)
            folder.mkdir(exist_ok=True)
            _write_compressed(args, one, preprocess, folder)
        return 0

    return run


def _target_folder(budget: float | str) -> str:
    """The folder of one budget of several: ``target_300M`` for 300e6, ``target_60pct`` for 60%."""
    if isinstance(budget, str):
        return f"target_{float(budget.strip()[:-1]):.10g}pct"
    return f"target_{budget / 1e6:.10g}M"


def _write_compressed(args: argparse.Namespace, result, preprocess, out: Path) -> None:
    """Write one result's model, TFLite file(s), report and plot into ``out``."""
    import keras_layernas as layernas

    result.model.save(out / "model.keras")
    if preprocess is not None:
        preprocess.write_record(out / "model.keras")
    result.save_report(str(out / "report.json"))
    result.plot_pareto(str(out / "pareto.png"))
    layernas.export_tflite(result.model, out / "model.tflite")
    if args.int8:
        _export_int8(args, result.model, preprocess, out / "model_int8.tflite")
    print(f"Wrote {', '.join(sorted(p.name for p in out.iterdir() if p.is_file()))} in {out}")


def _layer_names(text: str) -> tuple[str, ...]:
    """``--exclude a,b`` as layer names (spaces around commas allowed)."""
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer names such as Conv1,Conv_1, got {text!r}")
    return names


@command
def space(parser: argparse.ArgumentParser) -> Handler:
    """Print the search space of a model: searchable layers, options, sizes.

    Lists every searchable layer (kind, base option, option count, options),
    the number of architectures (product of |S|), LayerNAS's bound on trials
    (H x k x sum |S|) and the base and smallest reachable MAdds. `compress
    --data` searches this space; the data-free search drops depthwise kernels
    larger than each layer's base (zero-padded: same function, higher cost).

    examples:
      layernas space mobilenet_v2
      layernas space mobilenet_v3_large --alpha 0.75 --json
    """
    _add_model_arguments(parser)
    parser.add_argument("--num-buckets", type=_positive_int, default=100, help="LayerNAS's H")
    parser.add_argument("--per-bucket", type=_positive_int, default=3, help="LayerNAS's k")
    parser.add_argument("--json", action="store_true", help="print the space as JSON")

    def run(args: argparse.Namespace) -> int:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from keras_layernas.search import cheapest_arch
        from keras_layernas.surgery import SearchSpace

        model, input_shape = _load_model(args)
        search_space = SearchSpace.from_model(model, input_shape=input_shape)
        summary = {
            "model": model.name,
            "layers": [{"name": l.name, "kind": l.kind, "options": [str(o) for o in l.options]}
                       for l in search_space.layers],
            "architectures": search_space.num_architectures,
            "max_trials": search_space.max_trials(args.num_buckets, args.per_bucket),
            "base_madds": search_space.cost(search_space.base_arch),
            "min_madds": search_space.cost(cheapest_arch(search_space.options, search_space.cost)),
        }
        if args.json:
            print(json.dumps(summary, indent=2))
            return 0
        name_width = max(len(l["name"]) for l in summary["layers"])
        print(f"Model: {model.name}")
        for layer in summary["layers"]:
            options = ", ".join(layer["options"])
            print(f"  {layer['name']:<{name_width}}  {layer['kind']:<13}  "
                  f"{len(layer['options']):>3}  {options}")
        print(f"{len(summary['layers'])} searchable layers, "
              f"{sum(len(l['options']) for l in summary['layers'])} options, "
              f"{summary['architectures']:.3g} architectures")
        print(f"LayerNAS bound (H={args.num_buckets}, k={args.per_bucket}): "
              f"{summary['max_trials']:,} trials")
        print(f"MAdds: base {summary['base_madds'] / 1e6:.2f} M, smallest reachable "
              f"{summary['min_madds'] / 1e6:.2f} M")
        return 0

    return run


@command
def export(parser: argparse.ArgumentParser) -> Handler:
    """Convert a model to a .tflite file (float32, float16 or int8).

    int8 quantization calibrates activation ranges on --data (its first 300
    training images, scaled as the model expects) and then prints how closely
    the int8 file follows the Keras model on up to 1000 held-out images;
    without --data it calibrates on random inputs, which only suits a smoke
    test. The input scaling comes from MODEL's preprocess.json record (written
    by `layernas compress`) or --preprocess, and is recorded beside the output.

    examples:
      layernas export slim/model.keras --out slim.tflite
      layernas export slim/model.keras --int8 --data tfds:cifar10 --out slim_int8.tflite
      layernas export trained.keras --int8 --data npz:calib.npz --preprocess mobilenet
    """
    _add_model_arguments(parser)
    _add_preprocess_argument(parser)
    parser.add_argument("--out", default=None, help="output file (default: MODEL name + .tflite)")
    quantize = parser.add_mutually_exclusive_group()
    quantize.add_argument("--int8", action="store_true", help="full-integer quantization")
    quantize.add_argument("--float16", action="store_true", help="float16 weights")
    parser.add_argument("--data", default=None,
                        help="tfds:NAME or npz:PATH of raw 0-255 images to calibrate --int8")

    def run(args: argparse.Namespace) -> int:
        import keras_layernas as layernas

        if args.data is not None and not args.int8:
            raise ValueError(
                "--data calibrates --int8 only. Received: --data "
                f"{args.data} without --int8; add --int8 or drop --data."
            )
        _check_data(args.data)
        model, _ = _load_model(args)
        preprocess = _preprocess(args)
        mode = "int8" if args.int8 else "float16" if args.float16 else None
        path = Path(args.out or f"{Path(args.model).stem}{'_' + mode if mode else ''}.tflite")
        if mode == "int8":
            written = _export_int8(args, model, preprocess, path)
        else:
            written = layernas.export_tflite(model, path, quantize=mode)
            print(f"Wrote {written} ({written.stat().st_size / 1e6:.2f} MB)")
        if preprocess is not None:
            record = preprocess.write_record(written)
            print(f"Inputs: {preprocess.describe()} (recorded in {record})")
        return 0

    return run


# Images for int8 calibration: a few hundred is what the TFLite converter needs.
_CALIBRATION_SAMPLES = 300
# Held-out images on which an int8 file is compared with its Keras model.
_CHECK_SAMPLES = 1000


@dataclasses.dataclass(frozen=True)
class Preprocess:
    """How raw 0-255 pixels become a model's inputs: ``pixels * scale + offset``."""

    name: str
    scale: float
    offset: float

    @property
    def input_range(self) -> tuple[float, float]:
        return (self.offset, 255 * self.scale + self.offset)

    def as_callable(self) -> Callable:
        """A plain function for tf.data (autograph mis-converts a callable instance)."""
        scale, offset = self.scale, self.offset
        return lambda images: images * scale + offset

    def describe(self) -> str:
        low, high = self.input_range
        return f"RGB pixels 0-255 scaled to [{low:g}, {high:g}] (--preprocess {self.name})"

    def write_record(self, model_path: Path) -> Path:
        """Writes ``<model>.preprocess.json`` beside ``model_path``, atomically."""
        record = _record_path(model_path)
        payload = {"preprocess": self.name, "input_range": list(self.input_range),
                   "inputs": self.describe()}
        from keras_layernas._io import write_atomically

        write_atomically(record, json.dumps(payload, indent=2) + "\n")
        return record


PREPROCESS_PRESETS = {preset.name: preset for preset in (
    Preprocess("mobilenet", 1 / 127.5, -1.0),  # MobileNet V1/V2: [-1, 1]
    Preprocess("unit", 1 / 255, 0.0),          # [0, 1]
    Preprocess("none", 1.0, 0.0),              # raw pixels (the model rescales itself)
)}


def _add_preprocess_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preprocess", choices=sorted(PREPROCESS_PRESETS), default=None,
        help="how the model's training inputs were scaled from 0-255 pixels: mobilenet "
             "[-1, 1], unit [0, 1], none (as they are). Default: MODEL's .preprocess.json "
             "record for a file; mobilenet for mobilenet/mobilenet_v2, none for other names",
    )


def _record_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".preprocess.json")


def _preprocess(args: argparse.Namespace) -> Preprocess | None:
    """--preprocess, else the model file's record, else the keras.applications convention."""
    if args.preprocess is not None:
        return PREPROCESS_PRESETS[args.preprocess]
    if Path(args.model).suffix not in (".keras", ".h5"):
        named_mobilenet = args.model.replace("_", "").lower() in ("mobilenet", "mobilenetv2")
        return PREPROCESS_PRESETS["mobilenet" if named_mobilenet else "none"]
    record = _record_path(Path(args.model))
    if not record.is_file():
        return None
    try:
        name = json.loads(record.read_text())["preprocess"]
        return PREPROCESS_PRESETS[name]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{record} is not a preprocess record ({error!r}); delete it or pass "
            "--preprocess mobilenet|unit|none."
        ) from error


def _require_preprocess(args: argparse.Namespace, preprocess, purpose: str) -> None:
    if preprocess is None:
        raise ValueError(
            f"{purpose} needs the input scaling {args.model} was trained with, and "
            f"{_record_path(Path(args.model))} does not record it. Received: no "
            "--preprocess; pass --preprocess mobilenet ([-1, 1]), unit ([0, 1]) or none "
            "(raw 0-255 pixels)."
        )


def _check_data(spec: str | None) -> None:
    """Fails fast on a --data that cannot work: unknown scheme, missing or scaled npz."""
    if spec is None:
        return
    scheme, _, value = spec.partition(":")
    if scheme not in ("npz", "tfds") or not value:
        raise ValueError(f"--data must be tfds:NAME or npz:PATH. Received: --data {spec}")
    if scheme == "tfds":
        return
    if not Path(value).is_file():
        raise ValueError(
            f"--data {spec}: no such file '{value}'. Pass npz:PATH of an existing .npz "
            "with x_train, y_train (optionally x_test, y_test)."
        )
    import numpy as np

    with np.load(value) as arrays:
        if "x_train" not in arrays.files:
            return  # the data loader names the missing keys
        pixels = arrays["x_train"]
        low, high = float(pixels.min(initial=0)), float(pixels.max(initial=0))
    if low < 0 or high > 255.5 or high <= 2:
        raise ValueError(
            f"--data images must be raw RGB pixels in [0, 255] (--preprocess scales them "
            f"as the model expects). Received: x_train of {spec} spanning [{low:.3g}, "
            f"{high:.3g}]; store the unscaled 0-255 pixels."
        )


def _export_int8(args: argparse.Namespace, model, preprocess, path: Path) -> Path:
    """Writes the int8 file calibrated on --data and prints its agreement with Keras."""
    import numpy as np

    import keras_layernas as layernas

    input_shape = tuple(model.inputs[0].shape[1:])
    if args.data is None:
        low, high = preprocess.input_range if preprocess else (-1.0, 1.0)
        print(f"warning: no --data: int8 ranges calibrated on random inputs in [{low:g}, "
              f"{high:g}]; pass --data for a usable int8 model", file=sys.stderr)
        rng = np.random.default_rng(0)
        written = layernas.export_tflite(
            model, path, quantize="int8",
            representative_data=rng.uniform(low, high, (32, *input_shape)).astype("float32"))
        print(f"Wrote {written} ({written.stat().st_size / 1e6:.2f} MB)")
        return written
    _require_preprocess(args, preprocess, "int8 calibration on --data")
    from keras_layernas.compression import prepare_data

    # The training images in file order (as "validation"), not shuffled.
    scale = preprocess.as_callable()
    _, train = prepare_data(args.data, args.data, input_shape, preprocess=scale)
    calibration, _ = _arrays(train, 0, _CALIBRATION_SAMPLES)
    written = layernas.export_tflite(model, path, quantize="int8", representative_data=calibration,
                                     input_range=preprocess.input_range)
    print(f"Wrote {written} ({written.stat().st_size / 1e6:.2f} MB)")
    if _has_test_split(args.data):
        _, held_out = prepare_data(args.data, None, input_shape, preprocess=scale)
        x, y = _arrays(held_out, 0, _CHECK_SAMPLES)
        which = "test"
    else:
        x, y = _arrays(train, _CALIBRATION_SAMPLES, _CHECK_SAMPLES)
        which = "training (not calibration)"
    if len(x) == 0:
        print("warning: no held-out images in --data: agreement with Keras not measured",
              file=sys.stderr)
        return written
    try:
        check = layernas.evaluate_tflite(written, x, y, keras_model=model)
    except ImportError as error:
        print(f"warning: agreement with Keras not measured: {error}", file=sys.stderr)
        return written
    print(f"Checked on {check.samples} {which} images of {args.data}: int8 accuracy "
          f"{check.accuracy:.3f} (Keras {check.keras_accuracy:.3f}); agreement with Keras: "
          f"top-1 {check.top1_agreement:.3f}, logit correlation {check.logit_correlation:.4f}")
    classes = int(model.outputs[0].shape[-1])
    # Both models see the same scaled images, so a wrong scaling shows as a
    # Keras model at chance level rather than as disagreement.
    if check.top1_agreement < 0.9 or check.keras_accuracy < 1.5 / classes:
        print(f"warning: int8 picks another class than Keras on {1 - check.top1_agreement:.0%} "
              f"of the images and Keras is right on {check.keras_accuracy:.0%} ({classes} "
              f"classes); check that --preprocess {preprocess.name} is how the model was "
              "trained (random or untrained weights also give this)", file=sys.stderr)
    return written


def _arrays(dataset, skip: int, count: int):
    """``(x, y)`` numpy arrays of ``count`` samples after ``skip`` of a batched dataset."""
    import numpy as np

    xs, ys = [], []
    for x, y in dataset.unbatch().skip(skip).take(count).batch(256).as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    if not xs:
        return np.zeros((0,)), np.zeros((0,))
    return np.concatenate(xs), np.concatenate(ys)


def _has_test_split(spec: str) -> bool:
    scheme, _, value = spec.partition(":")
    if scheme != "npz":
        return True  # tfds sources are loaded with their test split
    import numpy as np

    with np.load(value) as arrays:
        return "x_test" in arrays.files


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _madds_budget(text: str) -> float | str:
    """A number of MAdds, or a percentage of the model's own (``"50%"``, passed on as is)."""
    if text.strip().endswith("%"):
        try:
            percent = float(text.strip()[:-1])
        except ValueError:
            percent = -1.0
        if not 0 < percent < 100:
            raise argparse.ArgumentTypeError(
                f"a percentage of the model's MAdds must lie above 0% and below 100%, e.g. 50%; got {text}")
        return text
    return _positive_float(text)


def _madds_budgets(text: str) -> float | str | list[float | str]:
    """One MAdds budget, or several comma-separated ones (a list, in the order given)."""
    if "," not in text:
        return _madds_budget(text)
    parts = text.split(",")
    if not all(part.strip() for part in parts):
        raise argparse.ArgumentTypeError(
            f"several budgets are separated by single commas, e.g. 300e6,200e6 or 60%,30%; got {text}")
    return [_madds_budget(part) for part in parts]


def _latency_budget(text: str) -> float:
    """One latency budget in ms; several are refused (one search serves several MAdds budgets)."""
    if "," in text:
        raise argparse.ArgumentTypeError(
            f"takes one budget in ms, e.g. 15; several budgets from one search are MAdds budgets "
            f"only (--target-madds 300e6,200e6); got {text}")
    return _positive_float(text)


def _steps(text: str) -> int | str:
    """``--steps``: a positive number of compressions, or ``auto``."""
    return "auto" if text.strip() == "auto" else _positive_int(text)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _load_model(args: argparse.Namespace):
    """The model named by ``args.model`` and the input shape to profile it at."""
    import keras

    if Path(args.model).suffix in (".keras", ".h5"):
        if not Path(args.model).is_file():
            raise ValueError(f"model file not found. Received: MODEL={args.model}")
        for option in ("alpha", "minimalistic", "classes"):
            if getattr(args, option):
                raise ValueError(
                    f"--{option} only applies to keras.applications names; a saved model "
                    f"already has its architecture. Received: --{option} with "
                    f"MODEL={args.model}"
                )
        model = keras.saving.load_model(args.model, compile=False)
        if args.input_size is None:
            return model, None
        channels = model.inputs[0].shape[-1]
        return model, (args.input_size, args.input_size, channels)

    build = _application(args.model)
    accepted = inspect.signature(build).parameters
    options = {"alpha": args.alpha, "minimalistic": args.minimalistic or None}
    kwargs = {}
    for option, value in options.items():
        if value is None:
            continue
        if option not in accepted:
            raise ValueError(
                f"{args.model} has no {option} option; leave out --{option}. "
                f"Received: --{option} {value}"
            )
        kwargs[option] = value
    size = args.input_size or 224
    classes = args.classes or 1000
    model = build(weights=None, input_shape=(size, size, 3), classes=classes, **kwargs)
    return model, None


def _application(name: str):
    """The keras.applications constructor called ``name`` in snake case."""
    import keras

    def key(text: str) -> str:
        return text.replace("_", "").lower()

    constructors = {
        key(attr): getattr(keras.applications, attr)
        for attr in dir(keras.applications)
        if attr[:1].isupper() and callable(getattr(keras.applications, attr))
    }
    if key(name) not in constructors:
        known = "mobilenet_v2, mobilenet_v3_small, mobilenet_v3_large, resnet50, ..."
        raise ValueError(
            f"MODEL must be a keras.applications name ({known}) or a .keras/.h5 file. "
            f"Received: MODEL={name}"
        )
    return constructors[key(name)]


if __name__ == "__main__":
    sys.exit(main())
