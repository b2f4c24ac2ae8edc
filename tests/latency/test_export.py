"""Behaviour of keras_layernas.latency.export: TFLite files, LiteRT latency, the tf_keras bridge."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_layernas.latency import export
from tests._cifar import TEST_IMAGES, cifar10_pixels, mobilenet_scaling, trained_cnn

REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------
# helpers and fixtures


def smooth_images(seed: int, count: int, size: int, cells: int = 4) -> np.ndarray:
    """Blocky random images in [-1, 1].

    Low-frequency on purpose: i.i.d. pixel noise averages out in global pooling,
    so every image would get the same prediction and top-1 agreement would
    measure nothing.
    """
    low = np.random.default_rng(seed).uniform(-1, 1, (count, cells, cells, 3))
    return np.repeat(np.repeat(low, size // cells, axis=1), size // cells, axis=2).astype(
        np.float32
    )


def calibrate_batchnorm(model: keras.Model, images: np.ndarray) -> None:
    """Sets every BatchNormalization's moving statistics to those of ``images``.

    With random weights and the default statistics (mean 0, variance 1) the
    activations of MobileNetV2 shrink layer after layer (its logits are ~1e-10),
    so any two runtimes would agree trivially. With momentum 0, one training
    pass stores exactly the batch statistics it normalized with.
    """
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    model(images, training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum


def tflite_predict(path: Path, images: np.ndarray) -> np.ndarray:
    """Runs a .tflite file one image at a time, as a phone would."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    outputs = []
    for image in images:
        interpreter.set_tensor(input_index, image[None])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(output_index)[0])
    return np.stack(outputs)


def centered_correlation(got: np.ndarray, expected: np.ndarray) -> float:
    """Pearson correlation of outputs after removing each class's mean.

    The per-class mean is the same for every image, so it would inflate the
    correlation without saying anything about per-image predictions.
    """
    got, expected = got - got.mean(0), expected - expected.mean(0)
    return float(np.sum(got * expected) / np.sqrt(np.sum(got**2) * np.sum(expected**2)))


def tensor_dtypes(path: Path) -> set:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    return {np.dtype(detail["dtype"]) for detail in interpreter.get_tensor_details()}


