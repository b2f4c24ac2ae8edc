"""The ``layernas`` command line.

Each subcommand is one function decorated with :func:`command`, which receives
its argparse sub-parser to declare options and returns the handler that runs
it; adding ``layernas compress`` later means adding one such function.

    layernas profile mobilenet_v2 --alpha 1.0 --input-size 224
    layernas profile path/to/model.keras
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
    parser.add_argument("--json", action="store_true", help="print rows and totals as JSON")

    def run(args: argparse.Namespace) -> int:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from keras_layernas.profile import profile as profile_model

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
