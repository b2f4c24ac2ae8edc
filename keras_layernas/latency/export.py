"""Hand a (slimmed) Keras model to mobile runtimes: TFLite files, latency, tfmot.

Four bridges out of Keras 3:

* :func:`export_tflite` writes a ``.tflite`` file (float32, float16 weights, or
  full-integer int8), going through a SavedModel because converting from a
  concrete function produced NaN outputs with Keras 3 + TF 2.21. It also
  converts the ``tf_keras`` models of the tfmot route (below).
* :func:`evaluate_tflite` runs a ``.tflite`` file on labelled data: its
  accuracy and how closely it follows the Keras model, so the file that ships
  is checked rather than assumed.
* :func:`measure_latency` times a ``.tflite`` file with the LiteRT interpreter
  (extra ``litert``); :class:`LatencyCost` caches it per architecture so a
  search can use latency as its cost.
* :func:`to_tf_keras` rebuilds a functional model in the legacy ``tf_keras``
  package (extra ``tfmot``) so that ``tensorflow_model_optimization``'s
  quantization-aware training applies.

TensorFlow, LiteRT and tf_keras are imported inside the functions, so that
``import keras_layernas.latency.export`` stays cheap and never imports tfmot (whose
import switches the whole process to legacy Keras).
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Iterator, Union

import numpy as np

from keras_layernas._io import write_atomically

QUANTIZE_MODES = (None, "int8", "float16")

#: Numpy array of inputs, a ``tf.data.Dataset`` of inputs or ``(inputs, labels)``,
#: or a zero-argument callable returning an iterable of input batches.
RepresentativeData = Union[np.ndarray, "tf.data.Dataset", Callable[[], Iterable[Any]]]


def export_tflite(
    model: Any,
    path: str | os.PathLike,
    quantize: str | None = None,
    representative_data: RepresentativeData | None = None,
    input_range: tuple[float, float] | None = None,
) -> Path:
    """Converts a Keras model to a ``.tflite`` file, written atomically.

    Args:
        model: a built ``keras.Model`` with fixed input shapes apart from the
            batch (needed by :func:`measure_latency`, not by the converter),
            or the ``tf_keras`` model of the tfmot route (:func:`to_tf_keras`,
            then ``quantize_model`` and training).
        path: file to write. Its folder must exist and be writable; a reader
            never sees a half-written file because the bytes go to a temporary
            file in the same folder that then replaces ``path``.
        quantize: ``None`` keeps float32. ``"float16"`` stores weights as
            float16 (file about half the size, float32 compute on CPU).
            ``"int8"`` is full-integer quantization: weights and activations
            are int8 and the converter may only use int8 builtin ops
            (``TFLITE_BUILTINS_INT8``), while the model's input and output
            stay float32 so the file is a drop-in replacement for the float one.
        representative_data: calibration inputs for ``quantize="int8"``, drawn
            from the distribution the model will see (100-500 samples is
            typical; all are used). A numpy array of inputs, a
            ``tf.data.Dataset`` of inputs or ``(inputs, labels)`` (batched or
            not), or a zero-argument callable returning an iterable of input
            batches. Only single-input models can be calibrated. They must be
            scaled exactly as the training inputs were: int8 ranges calibrated
            on raw 0-255 pixels for a model trained on [-1, 1] ruin the file.
        input_range: ``(low, high)``, the range the model's training inputs
            spanned (``(-1, 1)`` for MobileNet's preprocessing). With it,
            ``representative_data`` that strays outside it or covers less than
            half of it is refused before converting.

    Returns:
        The path written.

    Raises:
        ValueError: unknown ``quantize``, int8 without ``representative_data``
            (or data or ``input_range`` given without int8), calibration data
            whose shape does not match the model input or whose values do not
            match ``input_range``, or a path that cannot be written.
        TypeError: ``model`` is not a Keras model, or ``representative_data``
            has an unsupported type.
    """
    if not _is_keras3_model(model) and not _is_tf_keras_model(model):
        raise TypeError(
            "export_tflite() expects a keras.Model (or a tf_keras.Model from the "
            f"tfmot route). Received: model of type {type(model).__name__}"
        )
    _check_quantize(quantize, representative_data)
    input_range = _check_input_range(input_range, quantize)
    path = _writable_path(path)
    calibration = None
    if quantize == "int8":
        calibration = _calibration_generator(representative_data, model, input_range)

    flatbuffer = _convert(model, quantize, calibration)
    write_atomically(path, flatbuffer)
    return path


def measure_latency(
    tflite_path: str | os.PathLike,
    runs: int = 50,
    warmup: int = 5,
    num_threads: int | None = None,
) -> float:
    """Median wall-clock time of one inference of a ``.tflite`` model, in ms.

    Inputs are random (the time of dense CNN kernels does not depend on the
    values); a dynamic batch dimension is set to 1. The median, not the mean,
    so that a scheduler hiccup on a shared machine does not move the result.

    Args:
        tflite_path: a file written by :func:`export_tflite` (or any TFLite file
            whose inputs have a static shape apart from the batch).
        runs: timed inferences (>= 1).
        warmup: untimed inferences first (>= 0): the first calls pay for memory
            planning and XNNPACK weight packing.
        num_threads: CPU threads for the interpreter; ``None`` lets LiteRT
            choose. Pin it (e.g. 1) to compare models fairly.

    Returns:
        The median latency in milliseconds.

    Raises:
        ValueError: bad ``runs``/``warmup``/``num_threads``, a missing file, or
            an input with a dynamic non-batch dimension.
        ImportError: LiteRT is not installed.
    """
    _check_count("runs", runs, minimum=1)
    _check_count("warmup", warmup, minimum=0)
    if num_threads is not None:
        _check_count("num_threads", num_threads, minimum=1)
    tflite_path = Path(tflite_path)
    if not tflite_path.is_file():
        raise ValueError(
            f"measure_latency() needs an existing .tflite file. Received: "
            f"tflite_path='{tflite_path}' (no such file); write one with "
            "layernas.export_tflite(model, path)."
        )

    interpreter = _litert_interpreter(tflite_path, num_threads)
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], _random_input(detail, rng))

    for _ in range(warmup):
        interpreter.invoke()
    times_ms = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times_ms.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times_ms)


@dataclasses.dataclass(frozen=True)
class TFLiteEvaluation:
    """What :func:`evaluate_tflite` measured; Keras fields are None without a Keras model.

    Attributes:
        samples: labelled inputs run.
        accuracy: top-1 accuracy of the ``.tflite`` file.
        keras_accuracy: top-1 accuracy of the Keras model on the same inputs.
        top1_agreement: share of inputs where both give the same top-1 class.
        logit_correlation: Pearson correlation of the two models' outputs after
            removing each class's mean output (a constant offset per class says
            nothing about individual inputs); 1.0 is a faithful file, NaN when
            an output is constant.
    """

    samples: int
    accuracy: float
    keras_accuracy: float | None = None
    top1_agreement: float | None = None
    logit_correlation: float | None = None

    def __str__(self) -> str:
        text = f"accuracy {self.accuracy:.3f} on {self.samples} inputs"
        if self.top1_agreement is not None:
            text += (
                f" (Keras {self.keras_accuracy:.3f}); agreement with Keras: top-1 "
                f"{self.top1_agreement:.3f}, logit correlation {self.logit_correlation:.4f}"
            )
        return text


def evaluate_tflite(
    path: str | os.PathLike, x: np.ndarray, y: np.ndarray, keras_model: Any = None
) -> TFLiteEvaluation:
    """Runs a ``.tflite`` file on labelled inputs, one at a time as a phone would.

    Check the file you ship, not the Keras model it came from: an int8 file
    calibrated on wrongly scaled data keeps its size and speed but follows the
    Keras model only loosely, which only a comparison on real inputs shows.

    Args:
        path: the ``.tflite`` file (float or int8; integer inputs and outputs
            are quantized and dequantized with the file's own parameters).
        x: inputs, ``(N, ...)``, scaled as the model expects.
        y: labels, ``(N,)`` class indices or ``(N, classes)`` one-hot.
        keras_model: the model the file was exported from (Keras 3 or
            tf_keras); given, the agreement with it is measured too.

    Returns:
        A :class:`TFLiteEvaluation`.

    Raises:
        ValueError: a missing file, empty inputs, or inputs and labels of
            different lengths.
        ImportError: LiteRT is not installed.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"evaluate_tflite() needs an existing .tflite file. Received: path='{path}' "
            "(no such file); write one with layernas.export_tflite(model, path)."
        )
    x = np.asarray(x, dtype=np.float32)
    labels = np.asarray(y)
    if labels.ndim == 2:
        labels = labels.argmax(1)
    if len(x) == 0 or len(x) != len(labels):
        raise ValueError(
            "evaluate_tflite() needs as many labels as inputs, at least one. "
            f"Received: x of shape {x.shape}, y of shape {np.shape(y)}"
        )
    outputs = _tflite_outputs(path, x)
    result = {"samples": len(x), "accuracy": float(np.mean(outputs.argmax(1) == labels))}
    if keras_model is not None:
        expected = np.asarray(keras_model.predict(x, verbose=0), dtype=np.float32)
        expected = expected.reshape(len(x), -1)
        result.update(
            keras_accuracy=float(np.mean(expected.argmax(1) == labels)),
            top1_agreement=float(np.mean(outputs.argmax(1) == expected.argmax(1))),
            logit_correlation=_centered_correlation(outputs, expected),
        )
    return TFLiteEvaluation(**result)


