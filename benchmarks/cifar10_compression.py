"""Does LayerNAS slimming beat the uniform width multiplier on CIFAR-10? (issue 7, part 1)

Two stages, each run on real CIFAR-10 (offline JPEG copy, 45k/5k train/validation
split, the 10k test set only for final numbers):

1. ``sanity``: MobileNetV2 alpha 1.0 (the base) and the uniform alphas at ~50% and
   ~30% of its MAdds, all trained from scratch with one recipe for ``--seeds``
   seeds. The benchmark is only meaningful if base > 50% > 30% with gaps larger
   than the seed spread; the JSON records whether that holds.
2. ``compare`` at the MAdds of each uniform model (the target is that model's
   MAdds, so no method gets more than the uniform baseline):
   (a) ``layernas.compress`` with data (LayerNAS, inherited weights, a short
   fine-tune per trial), (b) the uniform-width architecture taken from the same
   space (same importance rule for which channels survive), (c) the uniform model
   trained from scratch (from stage 1), (d) RandomSearch over the same space with
   the same trial budget and trial recipe. (a), (b), (d) then get the same final
   fine-tune. Reported: test accuracy, MAdds, params, TFLite int8 latency, and
   Kendall's tau of the data-free score vs fine-tuned validation accuracy over
   every trial of (a) and (d).

Run from the repository root (defaults sized for ~90 minutes on 2 idle CPU cores)::

    python -m benchmarks.cifar10_compression
    python -m benchmarks.cifar10_compression --smoke          # 2 minutes, numbers meaningless
    python -m benchmarks.cifar10_compression --stage sanity   # stage 1 only

Results go to benchmarks/results/cifar10_compression.json (rewritten after every
model, marked ``"complete": false`` until the run ends), a PNG plot and the
``cifar10_compression`` section of docs/benchmarks.md.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

import keras_layernas as layernas
from benchmarks import _cifar10 as cifar
from benchmarks._report import RESULTS, atomic_write, markdown_table, write_json, write_section
from keras_layernas.search import RandomSearch
from keras_layernas.surgery import KernelWidth, default_widths

NAME = "cifar10_compression"
TOLERANCE = 0.05


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=("sanity", "compare", "all", "report"), default="all",
                        help="report: rewrite the docs section and plot from the saved JSON")
    parser.add_argument("--results-name", default=NAME,
                        help="JSON name in benchmarks/results (stage 2 alone may write beside stage 1)")
    parser.add_argument("--merge", nargs="*", default=(),
                        help="with --stage report: first fold these results (stages or methods run "
                             "side by side as separate processes) into --results-name")
    parser.add_argument("--input-size", type=int, default=32, help="square input size in pixels")
    parser.add_argument("--train-images", type=int, default=30_000,
                        help="training subset (prefix of the 45k split) for every training run")
    parser.add_argument("--epochs", type=int, default=12, help="epochs of each from-scratch run")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak Adam learning rate from scratch")
    parser.add_argument("--seeds", type=int, default=2, help="seeds of each from-scratch model")
    parser.add_argument("--alphas", type=float, nargs=2, default=(0.60, 0.45),
                        help="uniform alphas at ~50%% and ~30%% of the base MAdds (32x32: 50.1%%, 29.3%%)")
    parser.add_argument("--max-trials", type=int, default=80,
                        help="trials of LayerNAS and of RandomSearch (80 ~ one LayerNAS pass of the space)")
    parser.add_argument("--trial-epochs", type=int, default=0,
                        help="fine-tuning epochs per trial; 0 scores inherited weights after BN re-estimation")
    parser.add_argument("--width-fractions", type=float, nargs="*", default=(0.25,),
                        help="width options besides the base and the uniform alphas' widths")
    parser.add_argument("--methods", default="abcdef",
                        help="which of (a)-(f) stage 2 runs; (c) needs (b)")
    parser.add_argument("--tau-candidates", type=int, default=20,
                        help="in-target trial candidates fine-tuned to rank the cheap scores")
    parser.add_argument("--trial-images", type=int, default=5_000, help="training images of one trial epoch")
    parser.add_argument("--trial-lr", type=float, default=5e-4, help="Adam learning rate in trials")
    parser.add_argument("--finetune-epochs", type=int, default=3, help="final fine-tune of (a), (b), (d)")
    parser.add_argument("--finetune-lr", type=float, default=5e-4, help="peak learning rate of the final fine-tune")
    parser.add_argument("--grappler-in-trials", action="store_true",
                        help="keep TF's graph optimizer on for the short trials (off by default: cuts tracing)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny settings (600 images, 1 epoch, 3 trials) to check the script end to end")
    parser.add_argument("--verbose", type=int, default=1)
    args = parser.parse_args(argv)
    if args.smoke:
        args.train_images, args.epochs, args.seeds = 600, 1, 1
        args.max_trials, args.trial_images, args.finetune_epochs, args.latency_runs = 3, 300, 1, 5
        args.tau_candidates = 4
    return args


class _Run:
    """The benchmark's state: data, settings, results written after every model."""

    def __init__(self, args: argparse.Namespace, command: str):
        self.args = args
        splits = cifar.load_splits(train_limit=args.train_images)
        size, batch = args.input_size, args.batch_size
        validation = splits["validation"] if not args.smoke else _head(splits["validation"], 500)
        test = splits["test"] if not args.smoke else _head(splits["test"], 500)
        self.train = cifar.make_dataset(splits["train"], batch, size, training=True)
        self.trial_train = cifar.make_dataset(_head(splits["train"], args.trial_images), batch, size, training=True)
        self.bn = cifar.bn_dataset(splits["train"], batch, size)
        self.validation = cifar.make_dataset(validation, batch, size, training=False)
        self.test = cifar.make_dataset(test, batch, size, training=False)
        self.name = args.results_name
        self.work_dir = _work_dir(args.smoke)
        self.payload: dict[str, Any] = {
            "complete": False,
            "command": command,
            "settings": {k: v for k, v in vars(args).items() if k != "verbose"},
            "bn_handling": f"momentum {cifar.BN_MOMENTUM} while training; statistics re-estimated on "
                           f"{cifar.BN_BATCHES} training batches before every evaluation",
            "sanity": [],
            "compare": [],
        }
        self.base_model: keras.Model | None = None
        if args.stage == "compare":
            self.refresh_sanity()

    def refresh_sanity(self) -> None:
        """Stage 2 alone reuses stage 1's results ((c) and the table), re-read on every save
        so that a stage-1 run going on beside it (another results name) shows up."""
        path = RESULTS / f"{NAME}.json"
        if path.exists():
            earlier = json.loads(path.read_text())
            self.payload["sanity"] = earlier.get("sanity", [])
            self.payload["sanity_verdict"] = earlier.get("sanity_verdict", {})
            # a file this stage already wrote keeps stage 1's command under sanity_command
            self.payload["sanity_command"] = earlier.get("sanity_command", earlier.get("command"))

    def save(self) -> None:
        """Rewrite the results (a smoke run never touches the committed ones)."""
        if self.args.smoke:
            atomic_write(self.work_dir / f"{self.name}_smoke.json", json.dumps(self.payload, indent=2))
            return
        if self.args.stage == "compare":
            self.refresh_sanity()
        write_json(self.name, self.payload)

    def log(self, message: str) -> None:
        if self.args.verbose:
            print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _head(split: tuple, count: int) -> tuple:
    return split[0][:count], split[1][:count]


