"""Distillation from the base model: the slim model learns the base's outputs too.

A slim candidate inherits the base's weights, so the base (the teacher) is the
best guide to what those weights should still compute. Fine-tuning then
minimizes ``(1 - alpha) * CE(labels, student) + alpha * T^2 * KL(teacher_T || student_T)``
where ``_T`` is a softmax at temperature ``T`` (Hinton et al., 2015; ``T^2``
keeps the gradient scale of the soft term independent of ``T``). Defaults:
``T = 4``, ``alpha = 0.5``, the values Hinton et al. and most pruning papers
(e.g. NetAdapt's and AMC's fine-tunes) start from; they are not tuned here.

The teacher runs in inference mode inside the same graph as the student, so
both see the same augmented batch and the teacher's weights and BatchNorm
statistics never change.
"""
from __future__ import annotations

import keras
from keras import ops

TEMPERATURE = 4.0
ALPHA = 0.5


class DistillationLoss(keras.losses.Loss):
    """Cross-entropy to the labels plus KL to the teacher, on ``[student, teacher]`` outputs.

    ``y_pred`` is the student's and the teacher's outputs concatenated on the
    last axis (what :func:`with_teacher` builds).

    Args:
        classes: width of one model's output.
        from_logits: whether the outputs are logits (False: probabilities,
            e.g. a classifier ending in softmax).
        sparse: integer labels (True) or one-hot labels (False).
        temperature: softmax temperature of the soft term.
        alpha: weight of the soft term, in [0, 1].
    """

    def __init__(self, classes: int, from_logits: bool = True, sparse: bool = True,
                 temperature: float = TEMPERATURE, alpha: float = ALPHA, name: str = "distillation"):
        super().__init__(name=name)
        self.classes, self.from_logits, self.sparse = classes, from_logits, sparse
        self.temperature, self.alpha = temperature, alpha

    def call(self, y_true, y_pred):
        student, teacher = y_pred[..., : self.classes], y_pred[..., self.classes:]
        if not self.from_logits:  # log-probabilities are logits up to a constant
            student = ops.log(ops.maximum(student, 1e-12))
            teacher = ops.log(ops.maximum(teacher, 1e-12))
        cross_entropy = (keras.losses.sparse_categorical_crossentropy if self.sparse
                         else keras.losses.categorical_crossentropy)(y_true, student, from_logits=True)
        t = self.temperature
        soft_teacher = ops.softmax(teacher / t, axis=-1)
        kl = ops.sum(soft_teacher * (ops.log(ops.maximum(soft_teacher, 1e-12))
                                     - ops.log_softmax(student / t, axis=-1)), axis=-1)
        return (1.0 - self.alpha) * cross_entropy + self.alpha * t * t * kl

    def get_config(self):
        return {"classes": self.classes, "from_logits": self.from_logits, "sparse": self.sparse,
                "temperature": self.temperature, "alpha": self.alpha, "name": self.name}


def frozen_copy(model: keras.Model) -> keras.Model:
    """A non-trainable copy of ``model`` to serve as teacher (the user's model stays as it is)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    # a name of its own: a slim student built from ``model`` keeps ``model``'s name
    inputs = copy.inputs[0] if len(copy.inputs) == 1 else copy.inputs
    outputs = copy.outputs[0] if len(copy.outputs) == 1 else copy.outputs
    teacher = keras.Model(inputs, outputs, name=f"{model.name}_teacher")
    teacher.trainable = False
    return teacher


def with_teacher(student: keras.Model, teacher: keras.Model) -> keras.Model:
    """A model whose output is ``[student(x), teacher(x)]``; only the student trains.

    The student's layers are shared, so training this model trains ``student``
    in place. ``teacher`` should be a :func:`frozen_copy`.
    """
    inputs = keras.Input(student.inputs[0].shape[1:], dtype=student.inputs[0].dtype)
    outputs = keras.layers.Concatenate(axis=-1)([student(inputs), teacher(inputs, training=False)])
    return keras.Model(inputs, outputs, name=f"{student.name}_distilled")