class LatencyCost:
    """TFLite latency of Keras models, measured once per caller-given key.

    A latency-aware search asks for the cost of the same architecture many
    times; each measurement exports a file (seconds), so results are cached
    under a key the caller chooses (e.g. the architecture tuple). The model is
    only exported on a cache miss.

    Args:
        runs: timed inferences per measurement (see :func:`measure_latency`).
        warmup: untimed inferences before timing.
        num_threads: interpreter threads; pinned to 1 by default so that
            candidates are compared on one core and the ranking does not
            depend on how busy the machine is.
        quantize: ``None``, ``"float16"`` or ``"int8"``: measure the latency of
            the file that will ship.
        representative_data: calibration data when ``quantize="int8"``.

    Example:

    >>> import keras
    >>> cost = LatencyCost(runs=3, warmup=1)
    >>> model = keras.Sequential([
    ...     keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten()])
    >>> first = cost(model, key=("conv", 4))
    >>> first > 0 and cost(model, key=("conv", 4)) == first
    True
    >>> len(cost)
    1
    """

    def __init__(
        self,
        runs: int = 20,
        warmup: int = 3,
        num_threads: int | None = 1,
        quantize: str | None = None,
        representative_data: RepresentativeData | None = None,
    ) -> None:
        _check_count("runs", runs, minimum=1)
        _check_count("warmup", warmup, minimum=0)
        if num_threads is not None:
            _check_count("num_threads", num_threads, minimum=1)
        _check_quantize(quantize, representative_data)
        self.runs = runs
        self.warmup = warmup
        self.num_threads = num_threads
        self.quantize = quantize
        self.representative_data = representative_data
        self._latency_ms: dict[Hashable, float] = {}

    def __call__(self, model: Any, key: Hashable) -> float:
        """Returns the median latency (ms) of ``model``, cached under ``key``.

        Args:
            model: the candidate as a built ``keras.Model``.
            key: identifies the architecture; equal keys must mean equal
                architectures, since a cached value is returned as is.

        Returns:
            Median milliseconds per inference.
        """
        if key not in self._latency_ms:
            with tempfile.TemporaryDirectory(prefix="layernas_latency_") as folder:
                path = export_tflite(
                    model,
                    Path(folder) / "candidate.tflite",
                    quantize=self.quantize,
                    representative_data=self.representative_data,
                )
                self._latency_ms[key] = measure_latency(
                    path, runs=self.runs, warmup=self.warmup, num_threads=self.num_threads
                )
        return self._latency_ms[key]

    def __len__(self) -> int:
        return len(self._latency_ms)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._latency_ms


