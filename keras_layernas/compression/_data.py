"""Turn what users pass as ``data`` into batched ``(x, y)`` tf.data pipelines.

Accepted forms: a ``tf.data.Dataset`` of ``(x, y)`` or ``(x, y, sample_weight)``
(batched or not), a numpy pair ``(x, y)``, ``"tfds:NAME"`` (TensorFlow
Datasets, its ``train`` and ``test`` splits) and ``"npz:PATH"`` (arrays
``x_train, y_train`` and optionally ``x_test, y_test``). Images from tfds/npz
are resized to the model's input size and passed through ``preprocess``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

Preprocess = Callable[[tf.Tensor], tf.Tensor]
# Share of numpy/npz training data held out for validation when none is given.
HOLDOUT_FRACTION = 0.1


def _no_labels(name: str, received: str) -> ValueError:
    return ValueError(
        f"`{name}` must carry labels: pass (x, y) arrays or a tf.data.Dataset of "
        f"(x, y) pairs, so candidates can be fine-tuned and scored. Received: {received}."
    )


def _from_dataset(ds: tf.data.Dataset, name: str, input_rank: int, batch_size: int) -> tf.data.Dataset:
    spec = ds.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise _no_labels(name, f"a tf.data.Dataset whose elements are {spec}")
    # Known from the pipeline's structure without reading it; UNKNOWN (e.g. after
    # filter) is let through, since finding out would mean iterating it.
    cardinality = int(ds.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            f"`{name}` repeats forever (a tf.data.Dataset of infinite cardinality, e.g. from "
            ".repeat()): an epoch would never end and the search would hang. Pass one epoch's "
            "worth of data: drop .repeat() or cut it with .take(n). Received: cardinality INFINITE."
        )
    if cardinality == 0:
        raise ValueError(
            f"`{name}` is an empty tf.data.Dataset: there is nothing to "
            f"{'train' if name == 'data' else 'score candidates'} on. Pass a dataset with "
            "samples (check filters, .take() and .skip()). Received: cardinality 0."
        )
    if len(spec[0].shape) == input_rank - 1:
        ds = ds.batch(batch_size)
    return ds.map(lambda *item: (item[0], item[1]), num_parallel_calls=tf.data.AUTOTUNE)


def _check_finite(values: np.ndarray, what: str) -> None:
    """Refuse NaN/inf: one such value makes every weight NaN after a training step."""
    if not np.issubdtype(values.dtype, np.inexact):
        return  # integers cannot hold NaN
    bad = values.size - int(np.count_nonzero(np.isfinite(values)))
    if bad:
        raise ValueError(
            f"{what} hold {bad} NaN or infinite value{'s' if bad > 1 else ''}: training on them "
            "turns every weight into NaN. Clean or drop those samples (e.g. "
            "np.isfinite(x).all(axis=(1, 2, 3))) before passing them."
        )


def _check_labels(y: np.ndarray, name: str, classes: int | None) -> None:
    """Refuse integer labels outside ``0..classes-1`` (TensorFlow fails deep inside a trial)."""
    if classes is None or not np.issubdtype(y.dtype, np.integer):
        return
    if y.ndim > 1 and y.shape[-1] != 1:  # one-hot or multi-label, not class indices
        return
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= classes:
        bad = low if low < 0 else high
        raise ValueError(
            f"`{name}` has label {bad}, but the model's output has {classes} classes, so labels "
            f"must lie in 0..{classes - 1}. Pass labels of this model's classes (or a model "
            f"whose output has one unit per class). Received: labels in {low}..{high}."
        )


def _from_arrays(data: Any, name: str, batch_size: int, shuffle: bool = False,
                 classes: int | None = None, check: bool = True) -> tf.data.Dataset:
    """Batched arrays; ``check=False`` skips the value checks (a factory re-making checked data)."""
    if isinstance(data, np.ndarray) or not isinstance(data, (tuple, list)) or len(data) < 2:
        kind = f"an array of shape {data.shape}" if isinstance(data, np.ndarray) else repr(type(data).__name__)
        raise _no_labels(name, kind)
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if len(x) != len(y):
        raise ValueError(
            f"`{name}` has {len(x)} inputs but {len(y)} labels; they must match one to one. "
            f"Received: x.shape={x.shape}, y.shape={y.shape}."
        )
    if len(x) == 0:
        raise ValueError(
            f"`{name}` has no samples: there is nothing to "
            f"{'train' if name == 'data' else 'score candidates'} on. Pass non-empty arrays. "
            f"Received: x.shape={x.shape}, y.shape={y.shape}."
        )
    if check:
        _check_finite(x, f"`{name}` inputs")
        _check_finite(y, f"`{name}` labels")
        _check_labels(y, name, classes)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:  # a new, seeded order every epoch, as fit(x, y) would do
        ds = ds.shuffle(len(x), seed=0, reshuffle_each_iteration=True)
    return ds.batch(batch_size)


def _load_named(spec: str) -> tuple[tuple, tuple | None]:
    """``(train arrays or tfds split, validation or None)`` for "tfds:" / "npz:" strings."""
    scheme, _, value = spec.partition(":")
    if scheme == "npz":
        with np.load(value) as arrays:
            if "x_train" not in arrays or "y_train" not in arrays:
                raise ValueError(
                    f"{spec!r} must hold arrays x_train and y_train (and optionally x_test, "
                    f"y_test). Received keys: {sorted(arrays.files)}."
                )
            train = (arrays["x_train"], arrays["y_train"])
            test = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
        return train, test
    if scheme == "tfds":
        import tensorflow_datasets as tfds

        try:
            splits = tfds.load(value, split=["train", "test"], as_supervised=True)
        except Exception as error:  # tfds raises many types: missing name, no network...
            raise ValueError(
                f"TensorFlow Datasets could not load {value!r} (train and test splits, "
                f"as (image, label) pairs): {error}. Offline, download it once elsewhere or "
                f"pass arrays / 'npz:PATH'. Received: {spec!r}."
            ) from error
        return splits[0], splits[1]
    raise ValueError(
        "A data string must be 'tfds:NAME' (TensorFlow Datasets) or 'npz:PATH'. "
        f"Received: {spec!r}."
    )


def _images(ds: tf.data.Dataset, image_size: Sequence[int], preprocess: Preprocess | None) -> tf.data.Dataset:
    def prepare(x, y):
        x = tf.image.resize(tf.cast(x, tf.float32), image_size)
        return (preprocess(x) if preprocess is not None else x), y

    return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)


def prepare_data(
    data: Any,
    validation_data: Any,
    input_shape: Sequence[int],
    batch_size: int = 32,
    preprocess: Preprocess | None = None,
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Batched ``(x, y)`` training and validation pipelines.

    Args:
        data: training data in one of the accepted forms (module docstring).
        validation_data: the same forms, or None to use the ``test`` split of a
            tfds/npz source or hold out the last 10% of numpy arrays.
        input_shape: the model's per-sample input shape (resize target of
            tfds/npz images, and how batched datasets are told from unbatched).
        batch_size: batch size for data that is not batched yet.
        preprocess: applied to tfds/npz images after resizing (e.g.
            ``keras.applications.mobilenet_v2.preprocess_input``).

    Returns:
        ``(train, validation)`` datasets.

    Raises:
        ValueError: data without labels, mismatched lengths, an unknown data
            string, no way to get validation data, or bad data (see
            :func:`prepare_training`).
    """
    make_train, validation = prepare_training(data, validation_data, input_shape, batch_size, preprocess)
    return make_train(), validation


