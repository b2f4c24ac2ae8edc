"""The shared cost formulas, checked against hand-computed counts."""
from __future__ import annotations

import subprocess
import sys

from keras_layernas.profiling import formulas


def test_conv_madds_is_positions_times_kernel_times_channels():
    # 112x112 outputs, 3x3 kernel, 3 -> 32 channels (MobileNetV2's stem)
    assert formulas.conv_madds((3, 3), 3, 32, (112, 112)) == 112 * 112 * 9 * 3 * 32


def test_grouped_conv_divides_input_channels_by_groups():
    assert formulas.conv_madds((3, 3), 8, 12, (7, 7), groups=4) == 49 * 9 * 2 * 12


def test_depthwise_madds_has_one_filter_per_channel_and_multiplier():
    assert formulas.depthwise_madds((3, 3), 16, (56, 56)) == 56 * 56 * 9 * 16
    assert formulas.depthwise_madds((5,), 4, (10,), depth_multiplier=3) == 10 * 5 * 4 * 3


def test_separable_madds_is_depthwise_plus_pointwise():
    depthwise = 7 * 7 * 9 * 4 * 2
    pointwise = 7 * 7 * (4 * 2) * 6
    assert formulas.separable_madds((3, 3), 4, 6, (7, 7), depth_multiplier=2) == depthwise + pointwise


def test_conv_transpose_madds_follows_input_positions():
    assert formulas.conv_transpose_madds((3, 3), 4, 6, (5, 5)) == 25 * 9 * 4 * 6


def test_dense_madds_scales_with_leading_positions():
    assert formulas.dense_madds(1280, 1000) == 1_280_000
    assert formulas.dense_madds(5, 3, leading_positions=7) == 105


def test_formulas_import_without_keras_or_tensorflow():
    # The surgery cost model computes costs without building models; importing
    # the formulas must not drag in TensorFlow (seconds, and process-wide state).
    code = (
        "import sys, keras_layernas.profiling.formulas; "
        "print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
