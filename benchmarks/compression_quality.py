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

Run (``--stage all``, the default, runs the three in order):
    python -m benchmarks.compression_quality --stage base
    python -m benchmarks.compression_quality --stage methods
    python -m benchmarks.compression_quality --stage report
"""
from __future__ import annotations

import argparse
import fcntl
import json
import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np

import keras_layernas as layernas
from benchmarks import _cifar10
from benchmarks._rank import kendall_tau, tau_with_interval
from benchmarks._report import RESULTS, ROOT, atomic_write, machine, write_section

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


# Measurements each stage appends, and what identifies one: two stages may run at once
# (e.g. methods beside rank), so a save merges what the other saved meanwhile
APPENDED = {"rows": ("method", "target", "seed"), "rank_candidates": ("target", "index")}


def save_results(payload: dict) -> None:
    """Write ``payload``, keeping the measurements another running stage saved since it was read."""
    path = RESULTS / f"{NAME}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        for field, key in APPENDED.items():
            known = {tuple(entry[k] for k in key) for entry in payload.get(field, [])}
            payload.setdefault(field, []).extend(
                entry for entry in saved.get(field, []) if tuple(entry[k] for k in key) not in known)
        for target, pool in saved.get("rank_pool", {}).items():
            payload.setdefault("rank_pool", {}).setdefault(target, pool)
        payload["machine"] = machine()
        atomic_write(path, json.dumps(payload, indent=2) + "\n")


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


class _EpochTimer(keras.callbacks.Callback):
    """Logs each epoch of a long training, so a background run shows how far it is."""

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        log(f"epoch {epoch + 1}: train {logs['accuracy']:.4f} ({time.perf_counter() - self._started:.0f} s)")


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



# -- stage: methods --------------------------------------------------------------------
TARGETS = (0.7, 0.5, 0.3)
TOLERANCE = 0.05
FINETUNE_RECIPE = {
    "epochs": 1,
    "optimizer": "Adam, cosine decay to 0 over the fine-tune",
    "learning_rate": 5e-4,
    "batch_size": 128,
    "data": "the base's 45k training split and augmentation",
    "bn": "BatchNorm statistics re-estimated on 20 training batches before evaluation",
}
# Trials with data (compress_data, random_search): this many, each trained on this many
# training images per epoch
TRIALS = 24
TRIAL_IMAGES = 5_000
METHODS = ("base_finetuned", "uniform_inherited", "global_magnitude", "compress_free",
           "compress_data", "random_search", "uniform_scratch", "compress_free_ce", "compress_free_kd",
           "compress_steps", "compress_steps_repeat", "compress_defaults")
DEFAULT_METHODS = ("base_finetuned", "uniform_inherited", "global_magnitude", "compress_free")


def width_of(option) -> int:
    """Channel count of a width option (a plain int or a ``KernelWidth``)."""
    return int(getattr(option, "width", option))


def global_magnitude_arch(space: layernas.SearchSpace, model: keras.Model,
                          target: tuple[float, float]) -> tuple:
    """What a Torch-Pruning user gets: one global ranking of channels, cut to the target.

    Each coupled channel group's score is the sum of ``|gamma|`` over the
    BatchNorm layers on its channels, divided by the group's mean (Torch-Pruning's
    ``global_pruning`` with a ``mean`` group normalizer), so all groups share one
    scale. One threshold ``t`` keeps, in every group, the channels scoring
    ``>= t``, rounded up to the space's next width option; ``t`` is raised by
    bisection until the MAdds fall into ``target``. Kernels stay as in the base;
    which channels survive within a group is surgery's own importance (L1), as
    for every method here.
    """
    scores = []
    for layer in space.layers:
        base = layer.options[0]
        if layer.kind == "kernel":
            scores.append(None)
            continue
        norms = [model.get_layer(name) for name in layer.owners]
        gammas = [np.abs(bn.gamma.numpy()) for bn in norms
                  if isinstance(bn, keras.layers.BatchNormalization)
                  and bn.gamma is not None and bn.gamma.shape[0] == width_of(base)]
        if not gammas:
            scores.append(None)
            continue
        total = np.sum(gammas, axis=0)
        scores.append(total / total.mean())

    def arch_at(threshold: float) -> tuple:
        arch = []
        for layer, channel_scores in zip(space.layers, scores):
            base = layer.options[0]
            if channel_scores is None:
                arch.append(base)
                continue
            keep = max(1, int((channel_scores >= threshold).sum()))
            same_kernel = [o for o in layer.options if getattr(o, "kernel", None) == getattr(base, "kernel", None)]
            wide_enough = [o for o in same_kernel if width_of(o) >= keep]
            arch.append(min(wide_enough, key=width_of))
        return tuple(arch)

    low, high = 0.0, max(float(s.max()) for s in scores if s is not None) + 1.0
    best = None
    for _ in range(60):
        middle = (low + high) / 2
        arch = arch_at(middle)
        cost = space.cost(arch)
        if cost > target[1]:
            low = middle
        else:
            high = middle
            best = arch
            if cost >= target[0]:
                return arch
    if best is None:
        raise RuntimeError(f"global magnitude cut cannot reach {target}")
    return best


def every_width_space(model: keras.Model) -> layernas.SearchSpace:
    """Every width from 1 to the base's, base kernels: the uniform and global cuts
    can then land inside the 5% tolerance (the default space's widths step by 8)."""
    return layernas.SearchSpace.from_model(
        model, width_options=lambda name, base_width: range(base_width, 0, -1), kernel_options=None)


def finetune_and_test(model: keras.Model, splits: dict, seed: int) -> dict:
    """The one final fine-tune every method gets; accuracies after BN re-estimation."""
    recipe, size = FINETUNE_RECIPE, BASE_RECIPE["input_size"]
    keras.utils.set_random_seed(seed)
    train = _cifar10.make_dataset(splits["train"], recipe["batch_size"], size, training=True, seed=seed)
    bn = _cifar10.bn_dataset(splits["train"], recipe["batch_size"], size)
    started = time.perf_counter()
    if recipe["epochs"]:
        _cifar10.train(model, train, recipe["epochs"], recipe["learning_rate"], recipe["batch_size"])
    seconds = time.perf_counter() - started
    validation = _cifar10.make_dataset(splits["validation"], 256, size, training=False)
    test = _cifar10.make_dataset(splits["test"], 256, size, training=False)
    return {"val_acc": _cifar10.evaluate(model, bn, validation),
            "test_acc": _cifar10.evaluate(model, bn, test), "finetune_s": seconds}


def trial_data(splits: dict) -> tuple:
    size = BASE_RECIPE["input_size"]
    head = (splits["train"][0][:TRIAL_IMAGES], splits["train"][1][:TRIAL_IMAGES])
    train = _cifar10.make_dataset(head, 64, size, training=True, seed=0)
    validation = _cifar10.make_dataset(splits["validation"], 256, size, training=False)
    return train, validation


class FitTimer(keras.callbacks.Callback):
    """Seconds of every fit, and of its first batch (which includes tf.function tracing)."""

    def __init__(self):
        super().__init__()
        self.fits: list[dict] = []

    def on_train_begin(self, logs=None):
        self._started = self._batch_started = time.perf_counter()
        self._batches: list[float] = []

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._batches.append(time.perf_counter() - self._batch_started)

    def on_train_end(self, logs=None):
        steady = float(np.median(self._batches[1:])) if len(self._batches) > 1 else 0.0
        self.fits.append({"fit_s": time.perf_counter() - self._started, "batches": len(self._batches),
                          "first_batch_s": self._batches[0] if self._batches else 0.0,
                          "tracing_s": max(self._batches[0] - steady, 0.0) if self._batches else 0.0})


def random_search(base: keras.Model, target: tuple, train, validation) -> tuple[keras.Model, dict]:
    """``TRIALS`` uniformly random in-target architectures of compress()'s data space, each
    given compress()'s trial (the same Trainer: BN re-estimation, one distilled epoch, inference-
    mode validation accuracy); the best, with its trial's weights, gets compress()'s default
    final fine-tune (one epoch)."""
    space = layernas.SearchSpace.from_model(base)
    timer = FitTimer()
    trainer = layernas.compression.Trainer(train, validation, teacher=layernas.compression.frozen_copy(base), callbacks=[timer])
    search = layernas.RandomSearch(space.options, space.cost, target=target, seed=0, max_trials=TRIALS)
    best, scores = None, []
    while (candidate := search.ask()) is not None:
        model = space.materialize(candidate.arch)
        score = trainer.fine_tune(model, 1)
        search.tell(candidate, score)
        scores.append(score)
        log(f"random_search trial {len(scores)}: {candidate.cost / 1e6:.2f} MMAdds, val {score:.4f}")
        if best is None or score > best[0]:
            best = (score, model)
    if best is None:
        raise RuntimeError(f"RandomSearch found no architecture in {target}: widen the tolerance")
    trial_score = trainer.fine_tune(best[1], 1)
    return best[1], {"trials": len(scores), "trials_in_target": len(scores), "trial_scores": scores,
                     "trial_score": trial_score, "fits": timer.fits}


def compress_in_steps(base: keras.Model, fraction: float, train, validation, **budget) -> tuple[keras.Model, dict]:
    """Issue 13 item 3: ``layernas.compression.compress_in_steps`` with its defaults (the fewest
    steps that each keep >= 70% of the previous cost; compress's 12 trials and 12 winner epochs
    split evenly over them, so one-shot and steps train as long); ``budget`` for tests."""
    results = layernas.compression.compress_in_steps(
        base, fraction * layernas.count_madds(base), data=train, validation_data=validation,
        verbose=1, directory=WORK / "searches", **{"project_name": f"compress_steps_{fraction}", **budget})
    base_madds = layernas.count_madds(base)
    history = [trial for result in results for trial in result.history]
    info = {"steps": [{"target": result.target[1] / base_madds, "madds": result.madds, "trials": result.trials,
                       "trial_score": result.score} for result in results],
            "trials": len(history), "trial_scores": [trial["score"] for trial in history],
            "trials_in_target": None, "first_trial_score": history[0]["score"], "trial_score": results[-1].score}
    return results[-1].model, info


def slim_model(method: str, fraction: float, base: keras.Model, splits: dict) -> tuple[keras.Model, dict]:
    """The method's model at ``fraction`` of the base MAdds, before the final fine-tune."""
    space = layernas.SearchSpace.from_model(base)
    high = fraction * layernas.count_madds(base)
    target = ((1 - TOLERANCE) * high, high)
    started = time.perf_counter()
    info: dict = {}
    if method == "base_finetuned":
        model = keras.models.clone_model(base)
        model.set_weights(base.get_weights())
    elif method in ("uniform_inherited", "uniform_scratch"):
        fine = every_width_space(base)
        model = fine.materialize(layernas.compression.uniform_arch(fine, target))
        if method == "uniform_scratch":
            model = keras.models.clone_model(model)  # fresh initial weights
    elif method == "global_magnitude":
        fine = every_width_space(base)
        model = fine.materialize(global_magnitude_arch(fine, base, target))
    elif method == "compress_free":
        model = layernas.compress(base, high, verbose=0)
    elif method == "compress_free_ce":
        # compress_data's winner trained 1 epoch as a trial and 1 as compress's fine-tune, both
        # on the trial images with distillation; this gives compress_free's architecture those
        # 2 epochs with plain cross-entropy, to tell the teacher's share from the epochs'
        model = layernas.compress(base, high, verbose=0)
        train, validation = trial_data(splits)
        info["pretrain_val_acc"] = layernas.compression.Trainer(train, validation).fine_tune(model, 2)
    elif method == "compress_free_kd":
        # the equal-training test of the search: compress_data's whole training (TRIALS trial
        # epochs and its 1-epoch fine-tune, on the trial images, distilled) spent on
        # compress_free's one architecture instead of spread over TRIALS candidates
        model = layernas.compress(base, high, verbose=0)
        train, validation = trial_data(splits)
        teacher = layernas.compression.frozen_copy(base)
        info["pretrain_epochs"] = TRIALS + 1
        info["pretrain_val_acc"] = layernas.compression.Trainer(
            train, validation, teacher=teacher).fine_tune(model, TRIALS + 1)
    elif method in ("compress_steps", "compress_steps_repeat"):
        # the repeat: a second, independent run (the first 30% run used this benchmark's own loop
        # of searches, before it moved into the product as compress_in_steps)
        model, info = compress_in_steps(base, fraction, *trial_data(splits), project_name=f"{method}_{fraction}")
    elif method in ("compress_data", "compress_defaults"):
        # compress_data: the 24-trial search measured first, with the 1-epoch fine-tune that was
        # then compress's default; compress_defaults: compress(base, T, data=...) as it is now
        budget = {"max_trials": TRIALS, "finetune_epochs": 1} if method == "compress_data" else {}
        train, validation = trial_data(splits)
        timer = FitTimer()
        search = layernas.CompressionSearch(
            base, high, data=train, validation_data=validation, verbose=1, directory=WORK / "searches",
            project_name=f"{method}_{fraction}", callbacks=[timer], **budget)
        result = search.run()
        info["fits"] = timer.fits
        model = result.model
        info |= {"trials": result.trials, "completed": result.completed, "start": search.config.start,
                 "finetune_epochs": search.config.finetune_epochs,
                 "trials_in_target": sum(target[0] <= h["madds"] <= target[1] for h in result.history),
                 "trial_scores": [h["score"] for h in result.history],
                 "first_trial_score": result.history[0]["score"], "trial_score": result.score}
    elif method == "random_search":
        model, info = random_search(base, target, *trial_data(splits))
    else:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    info["search_s"] = time.perf_counter() - started
    if method == "uniform_scratch":
        steps_per_epoch = -(-len(splits["train"][1]) // BASE_RECIPE["batch_size"])
        train = _cifar10.make_dataset(splits["train"], BASE_RECIPE["batch_size"],
                                      BASE_RECIPE["input_size"], training=True, seed=0)
        # an hour of training here: a killed run resumes from its last finished epoch
        backup = keras.callbacks.BackupAndRestore(str(WORK / f"scratch_backup_{fraction}"))
        _cifar10.train(model, train, BASE_RECIPE["epochs"], BASE_RECIPE["learning_rate"],
                       BASE_RECIPE["batch_size"], warmup_epochs=1, callbacks=[backup, _EpochTimer()])
        info["scratch_train_s"] = time.perf_counter() - started - info["search_s"]
        info["steps_per_epoch"] = steps_per_epoch
    return model, info


def stage_methods(payload: dict, methods: list[str], seeds: int, targets: list[float]) -> None:
    base = load_base()
    splits = _cifar10.load_splits()
    done = {(r["method"], r["target"], r["seed"]) for r in payload["rows"]}
    slim_dir = WORK / "slim"
    slim_dir.mkdir(parents=True, exist_ok=True)
    for fraction in targets:
        for method in methods:
            target = 1.0 if method == "base_finetuned" else fraction
            if method == "base_finetuned" and fraction != targets[0]:
                continue
            todo = [s for s in range(seeds) if (method, target, s) not in done]
            if not todo:
                continue
            path = slim_dir / f"{method}_{target}.keras"
            info_path = slim_dir / f"{method}_{target}.json"
            if path.exists() and info_path.exists():
                info = json.loads(info_path.read_text())
            else:
                log(f"{method} at {target:.0%}: searching")
                model, info = slim_model(method, target, base, splits)
                model.save(path)
                atomic_write(info_path, json.dumps(info))
            for seed in todo:
                model = keras.models.load_model(path)
                scores = finetune_and_test(model, splits, seed)
                row = {"method": method, "target": target, "seed": seed,
                       "madds": layernas.count_madds(model), "params": model.count_params(),
                       **info, **scores}
                payload["rows"].append(row)
                payload["finetune_recipe"] = FINETUNE_RECIPE
                save_results(payload)
                log(f"{method} at {target:.0%} seed {seed}: test {scores['test_acc']:.4f} "
                    f"({row['madds'] / 1e6:.2f} MMAdds)")


# -- stage: rank -----------------------------------------------------------------------
RANK_TARGETS = (0.5, 0.3)
# LayerNAS trials per target whose trained models the rank study takes: compress_data's 24
# trials, resumed to this many, so that >= 30 distinct in-target models come out
RANK_TRIALS = 36
# The cheap scores ranked against the fine-tuned accuracy, and which compress() call uses each
RANK_SCORES = {
    "trial": "compress(data=...) default: val accuracy after 1 distilled epoch on 5,000 images",
    "trial_0_epochs": "val accuracy after BatchNorm re-estimation, no training",
    "teacher_kl_0_epochs": "minus the KL divergence from the base's outputs on validation, no training",
    "retained_equal": "compress() without data default: retained L1 importance, layers weighted equally",
    "retained_layers": "retained L1 importance, layers weighted by the kernels they slice",
    "madds": "the candidate's MAdds (inside the 5% band): the baseline any score must beat",
}
DEFAULT_SCORES = {"trial": "compress(model, T, data=...)", "retained_equal": "compress(model, T)"}


def rank_candidates(payload: dict, fraction: float, base: keras.Model, splits: dict) -> list[dict]:
    """The rank study's candidates at one target: every distinct in-target model LayerNAS's
    trials trained (compress_data's search resumed to ``RANK_TRIALS``), with its trial score,
    then the uniform and global-magnitude cuts. Kept in the results file (``rank_pool``), not
    only in the git-ignored work folder, so a study resumed on a fresh checkout ranks the same set."""
    pool = payload.setdefault("rank_pool", {})
    if str(fraction) in pool:
        return pool[str(fraction)]
    high = fraction * layernas.count_madds(base)
    target = ((1 - TOLERANCE) * high, high)
    project = WORK / "rank" / f"search_{fraction}"
    searched = WORK / "searches" / f"compress_data_{fraction}"
    if not project.exists() and searched.exists():
        shutil.copytree(searched, project)  # its 24 trials are not trained again
    train, validation = trial_data(splits)
    result = layernas.CompressionSearch(
        base, high, data=train, validation_data=validation, max_trials=RANK_TRIALS, verbose=1,
        directory=WORK / "rank", project_name=project.name).run()
    candidates, seen = [], set()
    for trial in result.history:
        key = json.dumps(trial["arch"], sort_keys=True)
        if trial["layer"] == "completion" or not target[0] <= trial["madds"] <= target[1] or key in seen:
            continue  # a repeated model keeps its first trial's score
        seen.add(key)
        candidates.append({"source": "layernas", "trial": trial["id"], "arch": trial["arch"],
                           "madds": trial["madds"], "trial_score": trial["score"]})
    fine = every_width_space(base)
    for source, arch in (("uniform_inherited", layernas.compression.uniform_arch(fine, target)),
                         ("global_magnitude", global_magnitude_arch(fine, base, target))):
        candidates.append({"source": source, "trial": None, "arch": fine.encode(arch),
                           "madds": fine.cost(arch), "trial_score": None})
    pool[str(fraction)] = candidates
    save_results(payload)
    return candidates


def check_measured_match(candidates: list[dict], measured: list[dict], fraction: float) -> None:
    """Refuse to mix two pools: a measurement taken on another search's candidates (say, before
    the work folder was lost and the search ran again) must name the same model at its index."""
    for entry in measured:
        if entry["target"] != fraction:
            continue
        candidate = candidates[entry["index"]] if entry["index"] < len(candidates) else {}
        if any(candidate.get(k) != entry[k] for k in ("source", "trial", "madds")):
            raise ValueError(
                f"rank study at {fraction:.0%}: measured candidate #{entry['index']} ({entry['source']}, "
                f"trial {entry['trial']}, {entry['madds']} MAdds) is not the pool's #{entry['index']} "
                f"({candidate or 'missing'}); the pool was searched again. Remove that target's "
                "rank_candidates from the results file to measure the new pool from the start.")


def teacher_kl(model: keras.Model, teacher_probs: np.ndarray, validation) -> float:
    """Mean KL(teacher || model) of the softmax outputs on the validation images."""
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(validation, verbose=0)))
    eps = 1e-8
    return float(np.mean(np.sum(teacher_probs * (np.log(teacher_probs + eps) - np.log(probs + eps)), axis=1)))