def to_tf_keras(model: Any) -> Any:
    """Rebuilds a Keras 3 model in ``tf_keras`` with identical weights.

    ``tensorflow_model_optimization`` (tfmot) only understands legacy Keras 2
    models; this bridge lets ``tfmot.quantization.keras.quantize_model`` apply
    quantization-aware training to a slimmed model. Each layer is recreated
    from its config (initializers are dropped: the weights are copied over)
    and wired like the original graph; shared layers stay shared. Keras 3's
    ``hard_sigmoid``/``hard_silu`` activations (MobileNetV3) are mapped to their
    Keras 3 formulas since tf_keras defines ``hard_sigmoid`` differently.

    Args:
        model: a functional or sequential ``keras.Model`` built from standard
            layers (those that also exist in ``tf_keras.layers``) and from
            such models nested as layers.

    Returns:
        A ``tf_keras.Model`` computing the same function.

    Raises:
        TypeError: ``model`` is not a functional or sequential Keras model.
        ValueError: a layer has no tf_keras counterpart, or sets an option
            tf_keras does not have.
        ImportError: tf_keras is not installed.
    """
    import keras

    try:
        import tf_keras
    except ImportError as error:
        raise ImportError(
            "to_tf_keras() needs the legacy Keras package tf_keras. "
            "Install it with: pip install keras-layernas[tfmot]"
        ) from error

    rebuilt: dict[int, Any] = {}

    def legacy_layer(layer: Any) -> Any:
        if id(layer) not in rebuilt:
            # A nested model (e.g. a MobileNetV2 backbone inside a Sequential
            # head) is rebuilt whole, weights included.
            rebuilt[id(layer)] = (
                to_tf_keras(layer)
                if isinstance(layer, keras.Model)
                else _legacy_layer(layer, tf_keras)
            )
        return rebuilt[id(layer)]

    if isinstance(model, keras.Sequential):
        legacy_inputs = [_legacy_input(x, tf_keras) for x in model.inputs]
        outputs = legacy_inputs[0]
        for layer in model.layers:
            outputs = legacy_layer(layer)(outputs)
    elif isinstance(model, keras.Model) and hasattr(model, "_run_through_graph"):
        legacy_inputs = [_legacy_input(x, tf_keras) for x in model.inputs]
        # The functional graph walk Keras itself uses for Functional.call,
        # run on tf_keras tensors with each layer swapped for its twin.
        outputs = model._run_through_graph(legacy_inputs, operation_fn=legacy_layer)
    else:
        raise TypeError(
            "to_tf_keras() rebuilds functional or sequential Keras models; a "
            "subclassed model has no graph to copy. Received: model of type "
            f"{type(model).__name__}"
        )

    legacy_model = tf_keras.Model(
        inputs=legacy_inputs if len(legacy_inputs) > 1 else legacy_inputs[0],
        outputs=outputs,
        name=model.name,
    )
    # InputLayers were never rebuilt; nested models already carry their weights.
    for layer in model.layers:
        if id(layer) in rebuilt and not isinstance(layer, keras.Model):
            rebuilt[id(layer)].set_weights(layer.get_weights())
    return legacy_model