# -- stage 1 ---------------------------------------------------------------------------
def train_from_scratch(run: _Run, alpha: float, seed: int) -> tuple[keras.Model, dict]:
    """One from-scratch model: build, train, evaluate; timings included."""
    args = run.args
    started = time.perf_counter()
    model = cifar.mobilenet_v2(alpha, args.input_size, seed)
    build_s = time.perf_counter() - started
    timer = cifar.train(model, run.train, args.epochs, args.lr, args.batch_size,
                        warmup_epochs=min(1.0, args.epochs / 10), verbose=2 if args.verbose > 1 else 0)
    train_s = time.perf_counter() - started - build_s
    row = {
        "alpha": alpha, "seed": seed,
        "madds": layernas.count_madds(model), "params": model.count_params(),
        "val_accuracy": cifar.evaluate(model, run.bn, run.validation),
        "test_accuracy": cifar.evaluate(model, run.bn, run.test),
        "build_s": round(build_s, 2), "first_step_s": round(timer.first_step_s, 2),
        "train_s": round(train_s, 1), "train_images_per_s": round(timer.images_per_s, 1),
    }
    return model, row


def _spread(values: list[float]) -> float:
    return max(values) - min(values) if len(values) > 1 else float("nan")


def sanity_verdict(rows: list[dict], alphas: list[float]) -> dict:
    """Means per alpha and whether each capacity gap beats the seed spread."""
    means, spreads = {}, {}
    alphas = [a for a in alphas if any(r["alpha"] == a for r in rows)]
    for alpha in alphas:
        accs = [r["test_accuracy"] for r in rows if r["alpha"] == alpha]
        means[alpha], spreads[alpha] = statistics.mean(accs), _spread(accs)
    gaps = []
    for big, small in zip(alphas, alphas[1:]):
        gap = means[big] - means[small]
        noise = max(spreads[big], spreads[small])
        gaps.append({"larger": big, "smaller": small, "gap": gap, "max_seed_spread": noise,
                     "sane": bool(gap > 0 and (math.isnan(noise) or gap > noise))})
    return {"mean_test_accuracy": {str(a): m for a, m in means.items()},
            "seed_spread": {str(a): s for a, s in spreads.items()},
            "gaps": gaps, "sane": all(g["sane"] for g in gaps) and not any(math.isnan(g["max_seed_spread"]) for g in gaps)}


