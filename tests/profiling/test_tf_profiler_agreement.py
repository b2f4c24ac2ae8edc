"""count_madds agrees exactly with TensorFlow's own graph profiler.

TF's profiler is an independent implementation (it reads the frozen TF graph,
not Keras layers), so agreement on whole models checks both the formulas and
the graph walk. About 1.5 s per model, hence slow.
"""
from __future__ import annotations

import keras
import pytest

from keras_layernas.profiling import count_madds, tf_profiler_madds

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "build, input_shape",
    [
        (lambda: keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3)), None),
        (lambda: keras.applications.MobileNetV3Small(weights=None, alpha=0.75), (96, 96, 3)),
    ],
    ids=["mobilenet_v2_0.35_96", "mobilenet_v3_small_0.75_96"],
)
def test_count_equals_tf_profiler_conv_depthwise_matmul_sum(build, input_shape):
    model = build()
    ours = count_madds(model, input_shape)
    assert ours > 0
    assert ours == tf_profiler_madds(model, input_shape)


def test_count_equals_tf_profiler_for_conv1d_conv3d_separable_and_rank3_dense():
    inputs = keras.Input((6, 6, 6, 2))
    x = keras.layers.Conv3D(4, 3, padding="same")(inputs)
    x = keras.layers.Reshape((36, 24))(x)
    x = keras.layers.Conv1D(8, 3, strides=2)(x)
    x = keras.layers.SeparableConv1D(6, 3, depth_multiplier=2)(x)
    outputs = keras.layers.Dense(5)(x)
    model = keras.Model(inputs, outputs)

    ops = ("Conv2D", "Conv3D", "DepthwiseConv2dNative", "MatMul", "BatchMatMulV2")
    assert count_madds(model) == tf_profiler_madds(model, op_types=ops)