def small_cnn(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(16, 3, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.Conv2D(32, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10)(x))


@pytest.fixture(scope="module")
def cnn() -> keras.Model:
    model = small_cnn()
    calibrate_batchnorm(model, smooth_images(1, 64, 16))
    return model


@pytest.fixture(scope="module")
def cnn_tflite(cnn, tmp_path_factory) -> Path:
    return export.export_tflite(cnn, tmp_path_factory.mktemp("cnn") / "cnn.tflite")


@pytest.fixture(scope="module")
def mobilenet() -> keras.Model:
    keras.utils.set_random_seed(0)
    # Logits, not softmax: 1000 random-weight probabilities of ~0.001 all
    # quantize to the same int8 value, which would make top-1 a tie.
    model = keras.applications.MobileNetV2(
        weights=None, alpha=0.35, input_shape=(96, 96, 3), classifier_activation=None
    )
    calibrate_batchnorm(model, smooth_images(1, 64, 96))
    return model


@pytest.fixture(scope="module")
def mobilenet_images() -> np.ndarray:
    return smooth_images(2, 64, 96)


@pytest.fixture(scope="module")
def mobilenet_tflite(mobilenet, tmp_path_factory) -> Path:
    return export.export_tflite(mobilenet, tmp_path_factory.mktemp("mnv2") / "float.tflite")


# --------------------------------------------------------------------------
# import hygiene


def test_importing_export_pulls_in_neither_tfmot_nor_tf_keras():
    # A fresh interpreter: this test process may already have imported them.
    probe = (
        "import sys, keras_layernas; keras_layernas.latency.export; "
        "print(sorted(m for m in ('tensorflow_model_optimization', 'tf_keras') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------
# export_tflite: errors (all raised before any conversion)


def test_unknown_quantize_mode_is_rejected_with_the_value(cnn, tmp_path):
    with pytest.raises(ValueError, match=r"Received: quantize='int4'"):
        export.export_tflite(cnn, tmp_path / "m.tflite", quantize="int4")


def test_int8_without_representative_data_is_rejected(cnn, tmp_path):
    with pytest.raises(ValueError, match="representative_data=None"):
        export.export_tflite(cnn, tmp_path / "m.tflite", quantize="int8")


def test_representative_data_without_int8_is_rejected(cnn, tmp_path):
    with pytest.raises(ValueError, match="quantize='float16' with representative_data"):
        export.export_tflite(
            cnn, tmp_path / "m.tflite", quantize="float16", representative_data=np.zeros((1, 16, 16, 3))
        )


def test_missing_folder_is_rejected(cnn, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        export.export_tflite(cnn, tmp_path / "absent" / "m.tflite")


def test_folder_given_as_path_is_rejected(cnn, tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        export.export_tflite(cnn, tmp_path)


def test_non_keras_model_is_rejected(tmp_path):
    with pytest.raises(TypeError, match="Received: model of type str"):
        export.export_tflite("model.keras", tmp_path / "m.tflite")


def test_calibration_data_of_wrong_shape_is_rejected(cnn, tmp_path):
    with pytest.raises(ValueError, match=r"Received: a batch of shape \(4, 8, 8, 3\)"):
        export.export_tflite(
            cnn, tmp_path / "m.tflite", quantize="int8", representative_data=np.zeros((4, 8, 8, 3))
        )


def test_empty_calibration_data_is_rejected(cnn, tmp_path):
    with pytest.raises(ValueError, match="no samples"):
        export.export_tflite(
            cnn, tmp_path / "m.tflite", quantize="int8", representative_data=np.zeros((0, 16, 16, 3))
        )


def test_calibration_data_of_unsupported_type_is_rejected(cnn, tmp_path):
    with pytest.raises(TypeError, match="Received: representative_data of type list"):
        export.export_tflite(cnn, tmp_path / "m.tflite", quantize="int8", representative_data=[1, 2])


# --------------------------------------------------------------------------
# export_tflite: outputs


def test_float_tflite_reproduces_keras_outputs(cnn, cnn_tflite):
    images = smooth_images(2, 16, 16)
    expected = cnn.predict(images, verbose=0)
    np.testing.assert_allclose(tflite_predict(cnn_tflite, images), expected, atol=1e-5)
    assert [p.name for p in cnn_tflite.parent.iterdir()] == ["cnn.tflite"]  # no temp left
    umask = os.umask(0)
    os.umask(umask)
    assert cnn_tflite.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not 0600


def test_int8_small_cnn_runs_integer_ops_and_keeps_top1(cnn, tmp_path):
    path = export.export_tflite(
        cnn, tmp_path / "int8.tflite", quantize="int8", representative_data=smooth_images(1, 64, 16)
    )
    images = smooth_images(2, 64, 16)
    agreement = np.mean(
        tflite_predict(path, images).argmax(1) == cnn.predict(images, verbose=0).argmax(1)
    )
    assert agreement >= 0.95  # measured 1.0
    assert np.dtype(np.int8) in tensor_dtypes(path)


@pytest.mark.slow
def test_calibration_accepts_array_dataset_and_callable_alike(cnn, tmp_path):
    images = smooth_images(1, 16, 16)
    labels = np.zeros(16)
    forms = {
        "array": images,
        "dataset_of_pairs": tf.data.Dataset.from_tensor_slices((images, labels)).batch(4),
        "unbatched_dataset": tf.data.Dataset.from_tensor_slices(images),
        "callable": lambda: ([batch] for batch in np.split(images, 4)),
    }
    files = {
        name: export.export_tflite(
            cnn, tmp_path / f"{name}.tflite", quantize="int8", representative_data=data
        ).read_bytes()
        for name, data in forms.items()
    }
    # Same samples, same calibration ranges, same bytes.
    assert len(set(files.values())) == 1


# --------------------------------------------------------------------------
# input_range: calibration data scaled unlike the training data is refused


def test_raw_pixels_for_a_model_trained_on_minus_one_to_one_are_refused(cnn, tmp_path):
    pixels = (smooth_images(1, 64, 16) + 1) * 127.5
    with pytest.raises(ValueError, match=r"spans \[\d.*, 25\d.*\].*input_range=\(-1, 1\)"):
        export.export_tflite(cnn, tmp_path / "m.tflite", quantize="int8",
                             representative_data=pixels, input_range=(-1, 1))
    assert list(tmp_path.iterdir()) == []


def test_inputs_scaled_twice_are_refused_as_too_narrow(cnn, tmp_path):
    twice = smooth_images(1, 64, 16) / 127.5 - 1  # [-1, 1] images scaled again
    with pytest.raises(ValueError, match=r"spans \[-1.008, -0.992\d*\]"):
        export.export_tflite(cnn, tmp_path / "m.tflite", quantize="int8",
                             representative_data=twice, input_range=(-1, 1))


@pytest.mark.parametrize("quantize, input_range, message", [
    (None, (-1, 1), "input_range checks int8 calibration data"),
    ("int8", (1, -1), r"low < high.*Received: input_range=\(1, -1\)"),
    ("int8", (0, float("nan")), "low < high"),
    ("int8", "01", "low < high"),
])
def test_bad_input_range_is_rejected(cnn, tmp_path, quantize, input_range, message):
    data = smooth_images(1, 4, 16) if quantize else None
    with pytest.raises(ValueError, match=message):
        export.export_tflite(cnn, tmp_path / "m.tflite", quantize=quantize,
                             representative_data=data, input_range=input_range)


# --------------------------------------------------------------------------
# evaluate_tflite


def test_evaluate_float_file_agrees_with_keras_and_takes_one_hot_labels(cnn, cnn_tflite):
    images = smooth_images(2, 32, 16)
    keras_classes = cnn.predict(images, verbose=0).argmax(1)
    labels = keras_classes.copy()
    labels[:8] = (labels[:8] + 1) % 10  # a quarter wrong on purpose
    check = export.evaluate_tflite(cnn_tflite, images, labels, keras_model=cnn)
    assert check.samples == 32
    assert check.accuracy == check.keras_accuracy == 0.75
    assert check.top1_agreement == 1.0 and check.logit_correlation > 0.99999
    one_hot = export.evaluate_tflite(cnn_tflite, images, np.eye(10)[labels])
    assert one_hot.accuracy == 0.75 and one_hot.top1_agreement is None
    assert "accuracy 0.750 on 32 inputs" in str(one_hot)


def test_evaluate_rejects_a_missing_file_and_unmatched_labels(cnn_tflite, tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        export.evaluate_tflite(tmp_path / "absent.tflite", np.zeros((1, 16, 16, 3)), [0])
    with pytest.raises(ValueError, match=r"Received: x of shape \(4, 16, 16, 3\), y of shape \(3,\)"):
        export.evaluate_tflite(cnn_tflite, np.zeros((4, 16, 16, 3)), np.zeros(3))


# --------------------------------------------------------------------------
# the int8 deploy loop on real CIFAR-10 images


@pytest.fixture(scope="module")
def cifar_cnn(shared_dir) -> keras.Model:
    return trained_cnn(shared_dir)


@pytest.fixture(scope="module")
def cifar_test(shared_dir) -> tuple[np.ndarray, np.ndarray]:
    pixels, labels = cifar10_pixels(shared_dir, "test", TEST_IMAGES)
    return mobilenet_scaling(pixels), labels


@pytest.mark.slow
def test_int8_on_cifar10_follows_keras_only_when_calibrated_as_trained(
    shared_dir, cifar_cnn, cifar_test, tmp_path
):
    pixels, _ = cifar10_pixels(shared_dir, "train", 200)
    x, y = cifar_test
    good = export.export_tflite(cifar_cnn, tmp_path / "good.tflite", quantize="int8",
                                representative_data=mobilenet_scaling(pixels),
                                input_range=(-1, 1))
    check = export.evaluate_tflite(good, x, y, keras_model=cifar_cnn)
    # The README's old CLI flow: raw 0-255 pixels for a model trained on [-1, 1].
    ruined = export.export_tflite(cifar_cnn, tmp_path / "raw.tflite", quantize="int8",
                                  representative_data=pixels.astype(np.float32))
    ruin = export.evaluate_tflite(ruined, x, y, keras_model=cifar_cnn)
    print(f"calibrated as trained: {check}\nraw pixels: {ruin}")
    # Measured: agreement 0.988, correlation 0.9999, accuracy 0.376 vs Keras 0.372;
    # raw pixels: agreement 0.136, correlation 0.50, accuracy 0.126.
    assert check.keras_accuracy > 0.25  # the model learnt something (chance: 0.1)
    assert check.top1_agreement >= 0.95 and check.logit_correlation > 0.99
    assert abs(check.accuracy - check.keras_accuracy) <= 0.03
    assert ruin.top1_agreement < 0.6 and ruin.logit_correlation < 0.9
    assert ruin.accuracy < check.accuracy - 0.1
    with pytest.raises(ValueError, match="spans"):
        export.export_tflite(cifar_cnn, tmp_path / "refused.tflite", quantize="int8",
                             representative_data=pixels.astype(np.float32), input_range=(-1, 1))


def test_a_tf_keras_model_exports_through_the_same_call(cnn, tmp_path):
    pytest.importorskip("tf_keras", reason="tf_keras comes with the tfmot extra")
    legacy_model = export.to_tf_keras(cnn)
    path = export.export_tflite(legacy_model, tmp_path / "legacy.tflite")
    images = smooth_images(2, 16, 16)
    np.testing.assert_allclose(tflite_predict(path, images), cnn.predict(images, verbose=0),
                               atol=1e-5)


# --------------------------------------------------------------------------
# MobileNetV2 alpha 0.35 at 96x96


@pytest.mark.slow
def test_mobilenet_float_tflite_reproduces_keras_outputs(
    mobilenet, mobilenet_tflite, mobilenet_images
):
    expected = mobilenet.predict(mobilenet_images, verbose=0)
    got = tflite_predict(mobilenet_tflite, mobilenet_images)
    print(f"float32 max abs diff {np.abs(got - expected).max():.2e}, logits std {expected.std():.3f}")
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max())
    assert np.array_equal(got.argmax(1), expected.argmax(1))


@pytest.mark.slow
def test_mobilenet_float16_file_is_about_half_size(
    mobilenet, mobilenet_tflite, mobilenet_images, tmp_path
):
    path = export.export_tflite(mobilenet, tmp_path / "f16.tflite", quantize="float16")
    ratio = path.stat().st_size / mobilenet_tflite.stat().st_size
    assert 0.45 < ratio < 0.55  # measured 0.51
    expected = mobilenet.predict(mobilenet_images, verbose=0)
    got = tflite_predict(path, mobilenet_images)
    agreement = np.mean(got.argmax(1) == expected.argmax(1))
    correlation = centered_correlation(got, expected)
    print(
        f"float16 size ratio {ratio:.3f}, top-1 agreement {agreement:.3f}, "
        f"correlation {correlation:.4f}, max abs diff {np.abs(got - expected).max():.3f}"
    )
    # float16 weights through 52 random layers move logits by ~0.06 (of 0.5 std).
    assert correlation > 0.99
    assert agreement >= 0.9


@pytest.mark.slow
def test_mobilenet_int8_top1_agreement_beats_unrelated_predictions(
    mobilenet, mobilenet_images, tmp_path
):
    path = export.export_tflite(
        mobilenet,
        tmp_path / "int8.tflite",
        quantize="int8",
        representative_data=smooth_images(3, 64, 96),  # same distribution, other images
    )
    expected = mobilenet.predict(mobilenet_images, verbose=0)
    got = tflite_predict(path, mobilenet_images)
    agreement = np.mean(got.argmax(1) == expected.argmax(1))
    # Chance level: how often two different images share a Keras top-1 class.
    counts = np.bincount(expected.argmax(1))
    chance = (np.sum(counts**2) - len(expected)) / (len(expected) * (len(expected) - 1))
    correlation = centered_correlation(got, expected)
    print(f"int8 top-1 agreement {agreement:.3f}, chance {chance:.3f}, correlation {correlation:.3f}")
    # Random deep weights are int8's worst case (no trained margins; the small
    # CNN above keeps 100%). Measured: agreement 0.344, chance 0.182, corr 0.679.
    assert agreement >= 1.5 * chance
    assert correlation > 0.5
    assert path.stat().st_size < 0.35 * mobilenet.count_params() * 4


@pytest.mark.slow
def test_mobilenet_latency_is_a_positive_finite_median(mobilenet_tflite):
    latency_ms = export.measure_latency(mobilenet_tflite, runs=5, warmup=1, num_threads=1)
    assert latency_ms > 0 and math.isfinite(latency_ms)


# --------------------------------------------------------------------------
# measure_latency and LatencyCost


def test_latency_of_small_cnn_is_a_positive_finite_median(cnn_tflite):
    latency_ms = export.measure_latency(cnn_tflite, runs=5, warmup=1)
    assert latency_ms > 0 and math.isfinite(latency_ms)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"runs": 0}, "runs must be an integer >= 1. Received: runs=0"),
        ({"warmup": -1}, "warmup must be an integer >= 0. Received: warmup=-1"),
        ({"num_threads": 0}, "num_threads must be an integer >= 1"),
        ({"runs": 2.5}, "Received: runs=2.5"),
    ],
)
def test_latency_rejects_bad_counts(cnn_tflite, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export.measure_latency(cnn_tflite, **kwargs)


def test_latency_of_missing_file_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        export.measure_latency(tmp_path / "absent.tflite")


def test_latency_without_litert_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"unused")
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(ImportError, match=r"pip install keras-layernas\[litert\]"):
        export.measure_latency(path)


