"""Score a candidate on data: re-estimate BatchNorm, fine-tune, evaluate.

A sliced model's BatchNorm moving statistics belong to the base model (other
channels fed them), and a model trained for one short epoch has moving
averages that lag its weights; scored in inference mode, such a model can be
at chance even though its weights are fine. So statistics are re-estimated on
training batches before fine-tuning and again before every evaluation.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

from keras_layernas.compression._distillation import DistillationLoss, with_teacher
from keras_layernas.surgery.importance import named_layers

# Batches averaged to re-estimate BatchNorm statistics (AutoSlim/slimmable
# networks use a few thousand images; 10 x 32 is enough for the mean/variance
# of one channel to settle within a few percent).
BN_BATCHES = 10


def reestimate_batchnorm(model: keras.Model, data: tf.data.Dataset | np.ndarray,
                         num_batches: int = BN_BATCHES) -> int:
    """Replace every BatchNorm's moving statistics by their average over ``data``.

    Runs the model in training mode (batch statistics) with each layer's
    momentum set so that the moving value becomes the running mean of the
    batch statistics: ``(i - 1) / i`` on the i-th batch. Labels are not needed,
    which is what a data-free slim model needs before use.

    Args:
        model: the model whose BatchNorm layers (nested ones included) to reset.
        data: batched ``(x, y)`` or batched ``x`` (only ``x`` is used), or a
            numpy array of inputs (batches of 32).
        num_batches: how many batches to average.

    Returns:
        The number of batches used (0 when the model has no BatchNorm).

    Example:
        >>> import numpy as np, keras, keras_layernas as layernas
        >>> inputs = keras.Input((8, 8, 3))
        >>> model = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
        >>> images = np.random.default_rng(0).normal(2.0, 1.0, (64, 8, 8, 3)).astype("float32")
        >>> layernas.reestimate_batchnorm(model, images)
        2
        >>> round(float(model.layers[-1].moving_mean.numpy().mean()), 1)
        2.0
    """
    layers = [l for l in named_layers(model).values() if isinstance(l, keras.layers.BatchNormalization)]
    if not layers:
        return 0
    if isinstance(data, np.ndarray):
        data = tf.data.Dataset.from_tensor_slices(data).batch(32)
    if not isinstance(data, tf.data.Dataset):
        raise TypeError(
            f"reestimate_batchnorm needs a batched tf.data.Dataset of x or (x, y), or a numpy array "
            f"of inputs; received {type(data).__name__}. Pass np.asarray(images) or "
            "tf.data.Dataset.from_tensor_slices(images).batch(32)."
        )
    labelled = isinstance(data.element_spec, (tuple, list))
    saved = [(l.momentum, l.trainable) for l in layers]
    seen = 0
    try:
        for layer in layers:
            layer.trainable = True  # a frozen BatchNorm never updates its statistics
        for batch in data.take(num_batches):
            seen += 1
            for layer in layers:
                layer.momentum = (seen - 1) / seen
            model(batch[0] if labelled else batch, training=True)
    finally:
        for layer, (momentum, trainable) in zip(layers, saved):
            layer.momentum, layer.trainable = momentum, trainable
    return seen


class NonFiniteTraining(ValueError):
    """Training left a weight or BatchNorm statistic NaN or infinite."""


def check_finite_weights(model: keras.Model) -> None:
    """Refuse a model with a NaN/inf weight: its outputs are garbage for every input.

    One pass over the weights, cheap next to the training it follows.

    Raises:
        NonFiniteTraining: naming the first broken weight and the likely causes.
    """
    broken = [w.path for w in model.weights if not np.isfinite(keras.ops.convert_to_numpy(w)).all()]
    if broken:
        raise NonFiniteTraining(
            f"Training made {len(broken)} weight(s) of {model.name!r} NaN or infinite (first: "
            f"{broken[0]}). The training data holds NaN/inf values, or the loss diverged. Clean "
            "the data (drop samples where tf.math.is_finite is False), or lower the learning "
            "rate through compile_kwargs."
        )


def default_compile_kwargs(model: keras.Model, labels: tf.TensorSpec) -> dict[str, Any]:
    """Adam + cross-entropy matching the labels' encoding and the model's output.

    Integer labels get the sparse loss, one-hot labels the dense one; logits
    are assumed unless the last layer applies a softmax.
    """
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    softmax = activation is keras.activations.softmax or isinstance(last, keras.layers.Softmax)
    one_hot = labels.shape.rank is not None and labels.shape.rank >= 2 and (labels.shape[-1] or 0) > 1
    loss_class = (
        keras.losses.CategoricalCrossentropy if one_hot else keras.losses.SparseCategoricalCrossentropy
    )
    return {
        "optimizer": keras.optimizers.Adam(learning_rate=1e-3),
        "loss": loss_class(from_logits=not softmax),
        "metrics": ["accuracy"],
    }


def as_objective(objective: str | keras_tuner.Objective) -> keras_tuner.Objective:
    """A KerasTuner Objective; direction ``min`` for losses, ``max`` otherwise."""
    if isinstance(objective, keras_tuner.Objective):
        return objective
    if not isinstance(objective, str) or not objective:
        raise ValueError(
            "objective must be a metric name such as 'val_accuracy' or a "
            f"keras_tuner.Objective. Received: objective={objective!r}."
        )
    return keras_tuner.Objective(objective, "min" if "loss" in objective else "max")


class Trainer:
    """Fine-tunes and scores candidate models with one recipe.

    Args:
        train: batched ``(x, y)`` training data, or a zero-argument callable
            returning it; a callable is called once per :meth:`fine_tune`, so
            that every candidate sees the same batches (see
            :func:`keras_layernas.compression._data.prepare_training`).
        validation: batched ``(x, y)`` data the objective is measured on.
        objective: metric on validation data, e.g. ``"val_accuracy"``.
        compile_kwargs: ``model.compile`` arguments; None for
            :func:`default_compile_kwargs`.
        fit_verbose: ``verbose`` of ``model.fit`` (2 prints one line per epoch).
        teacher: a model to distill from while fine-tuning (see
            :mod:`keras_layernas.compression._distillation`); used only with
            the default loss (``compile_kwargs`` without ``"loss"``) and a
            single-input, single-output model. It is never changed.
        callbacks: the user's Keras callbacks, given to every ``fit``.
    """

    def __init__(
        self,
        train: tf.data.Dataset | Callable[[], tf.data.Dataset],
        validation: tf.data.Dataset,
        objective: str | keras_tuner.Objective = "val_accuracy",
        compile_kwargs: Mapping[str, Any] | None = None,
        fit_verbose: int = 0,
        teacher: keras.Model | None = None,
        callbacks: Sequence[keras.callbacks.Callback] = (),
    ):
        self.train = train
        self.validation = validation
        self.objective = as_objective(objective)
        self.compile_kwargs = compile_kwargs
        self.fit_verbose = fit_verbose
        self.teacher = teacher
        self.callbacks = list(callbacks)

    @property
    def metric(self) -> str:
        """The key of the objective in ``model.evaluate(validation)``."""
        name = self.objective.name
        return name[len("val_"):] if name.startswith("val_") else name

    def training_data(self) -> tf.data.Dataset:
        """The training dataset (a fresh pipeline when built by a callable)."""
        return self.train() if callable(self.train) else self.train

    def compile(self, model: keras.Model, train: tf.data.Dataset | None = None) -> None:
        """Compile ``model`` to train on ``train`` or, without it, to evaluate.

        The default loss follows the label encoding of the data the model will
        see, so evaluating builds no training pipeline just to read its spec.
        """
        labels = (train if train is not None else self.validation).element_spec[1]
        kwargs = dict(self.compile_kwargs or default_compile_kwargs(model, labels))
        if "optimizer" in kwargs:
            kwargs["optimizer"] = _own_copy(kwargs["optimizer"])
        model.compile(**kwargs)

    def evaluate(self, model: keras.Model) -> dict[str, float]:
        """Validation metrics in inference mode, as ``{"val_<name>": value}``.

        Raises:
            ValueError: the objective is not among the metrics the model reports.
        """
        if not model.compiled:
            self.compile(model)
        logs = model.evaluate(self.validation, verbose=0, return_dict=True)
        if self.metric not in logs:
            raise ValueError(
                f"The objective {self.objective.name!r} is not among the metrics measured on "
                f"validation data: {sorted('val_' + k for k in logs)}. Add the metric to "
                "compile_kwargs['metrics'] or choose one of those names as objective."
            )
        return {"val_" + k: float(v) for k, v in logs.items()}

    def score(self, model: keras.Model) -> float:
        """The objective of ``model`` on validation data (inference mode)."""
        return self.evaluate(model)["val_" + self.metric]

    def fine_tune(self, model: keras.Model, epochs: int) -> float:
        """Re-estimate BatchNorm, train ``epochs``, re-estimate again, score.

        Returns:
            The objective after training, measured in inference mode.

        Raises:
            NonFiniteTraining: training or BatchNorm re-estimation left a
                weight NaN/inf (training stops at the first NaN loss).
        """
        train = self.training_data()
        reestimate_batchnorm(model, train)
        self.compile(model, train)
        if epochs > 0:
            trained = self._distilled(model, train) or model
            # shuffle=False: a Dataset cannot be shuffled by fit (prepare_data shuffles arrays)
            trained.fit(train, epochs=epochs, verbose=self.fit_verbose, shuffle=False,
                        callbacks=[keras.callbacks.TerminateOnNaN(), *self.callbacks])
            reestimate_batchnorm(model, train)
        check_finite_weights(model)
        return self.score(model)

    def _distilled(self, model: keras.Model, train: tf.data.Dataset) -> keras.Model | None:
        """``model`` and the teacher side by side, compiled with the distillation loss.

        None when there is no teacher or distillation does not apply (a loss
        of the user's own, or a model with several inputs or outputs).
        """
        if self.teacher is None or "loss" in (self.compile_kwargs or {}):
            return None
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            return None
        labels = train.element_spec[1]
        defaults = default_compile_kwargs(model, labels)
        optimizer = _own_copy((self.compile_kwargs or {}).get("optimizer", defaults["optimizer"]))
        combined = with_teacher(model, self.teacher)
        combined.compile(optimizer=optimizer, loss=DistillationLoss(
            classes=int(model.outputs[0].shape[-1]),
            from_logits=defaults["loss"].get_config().get("from_logits", True),
            sparse=isinstance(defaults["loss"], keras.losses.SparseCategoricalCrossentropy)))
        return combined


def _own_copy(optimizer: Any) -> Any:
    """A fresh copy of an optimizer instance (one serves one model only); names pass as they are."""
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer.from_config(optimizer.get_config())
    return optimizer
