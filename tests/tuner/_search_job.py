"""A LayerNAS search in its own process, for the resume and distributed tests.

With ``LAYERNAS_JOB_MODE=synthetic`` (default) training is a short sleep and
the score a fixed function of the architecture, so runs are fast and
comparable; with ``keras`` each trial trains a tiny Dense model for one epoch
on tiny fixed data through LayerNASTuner's own run_trial. Every trial start and end
is appended to a log, fsync'ed, so the parent test can count what really ran.
``LAYERNAS_KILL_AT=point:n`` makes the process SIGKILL itself the n-th time it
reaches ``point``; the points are the moments a crash can hurt a search.

Usage: python _search_job.py PROJECT_DIR LOG_PATH RESULT_PATH
(plus KERASTUNER_* variables for a distributed chief or worker, and
``LAYERNAS_WORKER_TIMEOUT_S`` for the chief's ``worker_timeout_s``).
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
import zlib
from pathlib import Path

import keras
import keras_tuner
import numpy as np

from keras_layernas.surgery import SearchSpace
from keras_layernas.tuner import LayerNASOracle, LayerNASTuner

WIDTHS = [48, 40, 32, 24, 16]
TARGET = (2_400, 3_200)
TRIAL_SECONDS = float(os.environ.get("LAYERNAS_TRIAL_SECONDS", "0.05"))
WORKER_TIMEOUT_S = float(os.environ.get("LAYERNAS_WORKER_TIMEOUT_S", "3600"))
KILL_POINTS = (
    "after_ask",          # LayerNAS asked, nothing written yet
    "trial_file_only",    # trial.json written, oracle state not yet
    "mid_trial",          # training under way
    "after_report",       # objective reported (trial.json), end_trial not reached
    "before_tell",        # KerasTuner's end_trial saved the trial as ongoing
    "after_trial",        # trial ended and everything saved
)


def cost(v: dict) -> float:
    """Conv-like chain: each layer's cost depends on its neighbours' widths."""
    return 3 * v["l1"] + v["l1"] * v["l2"] + v["l2"] * v["l3"] + v["l3"] * v["l4"] + v["l4"] * 10


def score_of(arch: tuple) -> float:
    """Accuracy-like: grows with width, plus a fixed per-arch wobble."""
    wobble = zlib.crc32(repr(arch).encode()) % 1000 / 1000.0
    return round(sum(math.log(w) for w in arch) + 0.3 * wobble, 6)


SPACE = SearchSpace.from_options({f"l{i}": WIDTHS for i in range(1, 5)}, cost)
MODE = os.environ.get("LAYERNAS_JOB_MODE", "synthetic")


def build_dense(v: dict) -> keras.Model:
    """Small MLP whose hidden widths are the searched values."""
    layers = [keras.Input((8,))]
    layers += [keras.layers.Dense(v[f"l{i}"], activation="relu") for i in range(1, 5)]
    return keras.Sequential(layers + [keras.layers.Dense(2, activation="softmax")])


KERAS_SPACE = SearchSpace.from_options(
    {f"l{i}": WIDTHS[::2] for i in range(1, 5)}, cost, build_dense)


def tiny_data() -> tuple:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int32")


class _Killer:
    def __init__(self, spec: str | None):
        point, _, nth = (spec or ":").partition(":")
        self.point, self.left = point, int(nth or 0)
        if point and point not in KILL_POINTS:
            raise ValueError(f"Unknown kill point {point!r}; expected one of {KILL_POINTS}.")

    def reached(self, point: str) -> None:
        if point == self.point:
            self.left -= 1
            if self.left == 0:
                os.kill(os.getpid(), signal.SIGKILL)


KILLER = _Killer(os.environ.get("LAYERNAS_KILL_AT"))


def _append(log_path: str, record: dict) -> None:
    with open(log_path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _install_kill_points() -> None:
    """Wrap oracle methods so the process can die exactly at each point."""
    populate, save_trial, create = (
        LayerNASOracle.populate_space, LayerNASOracle._save_trial, LayerNASOracle.create_trial)
    update, tell = LayerNASOracle.update_trial, LayerNASOracle._tell
    creating = {"now": False}

    def populate_space(self, trial_id):
        response = populate(self, trial_id)
        if response["status"] == "RUNNING":
            KILLER.reached("after_ask")
        return response

    def create_trial(self, tuner_id):
        creating["now"] = True
        try:
            return create(self, tuner_id)
        finally:
            creating["now"] = False

    def _save_trial(self, trial):
        save_trial(self, trial)
        if creating["now"]:
            KILLER.reached("trial_file_only")

    def update_trial(self, trial_id, metrics, step=0):
        trial = update(self, trial_id, metrics, step=step)
        KILLER.reached("after_report")
        return trial

    def _tell(self, trial):
        KILLER.reached("before_tell")
        tell(self, trial)

    LayerNASOracle.populate_space = populate_space
    LayerNASOracle.create_trial = create_trial
    LayerNASOracle._save_trial = _save_trial
    LayerNASOracle.update_trial = update_trial
    LayerNASOracle._tell = _tell


class JobTuner(LayerNASTuner):
    """Logs each trial's start and end around synthetic or tiny Keras training."""

    def __init__(self, log_path: str, **kwargs):
        kwargs["worker_timeout_s"] = WORKER_TIMEOUT_S
        if MODE == "keras":
            super().__init__(
                KERAS_SPACE, objective=keras_tuner.Objective("val_accuracy", "max"),
                target=TARGET, num_buckets=3, per_bucket=1, seed=7,
                compile_kwargs={"optimizer": "adam", "metrics": ["accuracy"],
                                "loss": "sparse_categorical_crossentropy"}, **kwargs)
        else:
            super().__init__(SPACE, objective=keras_tuner.Objective("score", "max"),
                             target=TARGET, num_buckets=4, per_bucket=2, seed=7, **kwargs)
        self.log_path = log_path

    def run_trial(self, trial, *args, **kwargs):
        space = self.hypermodel.space if MODE == "keras" else SPACE
        arch = space.decode(trial.hyperparameters.values)
        record = {"tuner": self.tuner_id, "trial": trial.trial_id, "arch": list(arch),
                  "pid": os.getpid()}
        _append(self.log_path, {"event": "start", **record})
        KILLER.reached("mid_trial")
        if MODE == "keras":
            histories = super().run_trial(trial, *args, **kwargs)
            score = max(histories[0].history["val_accuracy"])
            results = histories
        else:
            time.sleep(TRIAL_SECONDS)
            score = score_of(arch)
            results = {"score": score}
        _append(self.log_path, {"event": "end", "score": score, **record})
        return results

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        KILLER.reached("after_trial")


def main(project_dir: str, log_path: str, result_path: str) -> None:
    _install_kill_points()
    tuner = JobTuner(log_path, directory=project_dir, project_name="job", overwrite=False)
    if MODE == "keras":
        x, y = tiny_data()
        tuner.search(x, y, validation_data=(x, y), epochs=1, batch_size=32, verbose=0)
    else:
        tuner.search(verbose=0)
    if tuner._is_worker():
        return
    oracle = tuner.oracle
    result = {
        "trials": {
            trial_id: {"arch": list(oracle.architecture(t)), "status": t.status,
                       "score": t.score}
            for trial_id, t in oracle.trials.items()
        },
        "bucket_table": oracle.bucket_table(),
        "pareto_front": oracle.pareto_front(),
        "best": [list(oracle.architecture(t)) for t in oracle.get_best_trials(3)],
        "finished": oracle.search.finished,
    }
    tmp = Path(result_path + ".tmp")
    tmp.write_text(json.dumps(result, default=repr))
    os.replace(tmp, result_path)


if __name__ == "__main__":
    main(*sys.argv[1:4])
