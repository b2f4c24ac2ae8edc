"""Model surgery: channel-dependency graph -> search space -> materialize(arch).

``SearchSpace``/``SearchLayer`` are plain Python; the Keras-facing names load
lazily (PEP 562) so that importing the contract never imports Keras.
"""
from __future__ import annotations

import importlib

from keras_layernas.surgery.space import SearchLayer, SearchSpace, space_from_model

# public name -> module that defines it
_EXPORTS = {
    "KernelWidth": "keras_layernas.surgery.model_space",
    "default_widths": "keras_layernas.surgery.model_space",
    "round_width": "keras_layernas.surgery.model_space",
    "ChannelGraph": "keras_layernas.surgery._graph",
    "CoupledGroup": "keras_layernas.surgery._graph",
    "l1_importance": "keras_layernas.surgery.importance",
    "keep_indices": "keras_layernas.surgery.importance",
    "RetainedImportance": "keras_layernas.surgery.importance",
    "WEIGHTINGS": "keras_layernas.surgery.importance",
}

__all__ = ["SearchLayer", "SearchSpace", "space_from_model", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keras_layernas.surgery' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
