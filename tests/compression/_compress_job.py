"""``layernas.compress`` with data in its own process: one script for chief, workers or solo.

The same call runs under KerasTuner's ``KERASTUNER_*`` variables (chief or
worker) or without them (one process). Every trial's start and end is appended
to a shared log, fsync'ed, so the parent test counts what really ran where; the
process's result (architecture, MAdds, trials, the model's outputs on fixed
probe images, wall time) goes to ``RESULT_PATH`` with the tuner id in its name.

Usage: python _compress_job.py DIRECTORY LOG_PATH RESULT_PATH
(``LAYERNAS_MAX_TRIALS`` sets the trial budget, default 6).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import keras

import keras_layernas as layernas
from keras_layernas.compression._drivers import CompressionTuner
from keras_layernas.compression._compress import CompressionSearch
from tests.compression.test_compress import toy_data
from tests.tuner._search_job import _append

# Three 32-wide convs at 16x16 (4.94 M MAdds): the complete search at this
# target takes 12 trials, so the budget below ends it early.
TARGET_MADDS = 2e6
MAX_TRIALS = int(os.environ.get("LAYERNAS_MAX_TRIALS", "6"))
TUNER_ID = os.environ.get("KERASTUNER_TUNER_ID", "solo")


def three_conv_cnn() -> keras.Model:
    """The same model in every process (seeded), as a real user script would load it."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for i in range(1, 4):
        x = keras.layers.Conv2D(32, 3, padding="same", name=f"c{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="head")(
        keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="three_conv_cnn")


def result_path(result_path: str, tuner_id: str) -> Path:
    """Where ``tuner_id``'s result lies: ``result.json`` becomes ``result.<id>.json``."""
    path = Path(result_path)
    return path.with_name(f"{path.stem}.{tuner_id}{path.suffix}")


def trial_arch(trial) -> list:
    """A trial's architecture as its encoded values in layer-name order (as in trial.json)."""
    values = trial.hyperparameters.values
    return [values[name] for name in sorted(values)]


def _log_trials(log_path: str) -> None:
    """Wrap the trial of CompressionTuner so that each start and end is logged."""
    run_trial = CompressionTuner.run_trial

    def logged(self, trial, *args, **kwargs):
        record = {"tuner": TUNER_ID, "trial": trial.trial_id, "arch": trial_arch(trial),
                  "pid": os.getpid()}
        _append(log_path, {"event": "start", **record})
        results = run_trial(self, trial, *args, **kwargs)
        _append(log_path, {"event": "end", "score": results[self.oracle.objective.name], **record})
        return results

    CompressionTuner.run_trial = logged


def main(directory: str, log_path: str, result_file: str) -> None:
    _log_trials(log_path)
    started = time.perf_counter()
    result = CompressionSearch(
        three_conv_cnn(), TARGET_MADDS, data=toy_data(128, seed=0), validation_data=toy_data(64, seed=1),
        max_trials=MAX_TRIALS, epochs_per_trial=1, finetune_epochs=1, directory=directory,
        verbose=2,
    ).run()
    probe = toy_data(8, seed=2)[0]
    payload = {
        "tuner": TUNER_ID,
        "arch": {k: str(v) for k, v in result.arch.items()},
        "madds": result.madds,
        "counted_madds": layernas.count_madds(result.model),
        "trials": result.trials,
        "score": result.score,
        "completed": result.completed,
        "probe_outputs": result.model.predict(probe, verbose=0).tolist(),
        "seconds": time.perf_counter() - started,
    }
    path = result_path(result_file, TUNER_ID)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


if __name__ == "__main__":
    main(*sys.argv[1:4])
