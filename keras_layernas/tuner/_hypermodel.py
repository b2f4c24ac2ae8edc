"""A ready HyperModel: a trial's architecture, materialized from a SearchSpace.

The model comes from ``space.materialize(arch)`` (for model spaces that is the
slimmed base model with its trained weights inherited), compiled and fitted
with the user's own recipe, so a search needs no hand-written ``build(hp)``.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import keras
import keras_tuner

from keras_layernas.surgery.space import SearchSpace
from keras_layernas.tuner._choices import declare_architecture


class LayerNASHyperModel(keras_tuner.HyperModel):
    """Builds, compiles and fits the architecture a trial's hyperparameters name.

    Args:
        space: the ``SearchSpace`` the oracle searches; it must be able to
            ``materialize`` (a model space, or ``from_options`` with ``build_fn``).
        compile_kwargs: the compile recipe: keyword arguments for
            ``model.compile`` (an optimizer instance is cloned for every model,
            as a Keras optimizer serves one model only), or a callable
            ``compile_fn(model)`` that compiles the model itself.
        fit_kwargs: default keyword arguments for ``model.fit`` (``epochs``,
            ``batch_size``...); those given to ``tuner.search`` win.
        name: optional name of the hypermodel.

    Raises:
        TypeError: ``space`` is not a ``SearchSpace`` or ``compile_kwargs`` is
            neither a mapping nor a callable.

    Example:
        >>> import keras
        >>> from keras_layernas.surgery import SearchSpace
        >>> def build(v):
        ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(v["units"]),
        ...                              keras.layers.Dense(2, activation="softmax")])
        >>> space = SearchSpace.from_options({"units": [16, 8]}, lambda v: v["units"], build)
        >>> hypermodel = LayerNASHyperModel(space, {"loss": "sparse_categorical_crossentropy",
        ...                                         "optimizer": "sgd"})
        >>> hp = keras_tuner.HyperParameters()
        >>> hypermodel.declare_hyperparameters(hp)
        >>> hp.values["units"] = 8
        >>> hypermodel.build(hp).layers[0].units
        8
    """

    def __init__(
        self,
        space: SearchSpace,
        compile_kwargs: Mapping[str, Any] | Callable[[keras.Model], Any],
        fit_kwargs: Mapping[str, Any] | None = None,
        name: str | None = None,
    ):
        if not isinstance(space, SearchSpace):
            raise TypeError(
                "space must be a keras_layernas SearchSpace. "
                f"Received: space of type {type(space).__name__}."
            )
        if not (isinstance(compile_kwargs, Mapping) or callable(compile_kwargs)):
            raise TypeError(
                "compile_kwargs must be keyword arguments for model.compile (a dict) "
                "or a callable compile_fn(model). "
                f"Received: compile_kwargs of type {type(compile_kwargs).__name__}."
            )
        super().__init__(name=name)
        self.space = space
        self.compile_kwargs = compile_kwargs
        self.fit_kwargs = dict(fit_kwargs or {})

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        declare_architecture(hp, self.space)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Materialize and compile the architecture ``hp`` holds."""
        model = self.space.materialize(declare_architecture(hp, self.space))
        if callable(self.compile_kwargs):
            self.compile_kwargs(model)
        else:
            kwargs = dict(self.compile_kwargs)
            optimizer = kwargs.get("optimizer")
            if isinstance(optimizer, keras.optimizers.Optimizer):
                kwargs["optimizer"] = optimizer.from_config(optimizer.get_config())
            model.compile(**kwargs)
        return model

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args, **kwargs):
        """``model.fit`` with the recipe's ``fit_kwargs`` under the search's own."""
        return model.fit(*args, **{**self.fit_kwargs, **kwargs})