def rank_measure(candidate: dict, spaces: dict, scorers: dict, trainer: layernas.compression.Trainer,
                 teacher_probs: np.ndarray, splits: dict) -> dict:
    """Every cheap score of one candidate, then its fine-tuned accuracy (the final fine-tune,
    seed 0, from the base's inherited weights: what each score claims to predict). ``trainer``
    is compress's trial (the trial images, the base as teacher)."""
    space_name = "default" if candidate["source"] == "layernas" else "every_width"
    space = spaces[space_name]
    arch = space.decode(candidate["arch"])
    # the every-width space has other searchable layers (25 against 23), so its retained
    # importance is on another scale: the data-free scores rank LayerNAS's candidates only
    scores = {name: scorer(arch) for name, scorer in scorers.items()} if space_name == "default" else {}
    scores["madds"] = candidate["madds"]
    model = space.materialize(arch)
    scores["trial_0_epochs"] = trainer.fine_tune(model, 0)
    scores["teacher_kl_0_epochs"] = -teacher_kl(model, teacher_probs, trainer.validation)
    scores["trial"] = (candidate["trial_score"] if candidate["trial_score"] is not None
                       else trainer.fine_tune(space.materialize(arch), 1))
    return {"scores": scores, **finetune_and_test(space.materialize(arch), splits, seed=0)}


