"""MAdds / params of Keras models.

    import keras_layernas as layernas
    layernas.count_madds(model, input_shape=(224, 224, 3))
    print(layernas.profile(model))

The cost convention (docs/cost-convention.md) lives
in ``formulas``, shared with the surgery cost model. Public names load lazily (PEP 562) so that
``keras_layernas.profiling.formulas`` stays importable without Keras.
"""
from __future__ import annotations

import importlib

# public name -> private module that defines it
_EXPORTS = {
    "LayerCost": "_profile",
    "Profile": "_profile",
    "count_madds": "_profile",
    "count_params": "_profile",
    "profile": "_profile",
    "tf_profiler_madds": "_tf_reference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

