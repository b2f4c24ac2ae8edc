"""The one-call compression: ``compress(model, target_madds=...)`` and its parts.

Inside, by concern: ``_one_call`` (compress()), ``_compress`` (CompressionSearch: check the arguments,
search, choose, rebuild), ``_drivers`` (the in-process, tuner and distributed
ways to run the search), ``_training`` (fine-tuning and BatchNorm
re-estimation), ``_completion`` (greedy
completion to the target), ``_result`` (CompressionResult: report and plot),
``_distributed`` (the chief -> worker hand-off), ``_multi`` (several budgets
from one search), ``_steps`` (a deep cut in several compressions) and ``_data`` (what ``data=`` accepts). The data-free score, RetainedImportance, lives in
``surgery.importance`` beside the criterion materialize uses; it is re-exported
here with the rest of what a compression needs. The names below are the
public ones; benchmarks use only these.
"""
from __future__ import annotations

from keras_layernas.compression._completion import complete_to_target, greedy_fill
from keras_layernas.compression._compress import (
    CompressionSearch,
    shrink_only,
    start_from,
    uniform_arch,
)
from keras_layernas.compression._data import prepare_data, prepare_training
from keras_layernas.compression._distillation import frozen_copy
from keras_layernas.compression._one_call import compress
from keras_layernas.compression._result import CompressionResult
from keras_layernas.compression._steps import compress_in_steps, step_budgets
from keras_layernas.compression._training import Trainer, reestimate_batchnorm
from keras_layernas.surgery.importance import WEIGHTINGS, RetainedImportance

__all__ = [
    "WEIGHTINGS",
    "CompressionResult",
    "CompressionSearch",
    "RetainedImportance",
    "Trainer",
    "complete_to_target",
    "greedy_fill",
    "compress",
    "compress_in_steps",
    "frozen_copy",
    "prepare_data",
    "prepare_training",
    "reestimate_batchnorm",
    "shrink_only",
    "start_from",
    "step_budgets",
    "uniform_arch",
]