# --------------------------------------------------------------------------
# export_tflite internals


def _check_quantize(quantize: str | None, representative_data: Any) -> None:
    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"quantize must be one of {QUANTIZE_MODES}. Received: quantize={quantize!r}"
        )
    if quantize == "int8" and representative_data is None:
        raise ValueError(
            "quantize='int8' calibrates activation ranges and needs inputs from "
            "the model's data distribution. Received: representative_data=None; "
            "pass e.g. 100-500 training images as a numpy array or tf.data.Dataset."
        )
    if quantize != "int8" and representative_data is not None:
        raise ValueError(
            "representative_data is only used to calibrate quantize='int8'. "
            f"Received: quantize={quantize!r} with representative_data; drop it "
            "or set quantize='int8'."
        )


def _is_keras3_model(model: Any) -> bool:
    import keras

    return isinstance(model, keras.Model)


def _is_tf_keras_model(model: Any) -> bool:
    # Looked up, not imported: a tf_keras model can only exist once it is loaded.
    tf_keras = sys.modules.get("tf_keras")
    return tf_keras is not None and isinstance(model, tf_keras.Model)


def _check_input_range(input_range: Any, quantize: str | None) -> tuple[float, float] | None:
    if input_range is None:
        return None
    if quantize != "int8":
        raise ValueError(
            "input_range checks int8 calibration data. Received: "
            f"quantize={quantize!r} with input_range={input_range!r}; drop it or "
            "set quantize='int8'."
        )
    low = high = math.nan
    if isinstance(input_range, (tuple, list)) and len(input_range) == 2:
        with contextlib.suppress(TypeError, ValueError):
            low, high = float(input_range[0]), float(input_range[1])
    if not low < high:  # also false for NaN
        raise ValueError(
            "input_range must be (low, high) with low < high, e.g. (-1, 1). "
            f"Received: input_range={input_range!r}"
        )
    return low, high


