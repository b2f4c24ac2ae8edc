"""Latency on the phone: TFLite export and timing, and a latency model of a space.

* ``export`` writes ``.tflite`` files (:func:`export_tflite`), times them with
  LiteRT (:func:`measure_latency`), caches timings per architecture as a cost
  (:class:`LatencyCost`) and bridges to ``tf_keras`` (:func:`to_tf_keras`);
* ``_model`` fits :class:`LatencyModel`, a per-op latency prediction of a
  search space from a few measured architectures.

Public names load lazily (PEP 562), so ``import keras_layernas.latency`` stays
cheap and never imports TensorFlow or tfmot.
"""
from __future__ import annotations

import importlib

# public name -> module that defines it
_EXPORTS = {
    "LatencyCost": "export",
    "export_tflite": "export",
    "measure_latency": "export",
    "to_tf_keras": "export",
    "LatencyModel": "_model",
    "calibration_archs": "_model",
    "fit_nonnegative": "_model",
    "measure_model_latency": "_model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    if name == "export":
        return importlib.import_module(f"{__name__}.export")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | {"export"})
