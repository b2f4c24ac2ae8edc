"""compress(): the one call, one search or a deep cut in steps (``steps=``).

Its own module because it sits above both ways: ``_compress`` (one
:class:`CompressionSearch`) and ``_steps`` (several, each of the previous winner).
"""
from __future__ import annotations

import os
from typing import Any

import keras

from keras_layernas.compression._compress import CompressionSearch
from keras_layernas.compression._steps import compress_in_steps


def compress(
    model: keras.Model,
    target_madds: float | None = None,
    *,
    target_latency_ms: float | None = None,
    cost: str | None = None,
    data: Any = None,
    validation_data: Any = None,
    tolerance: float = 0.05,
    max_trials: int | None = None,
    epochs_per_trial: int = 1,
    finetune_epochs: int | None = None,
    num_buckets: int = 100,
    per_bucket: int = 3,
    directory: str | os.PathLike | None = None,
    overwrite: bool = False,
    input_shape: tuple[int, ...] | None = None,
    seed: int = 0,
    verbose: int = 1,
    steps: int | str = 1,
    **kwargs: Any,
) -> keras.Model | list[keras.Model]:
    """Shrink ``model`` to at most ``target_madds`` MAdds (or ``"50%"`` of its own), keeping its weights.

    The returned model's MAdds (by :func:`layernas.count_madds`) lie in
    ``[(1 - tolerance) * target_madds, target_madds]``. With
    ``target_latency_ms`` (and ``cost="latency"``) instead, the model's
    *predicted* single-thread TFLite latency lies in that range; the
    prediction comes from a few measured architectures (see
    :class:`keras_layernas.LatencyModel`) and the result is measured too. Without ``data`` the
    search keeps the channels and kernels that carry the most weight mass:
    fast, but no accuracy measurement, so fine-tuning the result on real data
    is recommended. With ``data`` every candidate is fine-tuned and scored on
    validation data. Arguments are those of :class:`CompressionSearch`
    (``objective``, ``compile_kwargs``, ``batch_size``, ``preprocess``,
    ``space``, ``exclude``, ``callbacks``, ``project_name`` through ``**kwargs``); use
    ``CompressionSearch(...).run()`` for the full result (history, Pareto
    front, per-layer table).

    ``target_madds`` may be a list of budgets (``[300e6, 200e6, "30%"]``):
    one search serves them all and a list of models comes back.

    ``steps`` (with data, one MAdds budget): reach the target in that many
    compressions, each of the previous trained winner, which teaches the
    next (``"auto"``: the fewest that each keep >= 70% of the previous
    cost); the trials and epochs are split over the steps. For deep cuts:
    see :func:`~keras_layernas.compression.compress_in_steps`.

    Returns:
        The slim ``keras.Model`` (an unchanged copy, with a warning, when the
        model already fits the target); a list of them, one per budget in the
        order given, for a list of budgets. Run with data as KerasTuner's
        chief and workers, every process returns the chief's model.

    Raises:
        TypeError: ``model`` is not a functional or Sequential Keras model.
        ValueError: a target below the smallest reachable MAdds (the message
            gives the minimum), data without labels, a missing objective, or
            another bad argument.
    """
    settings = dict(
        target_latency_ms=target_latency_ms, cost=cost, data=data, validation_data=validation_data,
        tolerance=tolerance, max_trials=max_trials, epochs_per_trial=epochs_per_trial,
        finetune_epochs=finetune_epochs, num_buckets=num_buckets, per_bucket=per_bucket,
        directory=directory, overwrite=overwrite, input_shape=input_shape, seed=seed, verbose=verbose,
        **kwargs)
    if steps != 1:
        return compress_in_steps(model, target_madds, steps=steps, **settings)[-1].model
    result = CompressionSearch(model, target_madds, **settings).run()
    return [r.model for r in result] if isinstance(result, list) else result.model