def stage_sanity(run: _Run) -> None:
    """Stage 1: every alpha from scratch for every seed; results saved after each model."""
    alphas = [1.0, *run.args.alphas]
    for seed in range(run.args.seeds):
        for alpha in alphas:
            run.log(f"sanity: alpha {alpha} seed {seed} from scratch")
            model, row = train_from_scratch(run, alpha, seed)
            if alpha == 1.0 and seed == 0:
                run.base_model = model
                model.save(run.work_dir / "base.keras")
            run.payload["sanity"].append(row)
            run.payload["sanity_verdict"] = sanity_verdict(run.payload["sanity"], alphas)
            run.save()
            run.log(f"  -> test {row['test_accuracy']:.4f}, {row['train_images_per_s']} img/s, "
                    f"first step {row['first_step_s']} s")


# -- stage 2 ---------------------------------------------------------------------------
def _work_dir(smoke: bool) -> Path:
    """Scratch files (base model, TFLite files, search state); a smoke run has its own,
    so that it never replaces the base model a real run is using."""
    path = Path(tempfile.gettempdir()) / ("layernas-cifar10" + ("-smoke" if smoke else ""))
    path.mkdir(exist_ok=True)
    return path


def uniform_widths(base_space: layernas.SearchSpace, alpha_model: keras.Model) -> dict[str, int]:
    """``{searchable layer: width}`` of a uniform-alpha MobileNetV2, by producer name.

    keras.applications names layers identically at every alpha, and a block
    filter is named after its first producer (``"block_3_project.block_filter"``).
    """
    widths = {}
    for layer in base_space.layers:
        if layer.kind != "kernel":
            producer = layer.name.removesuffix(".block_filter")
            widths[layer.name] = int(alpha_model.get_layer(producer).filters)
    return widths