def test_latency_cost_measures_once_per_key(cnn):
    cost = export.LatencyCost(runs=3, warmup=1)
    first = cost(cnn, key="arch-a")
    # A different model under the same key is not exported again: the key
    # is the caller's promise that the architecture is the same.
    assert cost(small_cnn(seed=1), key="arch-a") == first
    assert len(cost) == 1 and "arch-a" in cost
    assert cost(cnn, key="arch-b") > 0
    assert len(cost) == 2


def test_latency_cost_rejects_int8_without_data():
    with pytest.raises(ValueError, match="representative_data=None"):
        export.LatencyCost(quantize="int8")


# --------------------------------------------------------------------------
# to_tf_keras


def _max_output_difference(model: keras.Model, legacy_model, images: np.ndarray) -> float:
    return float(np.abs(model.predict(images, verbose=0) - legacy_model.predict(images, verbose=0)).max())


def test_to_tf_keras_copies_graph_weights_and_shared_layers():
    tf_keras = pytest.importorskip("tf_keras", reason="tf_keras comes with the tfmot extra")
    keras.utils.set_random_seed(0)
    layers = keras.layers
    left, right = keras.Input((8,), name="left"), keras.Input((8,), name="right")
    shared = layers.Dense(4, activation="relu", name="shared")
    merged = layers.Concatenate()([shared(left), shared(right)])
    model = keras.Model([left, right], layers.Dense(2, name="head")(merged))
    legacy_model = export.to_tf_keras(model)

    assert isinstance(legacy_model, tf_keras.Model)
    assert len(legacy_model.get_layer("shared").get_weights()) == 2  # one layer, reused
    inputs = [np.random.default_rng(seed).normal(size=(5, 8)).astype(np.float32) for seed in (1, 2)]
    got = legacy_model.predict(inputs, verbose=0)
    np.testing.assert_allclose(got, model.predict(inputs, verbose=0), atol=1e-6)


