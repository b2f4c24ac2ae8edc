"""Teacher agreement on synthetic inputs as a data-free score (issue 13 item 4).

No real image is used to score: inputs are synthesized from the base model's own
BatchNorm statistics (ZeroQ / DeepInversion: random inputs optimized so each
BatchNorm layer's batch mean and variance match its moving statistics, plus a
cross-entropy term toward an assigned class so the set covers every class), then
labelled by the base (the teacher). Each rank-study candidate is scored as a
trial with data would be, with the synthetic set in place of the data:

- ``synthetic_0_epochs``: BatchNorm re-estimated on synthetic inputs, then top-1
  agreement with the teacher on held-out synthetic inputs;
- ``synthetic_1_epoch``: the same after one distilled epoch on the synthetic set
  (compress()'s teacher-guided trial, :class:`layernas.compression.Trainer`).

Real data is used only to measure: Kendall tau of each score against the
candidates' fine-tuned accuracy from ``compression_quality --stage rank``.
Staged and resumable (the synthetic set and every candidate's scores are saved as
they finish). Writes ``results/synthetic_scores.json``. Run after the rank stage:
    python -m benchmarks.synthetic_scores
"""
from __future__ import annotations

import argparse
import json
import math
import time

import keras
import numpy as np
import tensorflow as tf

import keras_layernas as layernas
from benchmarks import _cifar10
from benchmarks._rank import kendall_tau, tau_with_interval
from benchmarks._report import RESULTS, atomic_write, write_json
from benchmarks.compression_quality import BASE_RECIPE, NAME, WORK, every_width_space, load_base, log

SYNTHESIS = {
    "train_images": 2048,
    "validation_images": 512,
    "batch_size": 128,
    "steps": 200,
    "learning_rate": 0.1,
    "class_weight": 1.0,
    "tv_weight": 1e-4,
    "init": "N(0, 1) pixels",
    "seed": 0,
}
TRIAL_BATCH = 64
STATE = WORK / "synthetic"


def batchnorm_probe(model: keras.Model) -> tuple[keras.Model, list]:
    """A model returning every BatchNorm's input and the logits, and those BatchNorm layers."""
    norms = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    if not norms:
        raise ValueError(f"{model.name!r} has no BatchNormalization layer: there are no statistics "
                         "to synthesize inputs from")
    return keras.Model(model.inputs, [n.input for n in norms] + list(model.outputs)), norms


def synthesize_batch(probe: keras.Model, norms: list, labels: np.ndarray, shape: tuple,
                     settings: dict, seed: int) -> tuple[np.ndarray, float]:
    """One batch of inputs whose BatchNorm statistics match the model's; returns it and its final BN loss."""
    means = [tf.constant(n.moving_mean.numpy()) for n in norms]
    stds = [tf.constant(np.sqrt(n.moving_variance.numpy() + n.epsilon)) for n in norms]
    rng = np.random.default_rng(seed)
    x = tf.Variable(rng.standard_normal((len(labels), *shape)).astype("float32"))
    optimizer = keras.optimizers.Adam(settings["learning_rate"])
    targets = tf.constant(labels)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            outputs = probe(x, training=False)
            bn_loss = 0.0
            for feature, mean, std in zip(outputs[:-1], means, stds):
                batch_mean, batch_var = tf.nn.moments(feature, axes=[0, 1, 2])
                bn_loss += tf.norm(batch_mean - mean) + tf.norm(tf.sqrt(batch_var + 1e-5) - std)
            class_loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
                targets, outputs[-1], from_logits=True))
            tv = tf.reduce_mean(tf.image.total_variation(x))
            loss = bn_loss + settings["class_weight"] * class_loss + settings["tv_weight"] * tv
        optimizer.apply_gradients([(tape.gradient(loss, x), x)])
        return bn_loss

    for _ in range(settings["steps"]):
        bn_loss = step()
    return x.numpy(), float(bn_loss)


