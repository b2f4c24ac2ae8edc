"""keras-layernas: shrink a Keras vision model to a MAdds budget with LayerNAS.

    import keras_layernas as layernas
    slim = layernas.compress(model, target_madds=300e6)

Public names load lazily so that ``import keras_layernas.search`` (plain
Python) never pulls in TensorFlow or Keras.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "count_madds": "keras_layernas.profiling",
    "count_params": "keras_layernas.profiling",
    "profile": "keras_layernas.profiling",
    "Profile": "keras_layernas.profiling",
    "SearchSpace": "keras_layernas.surgery",
    "LayerNAS": "keras_layernas.search",
    "RandomSearch": "keras_layernas.search",
    "RegularizedEvolution": "keras_layernas.search",
    "LayerNASOracle": "keras_layernas.tuner",
    "LayerNASTuner": "keras_layernas.tuner",
    "compress": "keras_layernas.compression",
    "CompressionSearch": "keras_layernas.compression",
    "CompressionResult": "keras_layernas.compression",
    "RetainedImportance": "keras_layernas.surgery",
    "reestimate_batchnorm": "keras_layernas.compression",
    "export_tflite": "keras_layernas.latency",
    "measure_latency": "keras_layernas.latency",
    "evaluate_tflite": "keras_layernas.latency",
    "to_tf_keras": "keras_layernas.latency",
    "LatencyCost": "keras_layernas.latency",
    "LatencyModel": "keras_layernas.latency",
}
# subpackages reachable as attributes (layernas.spaces.paper_space(...)); none is
# named like a public function, so importing one never shadows ``compress`` or ``profile``
_SUBMODULES = {"search", "profiling", "surgery", "latency", "tuner", "compression", "spaces", "cli"}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(f"keras_layernas.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'keras_layernas' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