def build_space(base: keras.Model, alpha_models: list[keras.Model],
                fractions: list[float]) -> tuple[layernas.SearchSpace, list]:
    """A compact width space: base, every uniform alpha's widths, ``fractions`` of the base.

    The uniform widths make (b) a point of the very space (a) and (d) search,
    so the comparison is about choosing, not about reachable widths. Kernels
    stay at 3x3: at 32x32 input the depthwise maps are 16x16 down to 1x1, where
    a larger kernel buys little. Few options per layer keep one LayerNAS pass
    (about ``sum |S_i|`` trials) inside the trial budget.

    Returns:
        ``(space, [uniform arch per alpha model])``.
    """
    default = layernas.SearchSpace.from_model(base, kernel_options=None)
    per_alpha = [uniform_widths(default, m) for m in alpha_models]
    base_widths = {l.name: _width(l.options[0]) for l in default.layers if l.kind != "kernel"}
    options = {name: [width] + [w[name] for w in per_alpha] + default_widths(width, fractions)[1:]
               for name, width in base_widths.items()}
    options = {name: sorted(set(widths), reverse=True) for name, widths in options.items()}
    space = layernas.SearchSpace.from_model(base, width_options=options, kernel_options=None)
    archs = []
    for widths in per_alpha:
        arch = []
        for layer, base_option in zip(space.layers, space.base_arch):
            if layer.kind == "kernel":
                arch.append(base_option)
            elif isinstance(base_option, KernelWidth):
                arch.append(KernelWidth(base_option.kernel, widths[layer.name]))
            else:
                arch.append(widths[layer.name])
        archs.append(tuple(arch))
    return space, archs


def _width(option: Any) -> int:
    return int(option.width) if isinstance(option, KernelWidth) else int(option)