def stage_rank(payload: dict, targets: list[float]) -> None:
    """For each target, every candidate's cheap scores and fine-tuned accuracy, one
    candidate at a time into ``payload["rank_candidates"]`` (resumable)."""
    base = load_base()
    splits = _cifar10.load_splits()
    spaces = {"default": layernas.SearchSpace.from_model(base), "every_width": every_width_space(base)}
    scorers = {f"retained_{w}": layernas.compression.RetainedImportance(spaces["default"], base, w)
               for w in layernas.compression.WEIGHTINGS}
    trainer = layernas.compression.Trainer(*trial_data(splits), teacher=layernas.compression.frozen_copy(base))
    teacher_probs = keras.ops.convert_to_numpy(keras.ops.softmax(base.predict(trainer.validation, verbose=0)))
    measured = payload.setdefault("rank_candidates", [])
    for fraction in targets:
        candidates = rank_candidates(payload, fraction, base, splits)
        check_measured_match(candidates, measured, fraction)
        done = {m["index"] for m in measured if m["target"] == fraction}
        log(f"rank study at {fraction:.0%}: {len(candidates)} candidates, {len(done)} measured")
        # the uniform and global cuts first: a study stopped early still ranks them
        for index in sorted(range(len(candidates)), key=lambda i: candidates[i]["source"] == "layernas"):
            candidate = candidates[index]
            if index in done:
                continue
            entry = {"target": fraction, "index": index, "source": candidate["source"],
                     "trial": candidate["trial"], "madds": candidate["madds"],
                     **rank_measure(candidate, spaces, scorers, trainer, teacher_probs, splits)}
            measured.append(entry)
            save_results(payload)
            log(f"rank {fraction:.0%} #{index} ({candidate['source']}): test {entry['test_acc']:.4f}, "
                + ", ".join(f"{k} {v:.4g}" for k, v in entry["scores"].items()))