def _check_calibration_range(samples: Callable[[], Iterator[list]], input_range: tuple) -> None:
    """Refuses calibration inputs scaled differently from the training inputs."""
    low, high = input_range
    smallest, largest = math.inf, -math.inf
    for (sample,) in samples():
        smallest, largest = min(smallest, float(sample.min())), max(largest, float(sample.max()))
    width = high - low
    # 5% slack: resizing and JPEG rounding nudge pixels past the nominal range.
    strays = smallest < low - 0.05 * width or largest > high + 0.05 * width
    if strays or largest - smallest < 0.5 * width:
        raise ValueError(
            f"representative_data spans [{smallest:.4g}, {largest:.4g}] but the model "
            f"expects inputs across input_range=({low:g}, {high:g}): int8 ranges "
            "calibrated on it would not fit the inputs the model sees. Scale the "
            "calibration inputs exactly as the training inputs (e.g. pixels / 127.5 - 1 "
            "for [-1, 1]), or correct input_range."
        )


def _check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")


def _writable_path(path: str | os.PathLike) -> Path:
    """Fails before the (slow) conversion when the result could not be saved."""
    path = Path(path)
    folder = path.parent.resolve()
    if path.is_dir():
        raise ValueError(
            f"path must be a file name, not a folder. Received: path='{path}'; "
            f"use e.g. '{path / 'model.tflite'}'."
        )
    if not folder.is_dir():
        raise ValueError(
            f"The folder of path does not exist. Received: path='{path}'; create "
            f"'{folder}' first."
        )
    if not os.access(folder, os.W_OK):
        raise ValueError(f"The folder '{folder}' is not writable. Received: path='{path}'")
    return path


