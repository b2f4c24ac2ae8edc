"""Compression quality on a trained CIFAR-10 MobileNetV2: compress() against what users would pick.

The question: at the same MAdds, is the slim model that ``layernas.compress``
returns more accurate than the uniform width cut, a global magnitude cut or a
random search, after the same final fine-tune? Staged and resumable: every
stage saves what it finished into ``benchmarks/results/compression_quality.json``
(atomically) and skips it when run again.

Stages (``--stage``):

``base``
    keras.applications MobileNetV2 (alpha 0.35, CIFAR-10 upsampled to 64x64,
    BN momentum 0.9, see benchmarks/_cifar10.py) trained on the 45k training
    split with the recipe in ``BASE_RECIPE``; validation accuracy after every
    epoch, test accuracy once at the end. The weights are saved in
    ``benchmarks/models/`` with the recipe, so every later run and every method
    starts from the same base. Resumes from the last finished epoch.
``methods``
    Each method at 70%, 50% and 30% of the base MAdds (5% tolerance), then the
    same final fine-tune (``FINETUNE_RECIPE``) with ``--seeds`` seeds.
``report``
    Table in docs/benchmarks.md and a plot in benchmarks/results/.

Run:
    python -m benchmarks.compression_quality --stage base
    python -m benchmarks.compression_quality --stage methods
    python -m benchmarks.compression_quality --stage report
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np

import keras_layernas as layernas
from benchmarks import _cifar10
from benchmarks._report import RESULTS, ROOT, atomic_write, machine

NAME = "compression_quality"
MODELS = ROOT / "benchmarks" / "models"
WORK = ROOT / "benchmarks" / "work" / NAME  # git-ignored: checkpoints of unfinished runs
BASE_WEIGHTS = MODELS / "mobilenet_v2_035_cifar10_64.weights.h5"
BASE_RECIPE = {
    "model": "keras.applications.MobileNetV2(alpha=0.35, input_shape=(64, 64, 3), classes=10, "
             "weights=None, classifier_activation=None), BatchNorm momentum 0.9",
    "alpha": 0.35,
    "input_size": 64,
    "data": "CIFAR-10 train split 45k (5k held out for validation), upsampled 32->64 bilinear, "
            "random flip + random crop after 8-pixel padding, pixels to [-1, 1]",
    "optimizer": "Adam, 1 warmup epoch then cosine decay to 0",
    "learning_rate": 2e-3,
    "batch_size": 128,
    "epochs": 24,
    "seed": 0,
    "bn": "BatchNorm statistics re-estimated on 20 training batches before every evaluation",
}


# -- results file ----------------------------------------------------------------------
def load_results() -> dict:
    path = RESULTS / f"{NAME}.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"base": None, "rows": [], "rank": []}


def save_results(payload: dict) -> None:
    payload["machine"] = machine()
    atomic_write(RESULTS / f"{NAME}.json", json.dumps(payload, indent=2) + "\n")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- stage: base -----------------------------------------------------------------------
class _EpochLog(keras.callbacks.Callback):
    """Validation accuracy (BN re-estimated) after each epoch, saved as it goes."""

    def __init__(self, splits: dict, state_path: Path):
        super().__init__()
        size, batch = BASE_RECIPE["input_size"], BASE_RECIPE["batch_size"]
        self.bn = _cifar10.bn_dataset(splits["train"], batch, size)
        self.validation = _cifar10.make_dataset(splits["validation"], 256, size, training=False)
        self.state_path = state_path
        self.state = json.loads(state_path.read_text()) if state_path.exists() else {"epochs": []}
        self._started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        # evaluate a copy: re-estimating BN on the training model would move its statistics
        copy = keras.models.clone_model(self.model)
        copy.set_weights(self.model.get_weights())
        accuracy = _cifar10.evaluate(copy, self.bn, self.validation)
        self.state["epochs"].append({"epoch": epoch + 1, "train_accuracy": float(logs["accuracy"]),
                                     "val_accuracy": accuracy, "seconds": seconds})
        atomic_write(self.state_path, json.dumps(self.state, indent=1))
        log(f"base epoch {epoch + 1}: train {logs['accuracy']:.4f} val {accuracy:.4f} ({seconds:.0f} s)")


def load_base() -> keras.Model:
    """The trained benchmark base (weights from benchmarks/models)."""
    if not BASE_WEIGHTS.exists():
        raise FileNotFoundError(
            f"No trained base at {BASE_WEIGHTS}. Run: python -m benchmarks.compression_quality --stage base"
        )
    model = _cifar10.mobilenet_v2(BASE_RECIPE["alpha"], BASE_RECIPE["input_size"], seed=0)
    model.load_weights(BASE_WEIGHTS)
    return model


def stage_base(payload: dict) -> None:
    if payload.get("base") and BASE_WEIGHTS.exists():
        log(f"base done: test accuracy {payload['base']['test_acc']:.4f}")
        return
    recipe = BASE_RECIPE
    splits = _cifar10.load_splits()
    size, batch = recipe["input_size"], recipe["batch_size"]
    train = _cifar10.make_dataset(splits["train"], batch, size, training=True, seed=recipe["seed"])
    model = _cifar10.mobilenet_v2(recipe["alpha"], size, recipe["seed"])
    steps = int(train.cardinality()) * recipe["epochs"]
    _cifar10.compile_for_training(model, recipe["learning_rate"], steps,
                                  warmup=int(train.cardinality()))
    WORK.mkdir(parents=True, exist_ok=True)
    epochs = _EpochLog(splits, WORK / "base_epochs.json")
    started = time.perf_counter()
    model.fit(train, epochs=recipe["epochs"], verbose=0, callbacks=[
        keras.callbacks.BackupAndRestore(str(WORK / "base_backup")), epochs])
    seconds = sum(e["seconds"] for e in epochs.state["epochs"])
    bn = _cifar10.bn_dataset(splits["train"], batch, size)
    test = _cifar10.make_dataset(splits["test"], 256, size, training=False)
    validation = _cifar10.make_dataset(splits["validation"], 256, size, training=False)
    val_acc = _cifar10.evaluate(model, bn, validation)
    test_acc = _cifar10.evaluate(model, bn, test)
    MODELS.mkdir(parents=True, exist_ok=True)
    model.save_weights(BASE_WEIGHTS)
    atomic_write(MODELS / "mobilenet_v2_035_cifar10_64.recipe.json", json.dumps(
        {**recipe, "script": "python -m benchmarks.compression_quality --stage base",
         "val_acc": val_acc, "test_acc": test_acc}, indent=2) + "\n")
    payload["base"] = {
        "test_acc": test_acc, "val_acc": val_acc, "madds": layernas.count_madds(model),
        "params": model.count_params(), "recipe": recipe, "train_seconds": seconds,
        "wall_seconds_this_run": time.perf_counter() - started,
        "epochs": epochs.state["epochs"], "weights": str(BASE_WEIGHTS.relative_to(ROOT)),
    }
    save_results(payload)
    log(f"base: val {val_acc:.4f} test {test_acc:.4f} in {seconds:.0f} s of training")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=("base", "methods", "report"), default="base")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    payload = load_results()
    if args.stage == "base":
        stage_base(payload)


if __name__ == "__main__":
    main()