def rank_table(measured: list[dict]) -> list[dict]:
    """Kendall tau-b (90% bootstrap interval) of every cheap score against fine-tuned test
    accuracy (and validation accuracy, on which a default is chosen), per target."""
    rank = []
    for target in sorted({m["target"] for m in measured}, reverse=True):
        entries = [m for m in measured if m["target"] == target]
        for score in RANK_SCORES:
            values = [m["scores"].get(score) for m in entries]
            pairs = [(v, m) for v, m in zip(values, entries) if v is not None]
            tau, ci90 = tau_with_interval([v for v, _ in pairs], [m["test_acc"] for _, m in pairs])
            tau_val = kendall_tau([v for v, _ in pairs], [m["val_acc"] for _, m in pairs])
            finite = lambda value: None if value is None or np.isnan(value) else value  # JSON has no NaN
            rank.append({"target": target, "score": score, "default": score in DEFAULT_SCORES,
                         "default_of": DEFAULT_SCORES.get(score), "kendall_tau": finite(tau), "ci90": ci90,
                         "kendall_tau_val": finite(tau_val), "n": len(pairs)})
    return rank


# -- stage: report ---------------------------------------------------------------------
def _compare(seeds: dict[int, dict], reference: dict[int, dict]) -> dict | None:
    """Paired difference (same fine-tune seed) of two methods at one target, with a verdict.

    A difference whose size is below the larger seed spread of the two methods
    is ``"no difference measured"``, never a win or a loss.
    """
    paired = [seeds[s]["test_acc"] - reference[s]["test_acc"] for s in seeds if s in reference]
    if not paired:
        return None
    spread = max((float(np.std([r["test_acc"] for r in rows.values()], ddof=1)) if len(rows) > 1 else 0.0)
                 for rows in (seeds, reference))
    difference = float(np.mean(paired))
    return {"difference": difference,
            "difference_std": float(np.std(paired, ddof=1)) if len(paired) > 1 else None,
            "spread": spread,
            "verdict": ("no difference measured" if abs(difference) <= spread or len(paired) < 2
                        else "better" if difference > 0 else "worse")}


