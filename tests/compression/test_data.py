"""What compress accepts as data: arrays, datasets, npz files, with or without validation."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras

from keras_layernas.compression._data import prepare_data, prepare_training
from keras_layernas.compression._drivers import Progress
from keras_layernas.compression._training import Trainer


def arrays(n: int = 20, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, size, size, 3)).astype("float32"), np.arange(n) % 3


def sizes(ds: tf.data.Dataset) -> list[int]:
    return [int(x.shape[0]) for x, _ in ds]


def test_arrays_without_validation_hold_out_the_last_tenth():
    x, y = arrays(20)
    train, validation = prepare_data((x, y), None, (8, 8, 3), batch_size=4)
    assert sum(sizes(train)) == 18 and sizes(validation) == [2]
    np.testing.assert_array_equal(next(iter(validation))[1], y[18:])
    assert sorted(np.concatenate([b[1] for b in train])) == sorted(y[:18])


def _labels(ds: tf.data.Dataset) -> np.ndarray:
    return np.concatenate([b[1] for b in ds])


@pytest.mark.parametrize("validation", [None, "arrays"])
def test_each_training_pipeline_starts_the_same_seeded_sequence_of_epochs(validation):
    x, y = arrays(40)
    y = np.arange(40)  # distinct labels show the order
    make_train, _ = prepare_training((x, y), None if validation is None else arrays(8), (8, 8, 3),
                                     batch_size=8)
    first, second = make_train(), make_train()
    first_epochs = [_labels(first), _labels(first)]
    second_epochs = [_labels(second), _labels(second)]
    np.testing.assert_array_equal(first_epochs, second_epochs)  # same batches, trial after trial
    assert (first_epochs[0] != first_epochs[1]).any()  # and still a new order every epoch


@pytest.mark.slow
def test_a_trial_scores_the_same_whatever_trial_ran_before_it():
    x, y = arrays(64, size=8)
    make_train, validation = prepare_training((x, y), arrays(16, size=8), (8, 8, 3), batch_size=8)
    trainer = Trainer(make_train, validation, "val_loss")

    def candidate(width: int) -> keras.Model:
        keras.utils.set_random_seed(1)
        inputs = keras.Input((8, 8, 3))
        h = keras.layers.BatchNormalization()(keras.layers.Conv2D(width, 3)(inputs))
        outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h))
        return keras.Model(inputs, outputs)

    alone = trainer.fine_tune(candidate(8), 2)
    trainer.fine_tune(candidate(4), 3)  # another trial in between
    assert trainer.fine_tune(candidate(8), 2) == alone


def test_unbatched_dataset_is_batched_and_batched_one_is_kept():
    x, y = arrays(10)
    unbatched = tf.data.Dataset.from_tensor_slices((x, y))
    train, validation = prepare_data(unbatched, unbatched.batch(5), (8, 8, 3), batch_size=4)
    assert sizes(train) == [4, 4, 2] and sizes(validation) == [5, 5]


def test_dataset_with_sample_weights_yields_inputs_and_labels_only():
    x, y = arrays(6)
    weighted = tf.data.Dataset.from_tensor_slices((x, y, np.ones(6))).batch(3)
    train, _ = prepare_data(weighted, weighted, (8, 8, 3))
    assert len(next(iter(train))) == 2


def test_npz_file_is_resized_preprocessed_and_validated_on_its_test_split(tmp_path):
    x, y = arrays(12, size=4)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    train, validation = prepare_data(f"npz:{path}", None, (8, 8, 3), batch_size=6,
                                     preprocess=lambda images: images * 0.0 + 1.0)
    batch, labels = next(iter(validation))
    assert batch.shape == (4, 8, 8, 3) and float(tf.reduce_min(batch)) == 1.0
    np.testing.assert_array_equal(labels, y[:4])
    assert sum(sizes(train)) == 12


def test_npz_file_without_training_arrays_names_its_keys(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, images=np.zeros((2, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"x_train and y_train.*\['images'\]"):
        prepare_data(f"npz:{path}", None, (4, 4, 3))


def test_unknown_data_string_says_which_forms_exist():
    with pytest.raises(ValueError, match="'tfds:NAME'.*'npz:PATH'.*Received: 'cifar10'"):
        prepare_data("cifar10", None, (8, 8, 3))


def test_dataset_without_validation_asks_for_it():
    x, y = arrays(4)
    with pytest.raises(ValueError, match="pass validation_data"):
        prepare_data(tf.data.Dataset.from_tensor_slices((x, y)), None, (8, 8, 3))


def test_mismatched_inputs_and_labels_are_refused():
    x, y = arrays(4)
    with pytest.raises(ValueError, match="4 inputs but 3 labels"):
        prepare_data((x, y[:3]), (x, y), (8, 8, 3))


def test_progress_at_verbose_two_prints_one_line_per_trial(capsys):
    progress = Progress(total=2, verbose=2, score_name="val_accuracy")
    progress.trial(5e6, 0.5, in_target=True)
    progress.trial(6e6, None, in_target=False)
    progress.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["trial 1: 5.00 MMAdds, val_accuracy 0.5000 (in target)",
                     "trial 2: 6.00 MMAdds, val_accuracy failed"]
    assert progress.best == 0.5 and progress.best_cost == 5e6


def test_progress_bar_shows_best_in_target_score(capsys):
    progress = Progress(total=3, verbose=1, score_name="score")
    progress.trial(5e6, 0.9, in_target=False)  # better, but outside the target
    progress.trial(4e6, 0.4, in_target=True)
    progress.close()
    assert "best_score: 0.4000" in capsys.readouterr().out


def test_progress_of_a_search_of_unknown_length_counts_trials_without_unknown(capsys):
    progress = Progress(total=None, verbose=1, score_name="score", every=2)
    for cost, score in [(5e6, 0.9), (4e6, 0.4), (4e6, 0.3)]:
        progress.trial(cost, score, in_target=cost < 4.5e6)
    progress.close()
    out = capsys.readouterr().out
    assert "Unknown" not in out and out.endswith("\n")
    assert out.split("\r")[-1].strip() == "3 trials - best_score: 0.4 - best_MMAdds: 4"


def test_tfds_name_that_cannot_be_loaded_says_what_was_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="could not load 'no_such_dataset_xyz'"):
        prepare_data("tfds:no_such_dataset_xyz", None, (8, 8, 3))


# -- bad data: a clear error before any training, naming the fix --------------------
@pytest.mark.parametrize("which", ["data", "validation_data"])
def test_infinitely_repeating_dataset_is_refused_naming_take(which):
    x, y = arrays(8)
    finite = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    data, validation = (finite.repeat(), finite) if which == "data" else (finite, finite.repeat())
    with pytest.raises(ValueError, match=rf"`{which}` repeats forever.*\.take\(n\)"):
        prepare_training(data, validation, (8, 8, 3))


@pytest.mark.parametrize("which", ["data", "validation_data"])
def test_empty_dataset_is_refused(which):
    x, y = arrays(8)
    finite = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    empty = finite.take(0)
    data, validation = (empty, finite) if which == "data" else (finite, empty)
    with pytest.raises(ValueError, match=rf"`{which}` is an empty tf.data.Dataset"):
        prepare_training(data, validation, (8, 8, 3))


@pytest.mark.parametrize("which", ["data", "validation_data"])
def test_empty_arrays_are_refused(which):
    x, y = arrays(8)
    empty = (x[:0], y[:0])
    data, validation = (empty, (x, y)) if which == "data" else ((x, y), empty)
    with pytest.raises(ValueError, match=rf"`{which}` has no samples"):
        prepare_training(data, validation, (8, 8, 3))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("which", ["data", "validation_data"])
def test_non_finite_array_values_are_refused_with_their_count(which, bad):
    x, y = arrays(8)
    broken = x.copy()
    broken[3, 0, 0, 0] = bad
    data, validation = ((broken, y), (x, y)) if which == "data" else ((x, y), (broken, y))
    with pytest.raises(ValueError, match=rf"`{which}` inputs hold 1 NaN or infinite value"):
        prepare_training(data, validation, (8, 8, 3))


def test_non_finite_labels_are_refused():
    x, _ = arrays(8)
    y = np.zeros(8, "float32")
    y[2] = np.nan
    with pytest.raises(ValueError, match=r"`data` labels hold 1 NaN or infinite value"):
        prepare_training((x, y), (x, np.zeros(8)), (8, 8, 3))


@pytest.mark.parametrize("labels, bad", [(np.arange(8) % 5, 4), (np.arange(8) - 1, -1)])
def test_integer_labels_outside_the_model_classes_are_refused(labels, bad):
    x, y = arrays(8)
    with pytest.raises(ValueError, match=rf"`data` has label {bad}.*4 classes.*0\.\.3"):
        prepare_training((x, labels), (x, y), (8, 8, 3), classes=4)
    make_train, _ = prepare_training((x, y), (x, y), (8, 8, 3), classes=4)  # 0..2 fit
    assert sum(sizes(make_train())) == 8


def test_progress_of_a_resumed_search_counts_the_old_trials_and_bars_only_the_new(capsys):
    progress = Progress(total=5, verbose=1, score_name="score")
    progress.resume([(5e6, 0.7, False), (4e6, 0.4, True), (4e6, None, True)])
    progress.trial(4e6, 0.5, in_target=True)
    progress.close()
    out = capsys.readouterr().out
    assert out.startswith("Resuming after 3 trials; best in target: score 0.4000 at 4.00 MMAdds.\n")
    assert "1/1" in out and "best_score: 0.5000" in out  # the bar ran over the new trial only
    assert progress.best == 0.5


def test_progress_of_a_finished_search_resumed_prints_no_empty_bar(capsys):
    progress = Progress(total=2, verbose=1, score_name="score")
    progress.resume([(4e6, 0.4, True), (4e6, 0.5, True)])
    progress.close()
    assert capsys.readouterr().out == "Resuming after 2 trials; best in target: score 0.5000 at 4.00 MMAdds.\n"
