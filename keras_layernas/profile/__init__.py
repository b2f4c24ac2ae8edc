"""MAdds / params of Keras models.

    import keras_layernas as layernas
    layernas.count_madds(model, input_shape=(224, 224, 3))
    print(layernas.profile(model))

The cost convention (docs/cost-convention.md) lives in ``formulas``, shared
with the surgery cost model.
"""
from __future__ import annotations

import sys
import types

from keras_layernas.profile._profile import (
    LayerCost,
    Profile,
    count_madds,
    count_params,
    profile,
)
from keras_layernas.profile._tf_reference import tf_profiler_madds

__all__ = ["LayerCost", "Profile", "count_madds", "count_params", "profile", "tf_profiler_madds"]


class _CallableModule(types.ModuleType):
    """This subpackage, callable as :func:`profile`.

    Importing ``keras_layernas.profile`` binds the *subpackage* to the
    ``keras_layernas.profile`` attribute, shadowing the lazily exported
    function of the same name; making the module callable keeps the
    documented ``layernas.profile(model)`` working either way.
    """

    def __call__(self, model, input_shape=None) -> Profile:
        return profile(model, input_shape)


sys.modules[__name__].__class__ = _CallableModule