def trial_compile_kwargs(lr: float) -> dict:
    """Adam at ``lr`` (below compress()'s default 1e-3: trials fine-tune inherited weights)."""
    return {"optimizer": keras.optimizers.Adam(lr),
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": ["accuracy"]}


class _RecordingSearch(layernas.CompressionSearch):
    """CompressionSearch that keeps its LayerNAS engine: the result's history has no
    architectures, and the Kendall tau needs each trial's architecture."""

    engine = None

    def _search(self, *args, **kwargs):
        self.engine = super()._search(*args, **kwargs)
        return self.engine


def final_finetune(run: _Run, model: keras.Model) -> float:
    """The same fine-tune for every compressed model; returns test accuracy."""
    args = run.args
    cifar.train(model, run.train, args.finetune_epochs, args.finetune_lr, args.batch_size)
    return cifar.evaluate(model, run.bn, run.test)


def int8_latency_ms(run: _Run, model: keras.Model, name: str) -> float:
    path = run.work_dir / f"{name}.tflite"
    calibration = run.validation.unbatch().take(200).batch(50)
    layernas.export_tflite(model, path, quantize="int8", representative_data=calibration)
    return layernas.measure_latency(path, runs=run.args.latency_runs, num_threads=1)


def _describe(run: _Run, model: keras.Model, name: str, **fields: Any) -> dict:
    return {"method": name, "madds": layernas.count_madds(model), "params": model.count_params(),
            "int8_latency_ms": round(int8_latency_ms(run, model, name), 3), **fields}


def trial_trainer(run: _Run) -> Any:
    """compress()'s own trial recipe, used by (a), by (d) and for the rank check."""
    from keras_layernas.compression import Trainer

    return Trainer(run.trial_train, run.validation, "val_accuracy", trial_compile_kwargs(run.args.trial_lr))


class _Scores:
    """The data-free scores of an architecture under every weighting."""

    def __init__(self, space: layernas.SearchSpace, base: keras.Model):
        from keras_layernas.compression import WEIGHTINGS

        self.space = space
        self.scorers = {w: layernas.RetainedImportance(space, base, w) for w in WEIGHTINGS}

    def __call__(self, arch: tuple) -> dict[str, float]:
        return {f"data_free_{w}": scorer(arch) for w, scorer in self.scorers.items()}

    def trial(self, arch: tuple, madds: float, score: float, **fields: Any) -> dict:
        return {"madds": madds, "val_accuracy": score, **self(arch),
                "arch": [str(o) for o in arch], **fields}


def random_search(run: _Run, space: layernas.SearchSpace, target: tuple[float, float],
                  scores: _Scores) -> tuple[tuple, list[dict]]:
    """(d): RandomSearch with compress()'s trial recipe; returns best arch and trials."""
    trainer = trial_trainer(run)
    search = RandomSearch(space.options, space.cost, target, seed=0, max_trials=run.args.max_trials)
    trials = []
    while (cand := search.ask()) is not None:
        started = time.perf_counter()
        score = trainer.fine_tune(space.materialize(cand.arch), run.args.trial_epochs)
        search.tell(cand, score)
        trials.append(scores.trial(cand.arch, cand.cost, score,
                                   seconds=round(time.perf_counter() - started, 1)))
        run.log(f"  random trial {len(trials)}: val {score:.4f}")
    return search.best()[0], trials


def _data_free_rows(run: _Run, base: keras.Model, space: layernas.SearchSpace, target_madds: int,
                    scores: _Scores) -> dict:
    """(e): the data-free compress() under each weighting, then the same final fine-tune."""
    rows = {}
    for weighting in scores.scorers:
        started = time.perf_counter()
        result = layernas.CompressionSearch(base, target_madds, tolerance=TOLERANCE, space=space,
                                            verbose=0, importance_weighting=weighting).run()
        search_s = time.perf_counter() - started
        arch = tuple(result.arch.values())
        rows[weighting] = _describe(run, result.model, f"e_{weighting}",
                                    test_accuracy=final_finetune(run, result.model),
                                    search_s=round(search_s, 1), trials=result.trials,
                                    completed=result.completed, **scores(arch),
                                    arch={k: str(v) for k, v in result.arch.items()})
    return rows


def _layernas_row(run: _Run, base: keras.Model, space: layernas.SearchSpace, target_madds: int,
                  alpha: float, scores: _Scores, start: str) -> tuple[dict, list[dict]]:
    """(a) or (f): compress() with data from ``start``; returns its row and its trials."""
    args = run.args
    started = time.perf_counter()
    search = _RecordingSearch(
        base, target_madds, data=run.trial_train, validation_data=run.validation,
        tolerance=TOLERANCE, max_trials=args.max_trials, epochs_per_trial=args.trial_epochs,
        space=space, compile_kwargs=trial_compile_kwargs(args.trial_lr), start=start,
        verbose=min(args.verbose, 1), directory=run.work_dir / f"compress_{alpha}_{start}", overwrite=True,
    )
    with cifar.graph_optimizer(args.grappler_in_trials):
        result = search.run()
    search_s = time.perf_counter() - started
    trials = [scores.trial(r.arch, r.cost, r.score, layer=r.layer)
              for r in search.engine.history if r.score is not None]
    arch = tuple(result.arch.values())
    row = _describe(run, result.model, f"{start}_start", test_accuracy=final_finetune(run, result.model),
                    search_s=round(search_s, 1), completed=result.completed, trials=result.trials,
                    **scores(arch), arch={k: str(v) for k, v in result.arch.items()})
    return row, trials


def stage_compare(run: _Run) -> None:
    """Stage 2: (a)-(f) at each uniform model's MAdds; results saved after each target."""
    args = run.args
    methods = set(args.methods)
    base = run.base_model or keras.models.load_model(run.work_dir / "base.keras")
    alpha_models = [keras.applications.MobileNetV2(
        input_shape=(args.input_size,) * 2 + (3,), alpha=a, weights=None, classes=10) for a in args.alphas]
    space, uniform_archs = build_space(base, alpha_models, args.width_fractions)
    run.payload["space"] = {"layers": len(space.layers), "sum_options": sum(len(o) for o in space.options)}
    scores = _Scores(space, base)
    base_madds = layernas.count_madds(base)
    for alpha, alpha_model, uniform_arch in zip(args.alphas, alpha_models, uniform_archs):
        target_madds = layernas.count_madds(alpha_model)
        if space.cost(uniform_arch) != target_madds:
            raise RuntimeError(
                f"The uniform arch taken from the space costs {space.cost(uniform_arch)} MAdds but "
                f"keras' MobileNetV2(alpha={alpha}) has {target_madds}: (b) would not be the uniform "
                "model. Check uniform_widths() against this keras version's layer names."
            )
        target = ((1 - TOLERANCE) * target_madds, target_madds)
        label = f"{target_madds / base_madds:.0%}"
        row: dict[str, Any] = {"alpha": alpha, "target_madds": target_madds, "share": target_madds / base_madds,
                               "trials": {}}
        uniform = space.materialize(uniform_arch)
        if "b" in methods or "c" in methods:
            run.log(f"compare {label}: (b) uniform alpha {alpha}, inherited weights")
            row["b_uniform_inherited"] = _describe(run, uniform, "b", test_accuracy=final_finetune(run, uniform),
                                                   **scores(uniform_arch))
        if "e" in methods:
            run.log(f"compare {label}: (e) data-free compress()")
            row["e_data_free"] = _data_free_rows(run, base, space, target_madds, scores)
        for method, start in (("a", "base"), ("f", "uniform")):
            if method in methods:
                run.log(f"compare {label}: ({method}) compress() with data from the {start} "
                        f"architecture, {args.max_trials} trials")
                key = "a_layernas" if method == "a" else "f_layernas_uniform_start"
                row[key], row["trials"][method] = _layernas_row(run, base, space, target_madds, alpha,
                                                                scores, start)
        if "c" in methods:
            if run.args.stage == "compare":
                run.refresh_sanity()
            scratch = {r["alpha"]: r for r in run.payload["sanity"] if r["seed"] == 0}
            measured = scratch.get(alpha, {"madds": target_madds, "params": uniform.count_params(),
                                           "test_accuracy": float("nan")})  # nan: stage 1 not run yet
            row["c_uniform_scratch"] = {**{k: measured[k] for k in ("madds", "params", "test_accuracy")},
                                        "int8_latency_ms": row["b_uniform_inherited"]["int8_latency_ms"],
                                        "note": "seed-0 model of the sanity stage; same architecture as (b), so (b)'s latency"}
        if "d" in methods:
            run.log(f"compare {label}: (d) RandomSearch, {args.max_trials} trials")
            started = time.perf_counter()
            with cifar.graph_optimizer(args.grappler_in_trials):
                best_arch, row["trials"]["d"] = random_search(run, space, target, scores)
            search_s = time.perf_counter() - started
            best = space.materialize(best_arch)
            row["d_random"] = _describe(run, best, "d", test_accuracy=final_finetune(run, best),
                                        search_s=round(search_s, 1), **scores(best_arch))
        run.payload["compare"].append(row)
        run.save()
    if args.tau_candidates:
        stage_rank_check(run, space, scores)


def _spread_pick(trials: list[dict], count: int) -> list[dict]:
    """``count`` distinct architectures evenly spaced over the data-free ranking."""
    unique = list({tuple(t["arch"]): t for t in trials}.values())
    unique.sort(key=lambda t: t["data_free_equal"])
    if len(unique) <= count:
        return unique
    return [unique[round(i * (len(unique) - 1) / (count - 1))] for i in range(count)]


def stage_rank_check(run: _Run, space: layernas.SearchSpace, scores: _Scores) -> None:
    """Fine-tune in-target trial candidates to see how well the cheap scores rank them.

    Half the candidates come from each target, spread over the data-free
    ranking; each is fine-tuned ``max(1, --trial-epochs)`` epochs with the
    trial recipe and scored on validation data (test data stays unused).
    """
    args = run.args
    per_target = max(2, args.tau_candidates // max(1, len(run.payload["compare"])))
    options = dict(zip((l.name for l in space.layers), space.options))
    trainer = trial_trainer(run)
    checked = []
    for row in run.payload["compare"]:
        low = (1 - TOLERANCE) * row["target_madds"]
        pool = [t for m in ("a", "d") for t in row["trials"].get(m, []) if low <= t["madds"] <= row["target_madds"]]
        for trial in _spread_pick(pool, per_target):
            arch = tuple(next(o for o in opts if str(o) == text) for opts, text in zip(options.values(), trial["arch"]))
            run.log(f"rank check {len(checked) + 1}: {row['share']:.0%} target")
            with cifar.graph_optimizer(args.grappler_in_trials):
                tuned = trainer.fine_tune(space.materialize(arch), max(1, args.trial_epochs))
            checked.append({**trial, "share": row["share"], "fine_tuned_val_accuracy": tuned})
            run.payload["rank_check"] = {"candidates": checked, **rank_agreement(checked)}
            run.save()


def rank_agreement(checked: list[dict]) -> dict:
    """Kendall's tau-b of each cheap score against fine-tuned validation accuracy."""
    truth = [c["fine_tuned_val_accuracy"] for c in checked]
    keys = ([k for k in checked[0] if k.startswith("data_free_")] + ["val_accuracy"]) if checked else []
    return {"kendall_tau": {("trial_score" if k == "val_accuracy" else k):
                            cifar.kendall_tau([c[k] for c in checked], truth) for k in keys}}


def merge_results(payload: dict, others: list[dict]) -> dict:
    """Fold runs made side by side into one payload.

    Sanity rows come from whichever run has the most; compare rows are joined
    by alpha (each method's key kept from the run that measured it); the rank
    check and the ``commands`` of every run are kept.
    """
    runs = [payload, *others]
    commands = [c for r in runs for c in (r.get("sanity_command"), *r.get("commands", [r["command"]])) if c]
    merged = {**payload, "commands": list(dict.fromkeys(commands))}
    merged["sanity"] = max((r["sanity"] for r in runs), key=len)
    merged["sanity_verdict"] = max(runs, key=lambda r: len(r["sanity"])).get("sanity_verdict", {})
    by_alpha: dict[float, dict] = {}
    for run in runs:
        for row in run["compare"]:
            into = by_alpha.setdefault(row["alpha"], {"trials": {}})
            into.update({k: v for k, v in row.items() if k != "trials"})
            into["trials"].update(row.get("trials", {}))
        if run.get("rank_check"):
            merged["rank_check"] = run["rank_check"]
        if run.get("space"):
            merged["space"] = run["space"]
    merged["compare"] = [by_alpha[a] for a in sorted(by_alpha, reverse=True)]
    settings = payload["settings"]
    merged["complete"] = (len(merged["sanity"]) >= 3 * settings["seeds"]
                          and len(merged["compare"]) == len(settings["alphas"])
                          and len(merged.get("rank_check", {}).get("candidates", []))
                          >= max(r["settings"].get("tau_candidates", 0) for r in runs))
    return merged


# -- report ----------------------------------------------------------------------------
def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def write_report(payload: dict, name: str) -> None:
    """The ``cifar10_compression`` docs section and the PNG from a results payload."""
    commands = payload.get("commands") or [c for c in (payload.get("sanity_command"), payload["command"]) if c]
    parts = [f"Exact command(s): {', '.join(f'`{c}`' for c in commands)}; results "
             f"`benchmarks/results/{name}.json`. Settings and discussion: "
             "[benchmark-cifar10.md](benchmark-cifar10.md). "
             + ("**Complete run.**" if payload["complete"] else
                "**PARTIAL: stages run separately (or cut short), settings as in the commands, "
                "not a complete default run.**")]
    if payload["sanity"]:
        rows = [[r["alpha"], r["seed"], f"{r['madds'] / 1e6:.2f}", r["params"], _pct(r["val_accuracy"]),
                 _pct(r["test_accuracy"]), r["train_images_per_s"], r["build_s"], r["first_step_s"]]
                for r in payload["sanity"]]
        parts.append("Sanity (from scratch, same recipe):\n\n" + markdown_table(
            ["alpha", "seed", "MAdds (M)", "params", "val acc %", "test acc %", "train img/s",
             "build s", "first step s"], rows))
        verdict = payload.get("sanity_verdict", {})
        gaps = "; ".join(f"{g['larger']} vs {g['smaller']}: gap {_pct(g['gap'])} pts, seed spread "
                         f"{_pct(g['max_seed_spread'])} pts" for g in verdict.get("gaps", []))
        parts.append(f"Sane (every gap > seed spread): **{verdict.get('sane')}**. {gaps}")
    if payload["compare"]:
        rows = []
        for row in payload["compare"]:
            labels = {"a_layernas": "(a) LayerNAS compress(), data",
                      "b_uniform_inherited": "(b) uniform, inherited",
                      "c_uniform_scratch": "(c) uniform, scratch",
                      "d_random": "(d) RandomSearch, data",
                      "f_layernas_uniform_start": "(f) LayerNAS compress(start='uniform'), data"}
            methods = [(row[key], label) for key, label in labels.items() if key in row]
            methods += [(r, f"(e) data-free compress(), {w}") for w, r in row.get("e_data_free", {}).items()]
            for r, label in methods:
                rows.append([f"{row['share']:.0%}", label, _pct(r["test_accuracy"]), f"{r['madds'] / 1e6:.2f}",
                             r["params"], r["int8_latency_ms"], r.get("search_s", "")])
        parts.append("Comparison (test accuracy after the same final fine-tune; (c) trained from scratch):\n\n"
                     + markdown_table(["MAdds", "method", "test acc %", "MAdds (M)", "params", "int8 ms",
                                       "search s"], rows))
    check = payload.get("rank_check")
    if check:
        taus = ", ".join(f"{k}: {v:.3f}" for k, v in check["kendall_tau"].items())
        parts.append(f"Rank check: Kendall tau-b against the validation accuracy after "
                     f"{max(1, payload['settings'].get('trial_epochs', 1))} fine-tuning epoch(s), over "
                     f"{len(check['candidates'])} in-target trial candidates: {taus}.")
    write_section(NAME, "## CIFAR-10 compression quality (`benchmarks/cifar10_compression.py`)\n\n"
                  + "\n\n".join(parts))
    _plot(payload, name)


def _plot(payload: dict, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    sanity = payload["sanity"]
    if sanity:
        ax.scatter([r["madds"] / 1e6 for r in sanity], [100 * r["test_accuracy"] for r in sanity],
                   marker="o", color="gray", label="uniform, from scratch (each seed)")
    markers = {"a_layernas": ("*", "LayerNAS compress()"), "b_uniform_inherited": ("s", "uniform, inherited"),
               "d_random": ("^", "RandomSearch"), "f_layernas_uniform_start": ("P", "LayerNAS, uniform start")}
    for key, (marker, label) in markers.items():
        points = [(row[key]["madds"] / 1e6, 100 * row[key]["test_accuracy"])
                  for row in payload["compare"] if key in row]
        if points:
            ax.scatter(*zip(*points), marker=marker, s=80, label=label)
    ax.set_xlabel("MAdds (M)")
    ax.set_ylabel("CIFAR-10 test accuracy (%)")
    ax.set_title("MobileNetV2 on CIFAR-10" + ("" if payload["complete"] else " (partial)"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = "python -m benchmarks.cifar10_compression " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.stage == "report":
        payload = json.loads((RESULTS / f"{args.results_name}.json").read_text())
        if args.merge:
            payload = merge_results(payload, [json.loads((RESULTS / f"{name}.json").read_text())
                                              for name in args.merge])
            write_json(args.results_name, payload)
        write_report(payload, args.results_name)
        return
    run = _Run(args, command.strip())
    if args.stage in ("sanity", "all"):
        stage_sanity(run)
        if not args.smoke:
            write_report(run.payload, run.name)
    if args.stage in ("compare", "all"):
        stage_compare(run)
    run.payload["complete"] = args.stage == "all" and not args.smoke
    run.save()
    if not args.smoke:  # smoke numbers mean nothing: no docs, no plot
        write_report(run.payload, run.name)


if __name__ == "__main__":
    main()
