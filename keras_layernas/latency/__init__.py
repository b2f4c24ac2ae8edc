"""Latency on the phone: TFLite export and timing, and a latency model of a space.

* ``export`` writes ``.tflite`` files (:func:`export_tflite`), times them with
  LiteRT (:func:`measure_latency`), caches timings per architecture as a cost
  (:class:`LatencyCost`) and bridges to ``tf_keras`` (:func:`to_tf_keras`);
* ``_model`` fits :class:`LatencyModel`, a per-op latency prediction of a
  search space from a few measured architectures.

Both import TensorFlow, LiteRT and tf_keras only inside the functions that
need them, so ``import keras_layernas.latency`` stays cheap and never imports
tfmot (whose import switches the whole process to legacy Keras).
"""
from __future__ import annotations

from keras_layernas.latency._model import (
    LatencyModel,
    calibration_archs,
    fit_nonnegative,
    measure_model_latency,
)
from keras_layernas.latency.export import (
    LatencyCost,
    evaluate_tflite,
    export_tflite,
    measure_latency,
    to_tf_keras,
)

__all__ = [
    "LatencyCost",
    "LatencyModel",
    "calibration_archs",
    "evaluate_tflite",
    "export_tflite",
    "fit_nonnegative",
    "measure_latency",
    "measure_model_latency",
    "to_tf_keras",
]