def _calibration_generator(
    data: Any, model: Any, input_range: tuple[float, float] | None
) -> Callable[[], Iterator[list]]:
    """Turns user calibration data into the converter's one-sample generator."""
    if len(model.inputs) != 1:
        raise ValueError(
            "int8 calibration supports single-input models. Received: a model "
            f"with {len(model.inputs)} inputs"
        )
    input_shape = tuple(model.inputs[0].shape)
    batches = _batches_of(data)

    def samples() -> Iterator[list]:
        for batch in batches():
            for sample in _split_samples(batch, input_shape):
                yield [sample]

    # Checked now: inside the converter a bad sample surfaces as an obscure
    # error after the model has already been converted once.
    if next(samples(), None) is None:
        raise ValueError(
            "representative_data yielded no samples. Received: an empty "
            f"{type(data).__name__}; pass at least one input of shape {input_shape}."
        )
    if input_range is not None:
        _check_calibration_range(samples, input_range)
    return samples


def _batches_of(data: Any) -> Callable[[], Iterable[Any]]:
    import tensorflow as tf

    if isinstance(data, np.ndarray):
        return lambda: [data]
    if isinstance(data, tf.data.Dataset):
        return data.as_numpy_iterator
    if callable(data):
        return data
    raise TypeError(
        "representative_data must be a numpy array, a tf.data.Dataset or a "
        "callable returning an iterable of input batches. Received: "
        f"representative_data of type {type(data).__name__}"
    )


def _split_samples(batch: Any, input_shape: tuple) -> Iterator[np.ndarray]:
    """Yields float32 samples of shape (1, ...) from a batch or a single sample."""
    if isinstance(batch, (tuple, list)):
        batch = batch[0]  # (inputs, labels[, weights]) as Keras datasets carry them
    batch = np.asarray(batch, dtype=np.float32)
    sample_shape = input_shape[1:]
    if batch.ndim == len(sample_shape):
        batch = batch[None]
    if batch.ndim != len(input_shape) or any(
        expected is not None and got != expected
        for got, expected in zip(batch.shape[1:], sample_shape)
    ):
        raise ValueError(
            f"representative_data must hold model inputs of shape {input_shape}. "
            f"Received: a batch of shape {batch.shape}"
        )
    for index in range(len(batch)):
        yield batch[index : index + 1]


def _convert(model: Any, quantize: str | None, calibration: Callable | None) -> bytes:
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="layernas_export_") as folder:
        # SavedModel route: from_keras_model prints every captured variable,
        # and converting a concrete function gave NaN outputs with Keras 3.
        if _is_keras3_model(model):
            model.export(folder, format="tf_saved_model", verbose=False)
        else:  # tf_keras (tfmot): its fake-quant ranges travel in the graph
            tf.saved_model.save(model, folder)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        if quantize == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = calibration
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()


# --------------------------------------------------------------------------
# measure_latency internals


def _litert_interpreter(tflite_path: Path, num_threads: int | None) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise ImportError(
            "measure_latency() runs models with LiteRT (ai-edge-litert). "
            "Install it with: pip install keras-layernas[litert]"
        ) from error

    interpreter = Interpreter(model_path=str(tflite_path), num_threads=num_threads)
    for detail in interpreter.get_input_details():
        signature = tuple(int(size) for size in detail["shape_signature"])
        if any(size < 0 for size in signature[1:]):
            raise ValueError(
                f"Input '{detail['name']}' has a dynamic shape {signature}; running "
                "the file needs a fixed one. Build the model with a fixed input_shape, e.g. "
                "(224, 224, 3), before exporting."
            )
        if signature and signature[0] < 0:
            interpreter.resize_tensor_input(detail["index"], (1,) + signature[1:])
    interpreter.allocate_tensors()
    return interpreter


def _random_input(detail: dict, rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    shape = tuple(detail["shape"])
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


# --------------------------------------------------------------------------
# evaluate_tflite internals


def _tflite_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """Float outputs ``(N, -1)`` of the file's first output, one input at a time."""
    interpreter = _litert_interpreter(path, num_threads=None)
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]
    outputs = []
    for sample in x:
        interpreter.set_tensor(source["index"], _quantized(sample[None], source))
        interpreter.invoke()
        outputs.append(_dequantized(interpreter.get_tensor(target["index"]), target).ravel())
    return np.stack(outputs)


