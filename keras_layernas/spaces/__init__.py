"""The LayerNAS paper's MobileNet search spaces, for reproducing its ImageNet runs.

    space = layernas.spaces.paper_space("mobilenet_v2_300m")
    space.cost(space.base_arch)        # MAdds, no model built
    model = space.materialize(arch)    # a fresh 224x224, 1001-class Keras model

See docs/paper-spaces.md for how the (OCR-damaged) paper tables were read.
"""
from __future__ import annotations

from keras_layernas.spaces._mobilenet import (
    BneckSpec,
    MobileNetSpec,
    build_mobilenet,
    mobilenet_madds,
)
from keras_layernas.spaces._paper import PAPER_SPACES, BneckChoice, paper_space

__all__ = [
    "PAPER_SPACES",
    "BneckChoice",
    "BneckSpec",
    "MobileNetSpec",
    "build_mobilenet",
    "mobilenet_madds",
    "paper_space",
]
