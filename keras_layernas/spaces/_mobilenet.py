"""A from-scratch MobileNet (V2/V3 family) builder and its analytic MAdds.

The paper's search spaces use block sizes that ``keras.applications`` cannot
express, so the network is described by a small spec and built here. The MAdds
of a spec are computed with the same formulas the profiler uses
(:mod:`keras_layernas.profiling.formulas`), which keeps ``space.cost(arch)`` and
the count read off the built model equal by construction.

Layout: stem conv 3x3 (stride 2) -> bnecks -> optional 1x1 convs at full
resolution -> global average pool -> 1x1 convs on the pooled vector ->
1x1 classifier -> softmax. A bneck is expand 1x1 (skipped when ``expanded`` is
None) -> depthwise kxk -> optional squeeze-excite -> linear project 1x1, with
a residual add when its stride is 1 and its input and output widths agree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from keras_layernas.profiling.formulas import conv_madds, depthwise_madds

SE_RATIO = 0.25
SE_DIVISOR = 8
_ACTIVATIONS = ("relu", "relu6", "hard_swish")


@dataclass(frozen=True)
class BneckSpec:
    """One inverted-residual block of a concrete network.

    Attributes:
        name: prefix of the Keras layer names of this block.
        kernel: depthwise kernel size.
        expanded: width after the expand 1x1; None means no expand conv (the
            first bneck of MobileNet works on its input width directly).
        filters: output width of the linear projection.
        stride: depthwise stride.
        squeeze_excite: whether a squeeze-excite gate follows the depthwise conv.
        activation: ``"relu"``, ``"relu6"`` or ``"hard_swish"``.

    Example:
        >>> BneckSpec("block1_bneck1", kernel=5, expanded=72, filters=24, stride=2,
        ...           squeeze_excite=True, activation="relu").expanded
        72
    """

    name: str
    kernel: int
    expanded: int | None
    filters: int
    stride: int
    squeeze_excite: bool
    activation: str


@dataclass(frozen=True)
class MobileNetSpec:
    """A concrete MobileNet-like network (no option left open).

    Example:
        >>> spec = MobileNetSpec(
        ...     stem_filters=8, stem_activation="relu6",
        ...     bnecks=(BneckSpec("b1", 3, 16, 8, 1, False, "relu6"),),
        ...     pre_pool_convs=(), post_pool_convs=(32,), head_activation="relu6",
        ...     num_classes=10, input_size=32)
        >>> # 16x16 after the stem: stem, expand, depthwise, project; then 1x1 head convs.
        >>> mobilenet_madds(spec) == 16 * 16 * (9 * 3 * 8 + 8 * 16 + 9 * 16 + 16 * 8) + 8 * 32 + 32 * 10
        True
    """

    stem_filters: int
    stem_activation: str
    bnecks: tuple[BneckSpec, ...]
    pre_pool_convs: tuple[int, ...]
    post_pool_convs: tuple[int, ...]
    head_activation: str
    num_classes: int = 1001
    input_size: int = 224

    def __post_init__(self):
        activations = [self.stem_activation, self.head_activation]
        activations += [bneck.activation for bneck in self.bnecks]
        unknown = sorted(set(activations) - set(_ACTIVATIONS))
        if unknown:
            raise ValueError(
                f"Unknown activation(s) {unknown}. Expected one of {list(_ACTIVATIONS)}."
            )
        if self.input_size < 1:
            raise ValueError(
                f"input_size must be a positive number of pixels. "
                f"Received: input_size={self.input_size}"
            )


def se_width(expanded: int) -> int:
    """Squeeze-excite bottleneck width: MobileNetV3's ``expanded / 4`` rounded to 8.

    Rounds to the nearest multiple of 8 but never more than 10 % below the
    exact value, as MobileNetV3's ``_make_divisible`` does.

    >>> se_width(16), se_width(72), se_width(240)
    (8, 24, 64)
    """
    exact = expanded * SE_RATIO
    width = max(SE_DIVISOR, int(exact + SE_DIVISOR / 2) // SE_DIVISOR * SE_DIVISOR)
    if width < 0.9 * exact:
        width += SE_DIVISOR
    return width


def _strided(size: int, stride: int) -> int:
    # "same" padding: the output covers ceil(size / stride) positions.
    return math.ceil(size / stride)


def mobilenet_madds(spec: MobileNetSpec) -> int:
    """MAdds of ``spec`` without building it (profiler convention, see formulas.py).

    Args:
        spec: the network.

    Returns:
        Multiply-adds of every conv / depthwise conv, squeeze-excite and the
        classifier; BatchNorm, activations, pooling and adds count 0.
    """
    size = _strided(spec.input_size, 2)
    madds = conv_madds((3, 3), 3, spec.stem_filters, (size, size))
    channels = spec.stem_filters
    for bneck in spec.bnecks:
        width = channels
        if bneck.expanded is not None:
            madds += conv_madds((1, 1), channels, bneck.expanded, (size, size))
            width = bneck.expanded
        size = _strided(size, bneck.stride)
        madds += depthwise_madds((bneck.kernel, bneck.kernel), width, (size, size))
        if bneck.squeeze_excite:
            squeezed = se_width(width)
            madds += conv_madds((1, 1), width, squeezed, (1, 1))
            madds += conv_madds((1, 1), squeezed, width, (1, 1))
        madds += conv_madds((1, 1), width, bneck.filters, (size, size))
        channels = bneck.filters
    for filters in spec.pre_pool_convs:
        madds += conv_madds((1, 1), channels, filters, (size, size))
        channels = filters
    for filters in spec.post_pool_convs + (spec.num_classes,):
        madds += conv_madds((1, 1), channels, filters, (1, 1))
        channels = filters
    return madds


def build_mobilenet(spec: MobileNetSpec, name: str = "mobilenet"):
    """Build ``spec`` as a functional ``keras.Model`` (fresh weights).

    Args:
        spec: the network.
        name: the model's name.

    Returns:
        A model from ``(input_size, input_size, 3)`` images to ``num_classes``
        softmax probabilities, made only of built-in Keras layers so it saves
        and loads with ``safe_mode=True``.
    """
    # Imported here so that spaces (and their analytic cost) load without TensorFlow.
    import keras
    from keras import layers

    def conv_bn_act(x, filters, kernel, stride, activation, prefix):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same",
                          use_bias=False, name=prefix)(x)
        x = layers.BatchNormalization(name=f"{prefix}_bn")(x)
        if activation is not None:
            x = layers.Activation(activation, name=f"{prefix}_act")(x)
        return x

    def squeeze_excite(x, width, prefix):
        gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}_pool")(x)
        gate = layers.Conv2D(se_width(width), 1, name=f"{prefix}_reduce")(gate)
        gate = layers.Activation("relu", name=f"{prefix}_relu")(gate)
        gate = layers.Conv2D(width, 1, name=f"{prefix}_expand")(gate)
        gate = layers.Activation("hard_sigmoid", name=f"{prefix}_gate")(gate)
        return layers.Multiply(name=f"{prefix}_multiply")([x, gate])

    inputs = keras.Input((spec.input_size, spec.input_size, 3), name="image")
    x = conv_bn_act(inputs, spec.stem_filters, 3, 2, spec.stem_activation, "stem_conv")
    channels = spec.stem_filters
    for bneck in spec.bnecks:
        shortcut = x
        width = channels
        if bneck.expanded is not None:
            x = conv_bn_act(x, bneck.expanded, 1, 1, bneck.activation, f"{bneck.name}_expand")
            width = bneck.expanded
        x = layers.DepthwiseConv2D(bneck.kernel, strides=bneck.stride, padding="same",
                                   use_bias=False, name=f"{bneck.name}_depthwise")(x)
        x = layers.BatchNormalization(name=f"{bneck.name}_depthwise_bn")(x)
        x = layers.Activation(bneck.activation, name=f"{bneck.name}_depthwise_act")(x)
        if bneck.squeeze_excite:
            x = squeeze_excite(x, width, f"{bneck.name}_se")
        x = conv_bn_act(x, bneck.filters, 1, 1, None, f"{bneck.name}_project")
        if bneck.stride == 1 and channels == bneck.filters:
            x = layers.Add(name=f"{bneck.name}_add")([shortcut, x])
        channels = bneck.filters
    for index, filters in enumerate(spec.pre_pool_convs, start=1):
        x = conv_bn_act(x, filters, 1, 1, spec.head_activation, f"pre_pool_conv{index}")
    x = layers.GlobalAveragePooling2D(keepdims=True, name="pool")(x)
    for index, filters in enumerate(spec.post_pool_convs, start=1):
        # After pooling, as in MobileNetV3's head: a biased conv, no BatchNorm.
        x = layers.Conv2D(filters, 1, name=f"post_pool_conv{index}")(x)
        x = layers.Activation(spec.head_activation, name=f"post_pool_conv{index}_act")(x)
    x = layers.Conv2D(spec.num_classes, 1, name="classifier")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)