def test_to_tf_keras_rebuilds_a_sequential_head_on_a_nested_backbone():
    tf_keras = pytest.importorskip("tf_keras", reason="tf_keras comes with the tfmot extra")
    backbone = small_cnn()
    calibrate_batchnorm(backbone, smooth_images(1, 64, 16))
    model = keras.Sequential([keras.Input((16, 16, 3)), backbone, keras.layers.Dense(3)])
    legacy_model = export.to_tf_keras(model)

    nested = [layer for layer in legacy_model.layers if isinstance(layer, tf_keras.Model)]
    assert len(nested) == 1  # the backbone stays one block
    assert _max_output_difference(model, legacy_model, smooth_images(2, 8, 16)) < 1e-6


def test_to_tf_keras_keeps_keras3_hard_sigmoid_and_hard_silu():
    pytest.importorskip("tf_keras", reason="tf_keras comes with the tfmot extra")
    layers = keras.layers
    inputs = keras.Input((1,))
    # Identity weights so the activations see the raw inputs.
    x = layers.Dense(1, activation="hard_sigmoid", kernel_initializer="ones")(inputs)
    outputs = layers.Activation("hard_silu")(layers.Concatenate()([x, inputs]))
    model = keras.Model(inputs, outputs)
    values = np.linspace(-5, 5, 41, dtype=np.float32)[:, None]
    # tf_keras's own hard_sigmoid is 0.2x + 0.5: off by up to 0.08 here.
    assert _max_output_difference(model, export.to_tf_keras(model), values) < 1e-6