def synthetic_set(base: keras.Model) -> dict:
    """Train and validation inputs synthesized from ``base``, labelled by it (cached in STATE)."""
    STATE.mkdir(parents=True, exist_ok=True)
    probe, norms = batchnorm_probe(base)
    shape = tuple(base.inputs[0].shape[1:])
    classes = int(base.outputs[0].shape[-1])
    settings, batch = SYNTHESIS, SYNTHESIS["batch_size"]
    total = settings["train_images"] + settings["validation_images"]
    info_path = STATE / "synthesis.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {"batches": []}
    for index in range(len(info["batches"]), -(-total // batch)):
        started = time.perf_counter()
        labels = (np.arange(batch) + index * batch) % classes
        images, bn_loss = synthesize_batch(probe, norms, labels.astype("int32"), shape, settings,
                                           settings["seed"] + index)
        np.save(STATE / f"batch_{index}.npy", images)
        info["batches"].append({"bn_loss": bn_loss, "seconds": time.perf_counter() - started})
        atomic_write(info_path, json.dumps(info))
        log(f"synthetic batch {index}: BN loss {bn_loss:.3f} ({info['batches'][-1]['seconds']:.0f} s)")
    images = np.concatenate([np.load(STATE / f"batch_{i}.npy") for i in range(len(info["batches"]))])[:total]
    logits = base.predict(images, batch_size=256, verbose=0)
    labels = logits.argmax(-1).astype("int32")
    assigned = (np.arange(len(images)) % classes)
    split = settings["train_images"]
    return {"train": (images[:split], labels[:split]), "validation": (images[split:], labels[split:]),
            "teacher_hits_assigned_class": float((labels == assigned).mean()),
            "label_counts": np.bincount(labels, minlength=classes).tolist(),
            "synthesis_s": sum(b["seconds"] for b in info["batches"]),
            "final_bn_loss": [b["bn_loss"] for b in info["batches"]]}


def trainer(base: keras.Model, synthetic: dict) -> layernas.compression.Trainer:
    """compress()'s teacher-guided trial, on the synthetic set."""
    x, y = synthetic["train"]

    def train() -> tf.data.Dataset:  # the same batches for every candidate
        return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(TRIAL_BATCH)

    validation = tf.data.Dataset.from_tensor_slices(synthetic["validation"]).batch(256)
    return layernas.compression.Trainer(train, validation, teacher=layernas.compression.frozen_copy(base))


def _copy(model: keras.Model) -> keras.Model:
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _test_accuracy(model: keras.Model, test: tf.data.Dataset) -> float:
    """Accuracy on ``test`` in inference mode, with the BatchNorm statistics the model has now."""
    if not model.compiled:
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return float(model.evaluate(test, verbose=0, return_dict=True)["accuracy"])


def calibration(base: keras.Model, synthetic: dict, fraction: float, splits: dict, test: tf.data.Dataset) -> dict:
    """compress()'s data-free model at ``fraction`` (1.0: the base): test accuracy with the base's BatchNorm
    statistics (as returned), re-estimated on the synthetic inputs, and on real training images."""
    # 1.0, the base itself: how well do synthetic inputs stand in for real ones?
    model = _copy(base) if fraction == 1.0 else layernas.compress(base, fraction * layernas.count_madds(base), verbose=0)
    row = {"target": fraction, "as_returned": _test_accuracy(model, test)}
    x = synthetic["train"][0]
    layernas.compression.reestimate_batchnorm(
        model, tf.data.Dataset.from_tensor_slices((x, synthetic["train"][1])).batch(128), num_batches=len(x) // 128)
    row["synthetic_bn"] = _test_accuracy(model, test)
    row["real_bn"] = _cifar10.evaluate(model, _cifar10.bn_dataset(splits["train"], 128, BASE_RECIPE["input_size"]), test)
    log(f"compress_free at {fraction:.0%}: test {row['as_returned']:.4f} as returned, "
        f"{row['synthetic_bn']:.4f} BN on synthetic, {row['real_bn']:.4f} BN on real")
    return row


def convergence(base: keras.Model, splits: dict, test: tf.data.Dataset) -> dict:
    """Does a longer synthesis make the inputs stand in for real ones? The base's test accuracy
    with BatchNorm re-estimated on one synthesized batch (200 and 800 steps) or on one real batch."""
    path = STATE / "convergence.json"
    if path.exists():
        return json.loads(path.read_text())
    size, batch = BASE_RECIPE["input_size"], SYNTHESIS["batch_size"]

    def accuracy_after_batchnorm_on(images: np.ndarray) -> float:
        model = _copy(base)
        layernas.compression.reestimate_batchnorm(model, tf.data.Dataset.from_tensors(images), num_batches=1)
        return _test_accuracy(model, test)

    real = next(iter(_cifar10.make_dataset(splits["train"], batch, size, training=False)))[0].numpy()
    result = {"batch_size": batch, "real_batch_acc": accuracy_after_batchnorm_on(real), "synthetic": []}
    probe, norms = batchnorm_probe(base)
    labels = (np.arange(batch) % int(base.outputs[0].shape[-1])).astype("int32")
    for steps in (200, 800):
        images, bn_loss = synthesize_batch(probe, norms, labels, tuple(base.inputs[0].shape[1:]),
                                           {**SYNTHESIS, "steps": steps}, SYNTHESIS["seed"])
        result["synthetic"].append({"steps": steps, "bn_loss": bn_loss, "acc": accuracy_after_batchnorm_on(images)})
        log(f"one batch, {steps} steps: BN loss {bn_loss:.1f}, base with BN on it {result['synthetic'][-1]['acc']:.4f}")
    atomic_write(path, json.dumps(result))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", type=float, default=0.3)
    args = parser.parse_args(argv)
    base = load_base()
    space, fine = layernas.SearchSpace.from_model(base), every_width_space(base)
    synthetic = synthetic_set(base)
    log(f"synthetic set: teacher agrees with the assigned class on "
        f"{synthetic['teacher_hits_assigned_class']:.2%}; labels {synthetic['label_counts']}")
    quality = json.loads((RESULTS / f"{NAME}.json").read_text())
    pool = quality["rank_pool"][str(args.target)]
    measured = sorted((m for m in quality["rank_candidates"] if m["target"] == args.target),
                      key=lambda m: m["index"])
    scores_path = STATE / f"scores_{args.target}.json"
    scores = json.loads(scores_path.read_text()) if scores_path.exists() else {}
    teacher_trainer = trainer(base, synthetic)
    for entry in measured:
        if str(entry["index"]) in scores:
            continue
        started = time.perf_counter()
        # the uniform and global cuts live in the every-width space (see compression_quality)
        own = space if entry["source"] == "layernas" else fine
        model = own.materialize(own.decode(pool[entry["index"]]["arch"]))
        layernas.compression.reestimate_batchnorm(model, teacher_trainer.training_data())
        zero = teacher_trainer.score(model)
        one = teacher_trainer.fine_tune(model, 1)
        scores[str(entry["index"])] = {"synthetic_0_epochs": zero, "synthetic_1_epoch": one,
                                       "seconds": time.perf_counter() - started}
        atomic_write(scores_path, json.dumps(scores))
        log(f"#{entry['index']} ({entry['source']}): agreement {zero:.4f} -> {one:.4f}, "
            f"test {entry['test_acc']:.4f} ({scores[str(entry['index'])]['seconds']:.0f} s)")
    rows = []
    for subset, keep in (("layernas", lambda m: m["source"] == "layernas"), ("all", lambda m: True)):
        entries = [m for m in measured if keep(m)]
        for name in ("synthetic_0_epochs", "synthetic_1_epoch"):
            values = [scores[str(m["index"])][name] for m in entries]
            tau, ci90 = tau_with_interval(values, [m["test_acc"] for m in entries])
            tau_val = kendall_tau(values, [m["val_acc"] for m in entries])
            tau, tau_val = (None if math.isnan(t) else t for t in (tau, tau_val))
            rows.append({"target": args.target, "score": name, "candidates": subset, "n": len(values),
                         "kendall_tau": tau, "ci90": ci90, "kendall_tau_val": tau_val})
            print(f"{args.target:.0%} {subset:8s} {name:20s} n={len(values)} tau test {tau} {ci90} val {tau_val}")
    splits = _cifar10.load_splits()  # real images, only to measure
    test = _cifar10.make_dataset(splits["test"], 256, BASE_RECIPE["input_size"], training=False)
    calibrated = [calibration(base, synthetic, fraction, splits, test) for fraction in (1.0, 0.7, 0.5, 0.3)]
    write_json("synthetic_scores", {
        "calibration": calibrated, "convergence": convergence(base, splits, test),
        "synthesis": SYNTHESIS, "trial": {"batch_size": TRIAL_BATCH, "epochs": 1, "teacher": True},
        "synthetic": {k: v for k, v in synthetic.items() if k not in ("train", "validation")},
        "rows": rows, "candidates": {k: scores[k] for k in sorted(scores, key=int)}})


if __name__ == "__main__":
    main()
