"""Teacher-guided fine-tuning and keeping what the trials trained."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_layernas.compression._compress import CompressionSearch
from keras_layernas.compression._distillation import DistillationLoss, frozen_copy, with_teacher
from keras_layernas.compression._drivers import load_trained
from keras_layernas.compression._training import Trainer
from tests.compression.test_compress import small_cnn, toy_data


def _logits(rng, n=6, classes=4):
    return rng.normal(size=(n, classes)).astype("float32")


def test_alpha_zero_is_plain_cross_entropy_and_alpha_one_ignores_the_labels():
    rng = np.random.default_rng(0)
    student, teacher = _logits(rng), _logits(rng)
    labels = np.array([0, 1, 2, 3, 0, 1])
    both = np.concatenate([student, teacher], axis=-1)
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, student)
    assert float(DistillationLoss(4, alpha=0.0)(labels, both)) == pytest.approx(float(plain), rel=1e-5)
    soft = DistillationLoss(4, alpha=1.0)
    assert float(soft(labels, both)) == pytest.approx(float(soft(3 - labels, both)), rel=1e-6)
    assert float(soft(labels, np.concatenate([teacher, teacher], -1))) == pytest.approx(0.0, abs=1e-5)


def test_soft_term_is_t_squared_times_kl_and_reads_probabilities_too():
    rng = np.random.default_rng(1)
    student, teacher = _logits(rng), _logits(rng)
    labels = np.zeros(6, dtype="int64")
    t = 3.0
    p = tf.nn.softmax(teacher / t).numpy()
    log_q = tf.nn.log_softmax(student / t).numpy()
    expected = np.mean(np.sum(p * (np.log(p) - log_q), -1)) * t * t
    both = np.concatenate([student, teacher], -1)
    assert float(DistillationLoss(4, temperature=t, alpha=1.0)(labels, both)) == pytest.approx(expected, rel=1e-5)
    probabilities = np.concatenate([tf.nn.softmax(student).numpy(), tf.nn.softmax(teacher).numpy()], -1)
    from_probabilities = DistillationLoss(4, from_logits=False, temperature=t, alpha=1.0)
    assert float(from_probabilities(labels, probabilities)) == pytest.approx(expected, rel=1e-4)


def test_with_teacher_trains_the_student_in_place_and_never_the_teacher():
    base = small_cnn()
    teacher = frozen_copy(base)
    student = small_cnn(seed=1)
    before_teacher = [w.copy() for w in teacher.get_weights()]
    before_student = [w.copy() for w in student.get_weights()]
    combined = with_teacher(student, teacher)
    combined.compile(optimizer="adam", loss=DistillationLoss(4, from_logits=False))
    x, y = toy_data(32)
    combined.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before_teacher, teacher.get_weights()))
    assert not all(np.array_equal(a, b) for a, b in zip(before_student, student.get_weights()))
    assert base.trainable  # the user's model is never frozen


def test_trainer_with_a_teacher_scores_the_student_on_its_own_objective():
    x, y = toy_data(64)
    x_val, y_val = toy_data(32, seed=1)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    validation = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(8)
    teacher = frozen_copy(small_cnn())
    student = small_cnn(seed=2)
    score = Trainer(train, validation, teacher=teacher).fine_tune(student, epochs=1)
    accuracy = np.mean(np.argmax(student.predict(x_val, verbose=0), -1) == y_val)
    assert score == pytest.approx(accuracy, abs=1e-6)


@pytest.mark.slow
def test_the_winner_is_returned_with_the_weights_its_trial_trained(tmp_path):
    x, y = toy_data(64)
    model = small_cnn()
    search = CompressionSearch(model, 1e6, data=(x, y), validation_data=toy_data(32, seed=1),
                               max_trials=4, finetune_epochs=0, directory=tmp_path, verbose=0)
    result = search.run()
    space = search.space
    arch = space.check_arch(tuple(result.arch.values()))
    resliced = space.materialize(arch)
    kept = space.materialize(arch)
    trained_by_a_trial = load_trained(kept, str(tmp_path / "compress"), space, arch)
    kernels = [w for w in result.model.weights if "kernel" in w.path]
    if not trained_by_a_trial:  # a greedy completion won: it was trained in memory
        assert result.completed
        kernels_resliced = {w.path: w.numpy() for w in resliced.weights if "kernel" in w.path}
        assert any(not np.array_equal(w.numpy(), kernels_resliced[w.path]) for w in kernels)
        return
    trained = {w.path: w.numpy() for w in kept.weights}
    for weight in kernels:
        np.testing.assert_array_equal(weight.numpy(), trained[weight.path])
    assert any(not np.array_equal(w.numpy(), r.numpy())
               for w, r in zip(kernels, [w for w in resliced.weights if "kernel" in w.path]))