def test_to_tf_keras_rejects_subclassed_model():
    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(TypeError, match="Received: model of type Subclassed"):
        export.to_tf_keras(Subclassed())


def test_to_tf_keras_rejects_ops_calls_in_the_graph():
    pytest.importorskip("tf_keras", reason="tf_keras comes with the tfmot extra")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs) + 1.0)
    with pytest.raises(ValueError, match="keras.ops call"):
        export.to_tf_keras(model)


def test_to_tf_keras_without_tf_keras_names_the_extra(cnn, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf_keras", None)
    with pytest.raises(ImportError, match=r"pip install keras-layernas\[tfmot\]"):
        export.to_tf_keras(cnn)


@pytest.mark.slow
def test_to_tf_keras_reproduces_mobilenet_outputs(mobilenet, mobilenet_images):
    pytest.importorskip("tf_keras", reason="tf_keras comes with the tfmot extra")
    legacy_model = export.to_tf_keras(mobilenet)
    assert len(legacy_model.layers) == len(mobilenet.layers)
    assert _max_output_difference(mobilenet, legacy_model, mobilenet_images[:8]) < 1e-5


@pytest.mark.slow
def test_tfmot_quantize_model_applies_to_rebuilt_mobilenet():
    if importlib.util.find_spec("tensorflow_model_optimization") is None:
        pytest.skip("tensorflow-model-optimization comes with the tfmot extra")
    # A subprocess: importing tfmot switches the whole process to legacy Keras.
    script = textwrap.dedent(
        """
        import keras, numpy as np
        import keras_layernas as layernas
        model = keras.applications.MobileNetV2(
            weights=None, alpha=0.35, input_shape=(96, 96, 3), classes=10)
        legacy_model = layernas.to_tf_keras(model)
        import tensorflow_model_optimization as tfmot
        qat_model = tfmot.quantization.keras.quantize_model(legacy_model)
        wrapped = [l for l in qat_model.layers
                   if isinstance(l, tfmot.quantization.keras.QuantizeWrapperV2)]
        convs = [l for l in legacy_model.layers
                 if type(l).__name__ in ("Conv2D", "DepthwiseConv2D", "Dense")]
        images = np.random.default_rng(0).uniform(-1, 1, (2, 96, 96, 3)).astype("float32")
        out = qat_model.predict(images, verbose=0)
        print(len(wrapped), len(convs), out.shape, bool(np.isfinite(out).all()))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    wrapped, convs, *rest = result.stdout.strip().splitlines()[-1].split(" ", 2)
    assert int(wrapped) >= int(convs) > 0
    assert rest == ["(2, 10) True"]


@pytest.mark.slow
def test_qat_model_from_the_bridge_exports_to_int8_and_keeps_cifar10_accuracy(
    shared_dir, cifar_cnn, cifar_test, tmp_path
):
    if importlib.util.find_spec("tensorflow_model_optimization") is None:
        pytest.skip("tensorflow-model-optimization comes with the tfmot extra")
    pixels, labels = cifar10_pixels(shared_dir, "train", 2000)
    x_test, y_test = cifar_test
    np.savez(tmp_path / "data.npz", x=mobilenet_scaling(pixels), y=labels, x_test=x_test,
             y_test=y_test)
    cifar_cnn.save(tmp_path / "trained.keras")
    keras_accuracy = float(np.mean(cifar_cnn.predict(x_test, verbose=0).argmax(1) == y_test))
    # A subprocess: importing tfmot switches the whole process to legacy Keras.
    script = textwrap.dedent(
        f"""
        import json, keras, numpy as np
        import keras_layernas as layernas
        data = np.load({str(tmp_path / "data.npz")!r})
        model = keras.saving.load_model({str(tmp_path / "trained.keras")!r})
        legacy_model = layernas.to_tf_keras(model)
        import tensorflow as tf, tensorflow_model_optimization as tfmot
        qat_model = tfmot.quantization.keras.quantize_model(legacy_model)
        qat_model.compile(
            tf.keras.optimizers.Adam(1e-4),
            tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        qat_model.fit(data["x"], data["y"], epochs=1, batch_size=64, verbose=0)
        path = layernas.export_tflite(
            qat_model, {str(tmp_path / "qat_int8.tflite")!r}, quantize="int8",
            representative_data=data["x"][:200], input_range=(-1, 1))
        check = layernas.evaluate_tflite(path, data["x_test"], data["y_test"], keras_model=qat_model)
        print(json.dumps(check.__dict__))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    check = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"Keras accuracy {keras_accuracy:.3f}; QAT int8 file: {check}")
    assert tensor_dtypes(tmp_path / "qat_int8.tflite") >= {np.dtype(np.int8)}
    # The file computes what the QAT model simulated, and fine-tuning kept accuracy.
    assert check["top1_agreement"] >= 0.95 and check["logit_correlation"] > 0.99
    assert check["accuracy"] >= keras_accuracy - 0.05