def _quantized(values: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return values.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantized(values: np.ndarray, detail: dict) -> np.ndarray:
    if not np.issubdtype(values.dtype, np.integer):
        return values.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (values.astype(np.float32) - zero_point) * scale


def _centered_correlation(got: np.ndarray, expected: np.ndarray) -> float:
    got, expected = got - got.mean(0), expected - expected.mean(0)
    norm = math.sqrt(float(np.sum(got**2)) * float(np.sum(expected**2)))
    return float(np.sum(got * expected)) / norm if norm > 0 else math.nan


# --------------------------------------------------------------------------
# to_tf_keras internals

# tf_keras accepts these on every layer besides its own __init__ arguments.
_BASE_LAYER_KWARGS = {
    "name", "trainable", "dtype", "dynamic", "input_dim", "input_shape",
    "batch_input_shape", "batch_size", "weights", "activity_regularizer", "autocast",
}


def _legacy_input(tensor: Any, tf_keras: Any) -> Any:
    return tf_keras.Input(
        batch_shape=tuple(tensor.shape), dtype=tensor.dtype, name=tensor.name
    )


def _legacy_layer(layer: Any, tf_keras: Any) -> Any:
    """A fresh tf_keras layer configured like ``layer`` (weights come later)."""
    import keras

    class_name = type(layer).__name__
    if not isinstance(layer, keras.layers.Layer):
        raise ValueError(
            f"Operation '{layer.name}' ({class_name}) is a keras.ops call inside "
            "the graph, not a layer; to_tf_keras() copies layers only. Build the "
            "model with the matching layer (e.g. keras.layers.Multiply()) instead."
        )
    legacy_class = getattr(tf_keras.layers, class_name, None)
    if legacy_class is None:
        raise ValueError(
            f"Layer '{layer.name}' of class {class_name} has no tf_keras "
            "counterpart; to_tf_keras() supports the standard keras.layers only."
        )
    # Subclasses forward **kwargs to their bases (BatchNormalization -> its
    # base takes renorm...), so every __init__ along the MRO counts.
    accepted = set(_BASE_LAYER_KWARGS)
    for base in legacy_class.__mro__:
        if "__init__" in vars(base):
            accepted |= set(inspect.signature(base.__init__).parameters)
    config = {}
    for key, value in layer.get_config().items():
        if key.endswith("_initializer"):
            continue  # the weights are copied, so initial values never matter
        if key == "dtype" and isinstance(value, dict):
            value = value["config"]["name"]  # Keras 3 serializes a DTypePolicy
        if key == "activation":
            value = _legacy_activation(value)
        if key not in accepted:
            if value in (None, False):
                continue  # a Keras 3 option left at "off", e.g. lora_rank=None
            raise ValueError(
                f"Layer '{layer.name}' ({class_name}) sets {key}={value!r}, which "
                "tf_keras does not support; to_tf_keras() cannot reproduce it."
            )
        config[key] = value
    if class_name == "BatchNormalization":
        # Keras 3 normalizes with tf.nn.batch_normalization; tf_keras's fused
        # kernel orders the arithmetic differently (outputs drift ~1e-5).
        config["fused"] = False
    return legacy_class.from_config(config)


def _legacy_activation(activation: Any) -> Any:
    """Keras 3 activations whose tf_keras namesake differs or is missing."""
    return {
        "hard_sigmoid": _hard_sigmoid,
        "hard_silu": _hard_silu,
        "hard_swish": _hard_silu,
    }.get(activation, activation)


def _hard_sigmoid(x: Any) -> Any:
    """Keras 3's hard_sigmoid, relu6(x + 3) / 6 (tf_keras uses 0.2 x + 0.5)."""
    import tensorflow as tf

    return tf.nn.relu6(x + 3.0) / 6.0


def _hard_silu(x: Any) -> Any:
    return x * _hard_sigmoid(x)
