"""The ``layernas`` command line.

Each subcommand is one function decorated with :func:`command`, which receives
its argparse sub-parser to declare options and returns the handler that runs
it (docs/cli.md has the reference).

    layernas profile mobilenet_v2 --alpha 1.0 --input-size 224
    layernas space mobilenet_v2
    layernas compress mobilenet_v2 --target-madds 150e6 --out slim
    layernas export slim/model.keras --float16
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

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
    try:
        return args.handler(args)
    except ValueError as error:
        print(f"layernas {args.command}: error: {error}", file=sys.stderr)
        return 2


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
    parser.add_argument("--alpha", type=float, default=None, help="width multiplier (MobileNets)")
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
    --int8), OUT/report.json and OUT/pareto.png; the search state lives in
    OUT/search, so running the same command again resumes. --target-latency-ms
    searches on a latency model fitted to --calibration-archs measured
    architectures (single-thread float32 TFLite, this machine) instead of MAdds;
    its measurements are cached in OUT/search too.

    examples:
      layernas compress mobilenet_v2 --target-madds 150e6
      layernas compress mobilenet_v2 --target-latency-ms 15
      layernas compress model.keras --target-madds 60e6 --data npz:cifar.npz --max-trials 20
      layernas compress mobilenet_v2 --alpha 0.35 --input-size 96 --classes 10 \\
          --target-madds 6e6 --data tfds:cifar10 --int8 --out slim_cifar
    """
    _add_model_arguments(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-madds", type=float, default=None, help="MAdds budget, e.g. 150e6")
    target.add_argument("--target-latency-ms", type=float, default=None,
                        help="budget of median single-thread float32 TFLite latency (ms) on "
                             "this machine, e.g. 15")
    parser.add_argument("--calibration-archs", type=_positive_int, default=12,
                        help="architectures measured to fit the latency model "
                             "(with --target-latency-ms; default: 12)")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="result within [(1 - tolerance) x target, target] (default: 0.05)")
    parser.add_argument("--data", default=None, help="tfds:NAME or npz:PATH (default: data-free)")
    parser.add_argument("--max-trials", type=_positive_int, default=None,
                        help="cap on evaluated candidates (default: complete search without "
                             "data, one pass over the options with data)")
    parser.add_argument("--epochs-per-trial", type=_non_negative_int, default=1,
                        help="fine-tuning epochs per candidate (with --data)")
    parser.add_argument("--finetune-epochs", type=_non_negative_int, default=0,
                        help="fine-tuning epochs of the winner (with --data)")
    parser.add_argument("--int8", action="store_true",
                        help="also write OUT/model_int8.tflite (calibrated on --data)")
    parser.add_argument("--out", default="layernas_out", help="output folder (default: layernas_out)")
    parser.add_argument("--overwrite", action="store_true", help="start the search over")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")

    def run(args: argparse.Namespace) -> int:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras_layernas as layernas

        model, input_shape = _load_model(args)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        result = layernas.CompressionSearch(
            model, args.target_madds, target_latency_ms=args.target_latency_ms,
            calibration_archs=args.calibration_archs, data=args.data, tolerance=args.tolerance,
            max_trials=args.max_trials, epochs_per_trial=args.epochs_per_trial,
            finetune_epochs=args.finetune_epochs, directory=str(out / "search"),
            overwrite=args.overwrite, input_shape=input_shape, verbose=0 if args.quiet else 1,
            preprocess=_preprocess_for(args.model),
        ).run()
        result.model.save(out / "model.keras")
        result.save_report(str(out / "report.json"))
        result.plot_pareto(str(out / "pareto.png"))
        layernas.export_tflite(result.model, out / "model.tflite")
        if args.int8:
            layernas.export_tflite(result.model, out / "model_int8.tflite", quantize="int8",
                                   representative_data=_calibration(args, result.model))
        print(f"Wrote {', '.join(sorted(p.name for p in out.iterdir() if p.is_file()))} in {out}")
        return 0

    return run


@command
def space(parser: argparse.ArgumentParser) -> Handler:
    """Print the search space of a model: searchable layers, options, sizes.

    Lists every searchable layer (kind, base option, option count, options),
    the number of architectures (product of |S|), LayerNAS's bound on trials
    (H x k x sum |S|) and the base and smallest reachable MAdds.

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

    int8 quantization calibrates activation ranges on --data (300 training
    images); without --data it calibrates on random inputs, which only suits
    a smoke test.

    examples:
      layernas export slim/model.keras --out slim.tflite
      layernas export slim/model.keras --int8 --data tfds:cifar10 --out slim_int8.tflite
    """
    _add_model_arguments(parser)
    parser.add_argument("--out", default=None, help="output file (default: MODEL name + .tflite)")
    quantize = parser.add_mutually_exclusive_group()
    quantize.add_argument("--int8", action="store_true", help="full-integer quantization")
    quantize.add_argument("--float16", action="store_true", help="float16 weights")
    parser.add_argument("--data", default=None, help="tfds:NAME or npz:PATH to calibrate int8")

    def run(args: argparse.Namespace) -> int:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras_layernas as layernas

        model, _ = _load_model(args)
        mode = "int8" if args.int8 else "float16" if args.float16 else None
        path = args.out or f"{Path(args.model).stem}{'_' + mode if mode else ''}.tflite"
        data = _calibration(args, model) if mode == "int8" else None
        written = layernas.export_tflite(model, path, quantize=mode, representative_data=data)
        print(f"Wrote {written} ({Path(written).stat().st_size / 1e6:.2f} MB)")
        return 0

    return run


# Images for int8 calibration: a few hundred is what the TFLite converter needs.
_CALIBRATION_SAMPLES = 300


def _preprocess_for(model_name: str):
    """MobileNets by name take inputs in [-1, 1]; other models get images as they are."""
    if "mobilenet" in model_name.lower() and Path(model_name).suffix not in (".keras", ".h5"):
        import keras

        return keras.applications.mobilenet_v2.preprocess_input
    return None


def _calibration(args: argparse.Namespace, model):
    """Calibration inputs for int8: --data's first training images, else random ones."""
    import numpy as np

    input_shape = tuple(model.inputs[0].shape[1:])
    if args.data is None:
        print("warning: no --data: int8 ranges calibrated on random inputs in [-1, 1]; "
              "pass --data for a usable int8 model", file=sys.stderr)
        rng = np.random.default_rng(0)
        return rng.uniform(-1, 1, size=(32, *input_shape)).astype("float32")
    from keras_layernas.compression import prepare_data

    train, _ = prepare_data(args.data, None, input_shape, preprocess=_preprocess_for(args.model))
    return train.unbatch().map(lambda x, y: x).take(_CALIBRATION_SAMPLES).batch(32)


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {text}")
    return value


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
