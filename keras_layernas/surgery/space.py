"""The search space contract shared by surgery, search and the tuner.

A ``SearchSpace`` is an ordered list of searchable layers, each with its option
list (index 0 = the base model's own choice), a cost function over whole
architectures, and optionally a way to build a Keras model for an architecture.
The LayerNAS core only ever sees ``space.options`` and ``space.cost``.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

from keras_layernas.surgery.layer import Arch, SearchLayer, encode_option

__all__ = ["Arch", "SearchLayer", "SearchSpace", "encode_option", "space_from_model"]

class SearchSpace:
    """Layered options + cost (+ optional builder) for one search.

    Build one with :meth:`from_model` (slimming an existing Keras model) or
    :meth:`from_options` (a user's own hypermodel).

    Example:
        >>> space = SearchSpace.from_options(
        ...     {"conv1": [64, 48, 32], "conv2": [128, 96]},
        ...     cost_fn=lambda v: v["conv1"] * 9 + v["conv1"] * v["conv2"])
        >>> space.base_arch
        (64, 128)
        >>> space.cost((32, 96))
        3360
    """

    def __init__(
        self,
        layers: Sequence[SearchLayer],
        cost_fn: Callable[[Arch], float],
        build_fn: Callable[[Arch], Any] | None = None,
        features_fn: Callable[[Arch], Mapping[str, float]] | None = None,
        importance: Callable[[Sequence[Any]], Any] | None = None,
    ):
        if not layers:
            raise ValueError(
                "The search space is empty: it has no searchable layer. "
                "Give at least one layer with two or more options."
            )
        names = [layer.name for layer in layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Searchable layer names must be unique; repeated: {duplicates}.")
        for layer in layers:
            if not layer.options:
                raise ValueError(f"Layer {layer.name!r} has an empty option list.")
        self.layers = list(layers)
        self._cost_fn = cost_fn
        self._build_fn = build_fn
        self._features_fn = features_fn
        # kernels -> per-channel scores: the channels materialize keeps and the
        # data-free score counts (None for spaces without a model)
        self.importance = importance

    # -- what the search core sees -------------------------------------------------
    @property
    def options(self) -> list[list]:
        """Option lists in search order, ready for ``LayerNAS(space.options, space.cost)``."""
        return [list(layer.options) for layer in self.layers]

    @property
    def base_arch(self) -> Arch:
        """The architecture of the base model (every layer at option 0)."""
        return tuple(layer.options[0] for layer in self.layers)

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def cost(self, arch: Sequence) -> float:
        """Cost (MAdds for model spaces) of ``arch`` without building it."""
        return self._cost_fn(self.check_arch(arch))

    def features(self, arch: Sequence) -> dict[str, float]:
        """Cost components of ``arch`` without building it (model spaces only).

        A cost model other than MAdds (e.g. a fitted latency model) needs the
        work split by kind: dense convs, depthwise convs and memory traffic
        run at different speeds.

        Returns:
            ``{feature name: value}``, the same names for every architecture.

        Raises:
            NotImplementedError: the space was built without ``features_fn``.
        """
        if self._features_fn is None:
            raise NotImplementedError(
                "This SearchSpace has no per-op cost features: build it with "
                "SearchSpace.from_model(model), or pass features_fn= to SearchSpace."
            )
        return dict(self._features_fn(self.check_arch(arch)))

    @property
    def has_features(self) -> bool:
        """Whether :meth:`features` is available."""
        return self._features_fn is not None

    def with_cost(self, cost_fn: Callable[[Arch], float]) -> "SearchSpace":
        """The same layers, builder and features, searched under another cost.

        Args:
            cost_fn: cost of an architecture tuple, e.g. a predicted latency.

        Returns:
            A new ``SearchSpace``; this one keeps its cost.

        Raises:
            TypeError: ``cost_fn`` is not callable.
        """
        if not callable(cost_fn):
            raise TypeError(
                "with_cost() takes a function arch -> cost. "
                f"Received: cost_fn of type {type(cost_fn).__name__}."
            )
        return SearchSpace(self.layers, cost_fn, self._build_fn, self._features_fn,
                           self.importance)

    def with_layers(self, layers: Sequence[SearchLayer]) -> "SearchSpace":
        """The same cost, builder and features over other ``layers``.

        For spaces that keep every searchable layer but change its options
        (fewer of them, or another one first); the cost and builder must still
        accept every option left.

        Raises:
            ValueError: ``layers`` are not this space's searchable layers, in order.
        """
        names = [layer.name for layer in layers]
        if names != self.names:
            raise ValueError(
                "with_layers() keeps every searchable layer, in order, and changes only their "
                f"options. Expected layers {self.names}; received {names}."
            )
        return SearchSpace(layers, self._cost_fn, self._build_fn, self._features_fn,
                           self.importance)

    def materialize(self, arch: Sequence):
        """Build the Keras model for ``arch``."""
        if self._build_fn is None:
            raise NotImplementedError(
                "This SearchSpace has no builder: pass build_fn= to "
                "SearchSpace.from_options, or build the model in your own hypermodel."
            )
        return self._build_fn(self.check_arch(arch))

    # -- helpers -----------------------------------------------------------------
    def check_arch(self, arch: Sequence) -> Arch:
        """Return ``arch`` as a tuple of this space's own option objects.

        A value equal to an option is replaced by the option itself, so that
        e.g. a plain ``(5, 96)`` restored from a saved search state becomes the
        ``KernelWidth(5, 96)`` that reports and materialize read fields of.

        Raises:
            ValueError: wrong arity, or a value that is no option of its layer.
        """
        arch = tuple(arch)
        if len(arch) != len(self.layers):
            raise ValueError(
                f"An architecture needs one value per searchable layer "
                f"({len(self.layers)}); received {len(arch)} values: {arch!r}."
            )
        canonical = []
        for layer, value in zip(self.layers, arch):
            try:
                canonical.append(layer.options[layer.options.index(value)])
            except ValueError:
                raise ValueError(
                    f"{value!r} is not an option of layer {layer.name!r}; "
                    f"expected one of {list(layer.options)}."
                ) from None
        return tuple(canonical)

    def as_dict(self, arch: Sequence) -> dict[str, Any]:
        """``{layer name: value}`` for ``arch``."""
        return dict(zip(self.names, self.check_arch(arch)))

    def encode(self, arch: Sequence) -> dict[str, Any]:
        """``{layer name: hp.Choice-safe value}`` for ``arch``."""
        return {l.name: l.encode(v) for l, v in zip(self.layers, self.check_arch(arch))}

    def decode(self, values: Mapping[str, Any]) -> Arch:
        """Inverse of :meth:`encode` (e.g. from a KerasTuner trial's hyperparameters)."""
        missing = [l.name for l in self.layers if l.name not in values]
        if missing:
            raise ValueError(f"Values for searchable layers {missing} are missing.")
        return tuple(l.decode(values[l.name]) for l in self.layers)

    @property
    def num_architectures(self) -> int:
        """Product of the option counts (the paper's prod |S|)."""
        return math.prod(len(layer.options) for layer in self.layers)

    def max_trials(self, num_buckets: int = 100, per_bucket: int = 3) -> int:
        """LayerNAS's upper bound on evaluations: H x k x sum |S|."""
        return num_buckets * per_bucket * sum(len(layer.options) for layer in self.layers)

    def __repr__(self) -> str:
        return (
            f"SearchSpace({len(self.layers)} layers, "
            f"{self.num_architectures:.3g} architectures)"
        )

    # -- constructors ----------------------------------------------------------------
    @classmethod
    def from_options(
        cls,
        named_options: Mapping[str, Sequence],
        cost_fn: Callable[[dict[str, Any]], float],
        build_fn: Callable[[dict[str, Any]], Any] | None = None,
    ) -> "SearchSpace":
        """A space over a user's own named options.

        Args:
            named_options: ``{name: [base value, cheaper values...]}`` in search order.
            cost_fn: cost of an architecture given as ``{name: value}``.
            build_fn: optional; builds a Keras model from ``{name: value}``.

        Returns:
            A ``SearchSpace`` whose layers have kind ``"option"``.
        """
        if not isinstance(named_options, Mapping):
            raise TypeError(
                "named_options must be a mapping {layer name: [options]}; "
                f"received {type(named_options).__name__}."
            )
        layers = [SearchLayer(str(n), "option", tuple(o)) for n, o in named_options.items()]
        names = [layer.name for layer in layers]

        def cost(arch: Arch) -> float:
            return cost_fn(dict(zip(names, arch)))

        build = None
        if build_fn is not None:
            def build(arch: Arch):
                return build_fn(dict(zip(names, arch)))

        return cls(layers, cost, build)

    @classmethod
    def from_model(cls, model, **kwargs) -> "SearchSpace":
        """A space that slims an existing functional/Sequential Keras model.

        See :func:`keras_layernas.surgery.model_space.space_parts` for the
        arguments. The Keras side is imported here, on use, and never imports
        this module back.
        """
        from keras_layernas.surgery.model_space import space_parts

        return cls(**space_parts(model, **kwargs))


def space_from_model(model, **kwargs) -> SearchSpace:
    """``SearchSpace.from_model(model, **kwargs)``: the search space that slims ``model``.

    See :func:`keras_layernas.surgery.model_space.space_parts` for the arguments.
    """
    return SearchSpace.from_model(model, **kwargs)
