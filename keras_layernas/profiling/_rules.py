"""Per-layer-type MAdds rules: which Keras layer costs what, given its shapes.

Each rule reads the layer's configuration and the shapes of one call and hands
the arithmetic to :mod:`keras_layernas.profiling.formulas`, so the profiler and
the surgery cost model share one convention. Shapes include the batch
dimension; the cost is per sample.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Optional, Sequence

import keras

from keras_layernas.profiling import formulas

Shape = tuple
# rule(layer, input_shapes, output_shapes) -> MAdds of that call
Rule = Callable[[keras.layers.Layer, Sequence[Shape], Sequence[Shape]], int]


class UnknownSizeError(ValueError):
    """A counted layer has an unknown (None) dimension, so its MAdds are undefined."""


def _spatial(layer: keras.layers.Layer, shape: Shape) -> tuple:
    """The spatial part of a conv input/output shape, honouring data_format."""
    spatial = shape[2:] if layer.data_format == "channels_first" else shape[1:-1]
    if any(d is None for d in spatial):
        raise UnknownSizeError(
            f"layer {layer.name!r} ({type(layer).__name__}) has shape {shape} "
            "with an unknown spatial size"
        )
    return tuple(spatial)


def _channels(layer: keras.layers.Layer, shape: Shape) -> int:
    # Read off the call's shape rather than the kernel: cheaper than a
    # variable's shape and identical for a built layer.
    return shape[1] if layer.data_format == "channels_first" else shape[-1]


def _conv(layer, input_shapes, output_shapes) -> int:
    return formulas.conv_madds(
        kernel_size=layer.kernel_size,
        in_channels=_channels(layer, input_shapes[0]),
        out_channels=layer.filters,
        output_spatial=_spatial(layer, output_shapes[0]),
        groups=layer.groups,
    )


def _depthwise(layer, input_shapes, output_shapes) -> int:
    return formulas.depthwise_madds(
        kernel_size=layer.kernel_size,
        in_channels=_channels(layer, input_shapes[0]),
        output_spatial=_spatial(layer, output_shapes[0]),
        depth_multiplier=layer.depth_multiplier,
    )


def _separable(layer, input_shapes, output_shapes) -> int:
    return formulas.separable_madds(
        kernel_size=layer.kernel_size,
        in_channels=_channels(layer, input_shapes[0]),
        out_channels=layer.filters,
        output_spatial=_spatial(layer, output_shapes[0]),
        depth_multiplier=layer.depth_multiplier,
    )


def _conv_transpose(layer, input_shapes, output_shapes) -> int:
    return formulas.conv_transpose_madds(
        kernel_size=layer.kernel_size,
        in_channels=_channels(layer, input_shapes[0]),
        out_channels=layer.filters,
        input_spatial=_spatial(layer, input_shapes[0]),
    )


def _dense(layer, input_shapes, output_shapes) -> int:
    # Dense on a rank>2 input applies the same matrix at every leading position.
    leading = output_shapes[0][1:-1]
    if any(d is None for d in leading):
        raise UnknownSizeError(
            f"layer {layer.name!r} (Dense) has output shape {output_shapes[0]} "
            "with an unknown leading dimension"
        )
    return formulas.dense_madds(input_shapes[0][-1], layer.units, math.prod(leading))


def _free(layer, input_shapes, output_shapes) -> int:
    return 0


_RULES: dict[type, Rule] = {
    keras.layers.Conv1D: _conv,
    keras.layers.Conv2D: _conv,
    keras.layers.Conv3D: _conv,
    keras.layers.DepthwiseConv1D: _depthwise,
    keras.layers.DepthwiseConv2D: _depthwise,
    keras.layers.SeparableConv1D: _separable,
    keras.layers.SeparableConv2D: _separable,
    keras.layers.Conv1DTranspose: _conv_transpose,
    keras.layers.Conv2DTranspose: _conv_transpose,
    keras.layers.Conv3DTranspose: _conv_transpose,
    keras.layers.Dense: _dense,
    # Layers with weights that the convention counts as free (folded into the
    # neighbouring conv at inference, as in the published tables).
    keras.layers.BatchNormalization: _free,
    keras.layers.LayerNormalization: _free,
    keras.layers.GroupNormalization: _free,
    keras.layers.Normalization: _free,
}


@functools.lru_cache(maxsize=None)
def rule_for(layer_type: type) -> Optional[Rule]:
    """The rule of ``layer_type`` or of its nearest known base class.

    Returns:
        The rule, or None when no class in the MRO has one (the caller then
        decides between "free" for weightless layers and "unknown").
    """
    for cls in layer_type.__mro__:
        if cls in _RULES:
            return _RULES[cls]
    return None
