"""One searchable layer of a search space, and the architecture type.

Its own module so that both the plain contract (``space.py``) and the Keras
side that builds a model's layers (``model_space.py``) can import it without
importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Arch = tuple


def encode_option(value: Any) -> int | float | str | bool:
    """The one text-safe form of an option: itself if a JSON/``hp.Choice`` scalar, else ``str``.

    The oracle's hyperparameters, the resume fingerprints, the report and the
    chief -> worker hand-off all write options this way, and
    :meth:`SearchLayer.decode` reads them back.

    Example:
        >>> encode_option(96), encode_option((5, 96))
        (96, '(5, 96)')
    """
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@dataclass(frozen=True)
class SearchLayer:
    """One searchable layer.

    Attributes:
        name: stable, unique name (also the KerasTuner hyperparameter name).
        kind: what the options change, e.g. ``"block_filter"``, ``"expand"``,
            ``"kernel_expand"``, ``"width"`` or ``"option"``.
        options: candidate values; ``options[0]`` is the base model's choice.
        members: names of the model layers this searchable layer changes.
        owners: the members whose channels or kernel it sets (producers and
            per-channel followers), i.e. ``members`` without the layers that
            only read those channels; empty when the space does not know.
    """

    name: str
    kind: str
    options: tuple
    members: tuple = field(default=())
    owners: tuple = field(default=())

    def encode(self, value: Any) -> int | float | str | bool:
        """The ``hp.Choice``-safe form of an option value (stable across runs)."""
        return encode_option(value)

    def decode(self, encoded: Any) -> Any:
        """Inverse of :meth:`encode`.

        Raises:
            ValueError: ``encoded`` is not one of this layer's options.
        """
        for value in self.options:
            if self.encode(value) == encoded:
                return value
        raise ValueError(
            f"{encoded!r} is not an option of layer {self.name!r}. "
            f"Expected one of {[self.encode(v) for v in self.options]}."
        )
