"""MAdds / params of Keras models.

    import keras_layernas as layernas
    layernas.count_madds(model, input_shape=(224, 224, 3))
    print(layernas.profile(model))

The cost convention (docs/cost-convention.md) lives in ``formulas``, shared
with the surgery cost model. Public names load lazily (PEP 562) so that
``keras_layernas.profile.formulas`` stays importable without Keras.
"""
from __future__ import annotations

import importlib
import sys
import types

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


class _CallableModule(types.ModuleType):
    """This subpackage, callable as :func:`profile`.

    Importing ``keras_layernas.profile`` binds the *subpackage* to the
    ``keras_layernas.profile`` attribute, shadowing the lazily exported
    function of the same name; making the module callable keeps the
    documented ``layernas.profile(model)`` working either way.
    """

    def __call__(self, model, input_shape=None):
        return self.profile(model, input_shape)


sys.modules[__name__].__class__ = _CallableModule