def prepare_training(
    data: Any,
    validation_data: Any,
    input_shape: Sequence[int],
    batch_size: int = 32,
    preprocess: Preprocess | None = None,
    classes: int | None = None,
) -> tuple[Callable[[], tf.data.Dataset], tf.data.Dataset]:
    """Like :func:`prepare_data`, but training data comes from a factory.

    Numpy and tfds/npz training data are shuffled with a fixed seed and a new
    order every epoch; a pipeline built anew by the factory starts that
    sequence from its first epoch. So a trial that builds its own pipeline sees
    the same batches whatever ran before it in the process: trial scores do
    not depend on the order of trials, on a resume or on which worker trains
    the trial. A ``tf.data.Dataset`` passed by the user is returned as is.

    Arrays are checked once, here: no NaN/inf, no empty set, and with
    ``classes`` (the model's output width) integer labels in ``0..classes-1``.
    Datasets are checked for what their structure tells without reading
    them: refused when empty or repeating forever.

    Returns:
        ``(make_train, validation)``: a zero-argument callable returning the
        training dataset, and the validation dataset.
    """
    input_rank = len(input_shape) + 1
    image_size = tuple(input_shape[:-1])

    def one(value: Any, name: str, check: bool = True) -> tf.data.Dataset:
        if isinstance(value, tf.data.Dataset):
            return _from_dataset(value, name, input_rank, batch_size)
        if isinstance(value, str):
            train, _ = _load_named(value)
            return _images(one(train, name), image_size, preprocess)
        return _from_arrays(value, name, batch_size, shuffle=name == "data", classes=classes, check=check)

    if isinstance(data, str):
        train, test = _load_named(data)
        one(train, "data")  # raises the labels error now rather than in a trial

        def make_named() -> tf.data.Dataset:
            return _images(one(train, "data", check=False), image_size, preprocess)

        if validation_data is None:
            if test is None:
                raise ValueError(
                    f"{data!r} has no test split; pass validation_data=... Received: "
                    "validation_data=None."
                )
            return make_named, _images(one(test, "validation_data"), image_size, preprocess)
        return make_named, one(validation_data, "validation_data")
    if validation_data is not None:
        one(data, "data")
        return (lambda: one(data, "data", check=False)), one(validation_data, "validation_data")
    if isinstance(data, tf.data.Dataset):
        raise ValueError(
            "With a tf.data.Dataset as `data`, pass validation_data=... too: candidates "
            "are scored on held-out data, and a Dataset cannot be split safely here. "
            "Received: validation_data=None."
        )
    one(data, "data")  # raises the labels error for arrays without y
    x, y = np.asarray(data[0]), np.asarray(data[1])
    split = max(1, int(round(len(x) * (1 - HOLDOUT_FRACTION))))
    if split >= len(x):
        raise ValueError(
            f"`data` has {len(x)} samples: too few to hold out validation data. Pass "
            "validation_data=... Received: validation_data=None."
        )
    return (
        lambda: _from_arrays((x[:split], y[:split]), "data", batch_size, shuffle=True, check=False),
        _from_arrays((x[split:], y[split:]), "validation_data", batch_size, check=False),
    )