# The calls with data, each measured against the others and these (the goals), when
# both ran at a target
COMPARED = ("compress_data", "compress_defaults", "compress_steps", "compress_steps_repeat")
RIVALS = ("uniform_inherited", "global_magnitude", "compress_free", "random_search", "compress_free_ce",
          "compress_free_kd", "uniform_scratch")


def summarize(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Per (method, target): mean, spread and paired difference to ``uniform_inherited``;
    and compress_data against each of ``RIVALS`` (paired, see :func:`_compare`)."""
    by_key: dict[tuple, dict[int, dict]] = {}
    for row in rows:
        by_key.setdefault((row["method"], row["target"]), {})[row["seed"]] = row
    summary = []
    for (method, target), seeds in sorted(by_key.items(), key=lambda kv: (-kv[0][1], kv[0][0])):
        accuracies = np.array([r["test_acc"] for r in seeds.values()])
        entry = {"method": method, "target": target, "n": len(accuracies),
                 "madds": int(np.mean([r["madds"] for r in seeds.values()])),
                 "mean": float(accuracies.mean()),
                 "std": float(accuracies.std(ddof=1)) if len(accuracies) > 1 else None}
        reference = by_key.get(("uniform_inherited", target))
        versus = None if not reference or method == "uniform_inherited" else _compare(seeds, reference)
        if versus:
            entry.update(vs_uniform=versus["difference"], vs_uniform_std=versus["difference_std"],
                         verdict=versus["verdict"])
        summary.append(entry)
    comparisons = []
    for (method, target), seeds in sorted(by_key.items(), key=lambda kv: -kv[0][1]):
        if method not in COMPARED:
            continue
        for rival in (*RIVALS, *(m for m in COMPARED if m != method)):
            versus = by_key.get((rival, target)) and _compare(seeds, by_key[(rival, target)])
            if versus:
                comparisons.append({"method": method, "versus": rival, "target": target, **versus})
    return summary, comparisons


def searches(rows: list[dict]) -> list[dict]:
    """What each search with data spent and found: trials in target, seconds per trial, the
    share of fit time spent tracing, and the first, best and chosen trial scores."""
    found = {}
    for row in rows:
        if "trial_scores" in row and (row["method"], row["target"]) not in found:
            fits = row.get("fits", [])
            scores = row["trial_scores"]
            found[(row["method"], row["target"])] = {
                "method": row["method"], "target": row["target"], "trials": row["trials"],
                "in_target": row["trials_in_target"], "start": row.get("start"),
                "search_s": row["search_s"], "s_per_trial": row["search_s"] / max(row["trials"], 1),
                "tracing_share_of_fits": (sum(f["tracing_s"] for f in fits) / sum(f["fit_s"] for f in fits)
                                          if fits else None),
                "tracing_s_per_fit": float(np.mean([f["tracing_s"] for f in fits])) if fits else None,
                "first_trial_score": scores[0], "best_trial_score": max(scores),
                "chosen_after_finetune": row.get("trial_score")}
    return sorted(found.values(), key=lambda e: (-e["target"], e["method"]))


def layers_differing(path: Path, other: Path) -> int | None:
    """How many layers of two slim models differ in width or kernel (None: a model is missing)."""
    if not (path.exists() and other.exists()):
        return None
    first, second = keras.models.load_model(path), keras.models.load_model(other)
    shape = lambda layer: [getattr(layer, a, None) for a in ("filters", "units", "kernel_size")]
    return sum(shape(layer) != shape(second.get_layer(layer.name)) for layer in first.layers)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def stage_report(payload: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, comparisons = summarize(payload["rows"])
    found = searches(payload["rows"])
    # the slim models live in the git-ignored work folder: a report without them keeps the count
    known = {(e["method"], e["target"]): e.get("layers_differing_from_compress_free")
             for e in payload.get("searches", [])}
    for entry in found:
        differing = layers_differing(WORK / "slim" / f"{entry['method']}_{entry['target']}.keras",
                                     WORK / "slim" / f"compress_free_{entry['target']}.keras")
        entry["layers_differing_from_compress_free"] = (
            known.get((entry["method"], entry["target"])) if differing is None else differing)
    payload.update(summary=summary, comparisons=comparisons, searches=found,
                   rank=rank_table(payload.get("rank_candidates", [])))
    save_results(payload)
    base = payload["base"]
    lines = [
        f"Base: MobileNetV2 0.35 @ 64x64 on CIFAR-10, test accuracy {_pct(base['test_acc'])}% "
        f"({base['madds'] / 1e6:.2f} MMAdds, {base['params']:,} params, trained "
        f"{base['recipe']['epochs']} epochs in {base['train_seconds'] / 60:.0f} min). Final fine-tune of "
        f"every method: {json.dumps(payload.get('finetune_recipe', FINETUNE_RECIPE))}.",
        "",
        "| target | method | MMAdds | n | test acc % (mean ± std) | vs uniform_inherited (pts, paired) | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        versus = "-" if "vs_uniform" not in e else (
            f"{100 * e['vs_uniform']:+.2f} ± {_pct(e['vs_uniform_std'])}")
        lines.append(f"| {e['target']:.0%} | {e['method']} | {e['madds'] / 1e6:.2f} | {e['n']} | "
                     f"{_pct(e['mean'])} ± {_pct(e['std'])} | {versus} | {e.get('verdict', '-')} |")
    if comparisons:
        lines += ["", "The calls with data against the others (paired by fine-tune seed; 'no difference "
                  "measured' when inside the larger seed spread):", "",
                  "| target | method | versus | difference (pts) | verdict |", "|---|---|---|---|---|"]
        lines += [f"| {c['target']:.0%} | {c['method']} | {c['versus']} | {100 * c['difference']:+.2f} ± "
                  f"{_pct(c['difference_std'])} | {c['verdict']} |" for c in comparisons]
    if payload["searches"]:
        lines += ["", "The searches with data (one per target; trial scores are validation accuracy "
                  "after the trial's one epoch on 5,000 images):", "",
                  "| target | method | trials in target | s per trial | tracing share of fit time | "
                  "first trial | best trial | chosen, after compress's fine-tune | layers unlike compress_free's |",
                  "|---|---|---|---|---|---|---|---|---|"]
        in_target = lambda e: "each in its step's" if e["in_target"] is None else f"{e['in_target']}/{e['trials']}"
        lines += [f"| {e['target']:.0%} | {e['method']} | {in_target(e)} | "
                  f"{e['s_per_trial']:.0f} | "
                  f"{_share(e['tracing_share_of_fits'])} | "
                  f"{_pct(e['first_trial_score'])} | {_pct(e['best_trial_score'])} | "
                  f"{_pct(e['chosen_after_finetune'])} | {e['layers_differing_from_compress_free']} |"
                  for e in payload["searches"]]
    if payload["rank"]:
        lines += ["", "Rank study: how well each cheap score orders in-target candidates by their accuracy "
                  "after the final fine-tune (seed 0, from the base's inherited weights). Candidates: every "
                  f"distinct in-target model of LayerNAS's trials ({RANK_TRIALS} trials) plus the uniform "
                  "and global-magnitude cuts; the retained-importance scores rank LayerNAS's candidates only. "
                  "Kendall tau-b with a 90% bootstrap interval:", "",
                  "| target | score | default of | tau vs test acc (CI90) | tau vs val acc | n |",
                  "|---|---|---|---|---|---|"]
        tau = lambda value: "-" if value is None else f"{value:+.2f}"
        lines += [f"| {r['target']:.0%} | {r['score']} | {r['default_of'] or '-'} | {tau(r['kendall_tau'])} "
                  f"({tau(r['ci90'][0])}, {tau(r['ci90'][1])}) | {tau(r['kendall_tau_val'])} | {r['n']} |"
                  for r in payload["rank"]]
        plot_rank(payload["rank_candidates"])
    table = "\n".join(lines)
    write_section(NAME, "## Compression quality on a trained MobileNetV2\n\n"
                  "`python -m benchmarks.compression_quality` (staged, resumable; "
                  "results/compression_quality.json, plot results/compression_quality.png). "
                  + table)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for method in sorted({e["method"] for e in summary}):
        points = sorted((e for e in summary if e["method"] == method), key=lambda e: e["madds"])
        axes.errorbar([e["madds"] / 1e6 for e in points], [100 * e["mean"] for e in points],
                      yerr=[100 * (e["std"] or 0) for e in points], marker="o", capsize=3, label=method)
    axes.set_xlabel("MMAdds")
    axes.set_ylabel("CIFAR-10 test accuracy % (mean ± std over seeds)")
    axes.set_title("Compression quality: same final fine-tune for every method")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(RESULTS / f"{NAME}.png", dpi=110)
    print(table)


def plot_rank(measured: list[dict]) -> None:
    """Each cheap score against fine-tuned test accuracy, one panel per score, one colour per target."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(RANK_SCORES), figsize=(3.2 * len(RANK_SCORES), 3.2))
    for axis, score in zip(axes, RANK_SCORES):
        for target in sorted({m["target"] for m in measured}, reverse=True):
            points = [(m["scores"][score], m["test_acc"]) for m in measured
                      if m["target"] == target and m["scores"].get(score) is not None]
            axis.scatter([p[0] for p in points], [100 * p[1] for p in points], s=12, label=f"{target:.0%}")
        axis.set_title(score, fontsize=9)
        axis.set_xlabel("score", fontsize=8)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("test acc % after the final fine-tune")
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(RESULTS / f"{NAME}_rank.png", dpi=100)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=("all", "base", "methods", "rank", "report"), default="all")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help=f"comma-separated, of {METHODS}")
    parser.add_argument("--seeds", type=int, default=3, help="final fine-tunes per method and target")
    parser.add_argument("--targets", default=None,
                        help="fractions of the base MAdds, in the order to run them (default: "
                             f"{','.join(map(str, TARGETS))} for methods, {','.join(map(str, RANK_TARGETS))} for rank)")
    args = parser.parse_args(argv)
    args.targets = args.targets and [float(t) for t in args.targets.split(",")]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    payload = load_results()
    if args.stage in ("all", "base"):
        stage_base(payload)
    if args.stage in ("all", "methods"):
        stage_methods(payload, args.methods.split(","), args.seeds, args.targets or list(TARGETS))
    if args.stage in ("all", "rank"):
        stage_rank(payload, args.targets or list(RANK_TARGETS))
    if args.stage in ("all", "report"):
        stage_report(payload)


if __name__ == "__main__":
    main()
