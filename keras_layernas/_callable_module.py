"""Modules that answer to a call as the function they are named after.

``keras_layernas.profile`` and ``keras_layernas.compress`` are both a module
and a public function. Importing the module binds *it* to the package
attribute, shadowing the lazily exported function of the same name; making the
module callable keeps ``layernas.profile(model)`` and
``layernas.compress(model, ...)`` working either way.
"""
from __future__ import annotations

import sys
import types


def make_callable(module_name: str, function_name: str) -> None:
    """Let calling module ``module_name`` call its ``function_name``."""

    class _CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return getattr(self, function_name)(*args, **kwargs)

    sys.modules[module_name].__class__ = _CallableModule
