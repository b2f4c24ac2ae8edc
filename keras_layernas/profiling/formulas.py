"""Multiply-add formulas shared by the profiler and the surgery cost model.

One place defines the cost convention so that ``SearchSpace.cost(arch)`` (computed
without building a model) and ``count_madds(model)`` (read off a built model) can
never drift apart. Plain Python: no Keras import.

Convention (the one under which the published MobileNet figures are reproduced):
one multiply-add per kernel weight per output position; biases, BatchNorm,
activations, pooling, residual adds and preprocessing cost 0.
"""
from __future__ import annotations

import math
from typing import Sequence


def conv_madds(
    kernel_size: Sequence[int],
    in_channels: int,
    out_channels: int,
    output_spatial: Sequence[int],
    groups: int = 1,
) -> int:
    """MAdds of a (possibly grouped) N-D convolution.

    Args:
        kernel_size: spatial kernel extent, e.g. ``(3, 3)``.
        in_channels: input channels.
        out_channels: output channels (filters).
        output_spatial: spatial size of the output, e.g. ``(112, 112)``.
        groups: channel groups (``in_channels`` for a depthwise conv).

    Returns:
        Output positions x kernel volume x (in_channels / groups) x out_channels.
    """
    return (
        math.prod(output_spatial)
        * math.prod(kernel_size)
        * (in_channels // groups)
        * out_channels
    )


def depthwise_madds(
    kernel_size: Sequence[int],
    in_channels: int,
    output_spatial: Sequence[int],
    depth_multiplier: int = 1,
) -> int:
    """MAdds of a depthwise convolution (one filter per input channel)."""
    return math.prod(output_spatial) * math.prod(kernel_size) * in_channels * depth_multiplier


def dense_madds(in_features: int, units: int, leading_positions: int = 1) -> int:
    """MAdds of a Dense layer applied at ``leading_positions`` positions."""
    return leading_positions * in_features * units


def separable_madds(
    kernel_size: Sequence[int],
    in_channels: int,
    out_channels: int,
    output_spatial: Sequence[int],
    depth_multiplier: int = 1,
) -> int:
    """MAdds of a separable convolution: depthwise, then a 1x1 pointwise conv.

    The pointwise step runs at the depthwise output's positions (it has stride
    1), so both parts share ``output_spatial``.
    """
    depthwise = depthwise_madds(kernel_size, in_channels, output_spatial, depth_multiplier)
    pointwise = conv_madds(
        (1,) * len(kernel_size), in_channels * depth_multiplier, out_channels, output_spatial
    )
    return depthwise + pointwise


def conv_transpose_madds(
    kernel_size: Sequence[int],
    in_channels: int,
    out_channels: int,
    input_spatial: Sequence[int],
) -> int:
    """MAdds of a transposed convolution.

    Every input position scatters one full kernel into the output, so the cost
    follows the *input* positions (the output size depends on stride/padding,
    the work does not).
    """
    return math.prod(input_spatial) * math.prod(kernel_size) * in_channels * out_channels
