"""``layernas.compress``: shrink a Keras model to a MAdds (or latency) target in one call.

The model's coupled channels and depthwise kernels become a search space
(:meth:`SearchSpace.from_model`); LayerNAS searches it layer by layer for the
best architecture whose MAdds lie in ``[(1 - tolerance) * target, target]``;
the winner is rebuilt with the original's trained weights (the most important
channels kept) and, given data, fine-tuned.

How candidates are scored:

* **Without data** (the default) a candidate scores the share of the base
  model's L1 weight mass it keeps (geometric mean over layers, see
  :mod:`keras_layernas.surgery.importance`). It needs no model build, so the complete
  search over MobileNetV2 takes seconds. Only kernels no larger than the base
  are searched here: a larger kernel is zero-padded, so it computes the same
  function at a higher cost. This keeps what the weights say matters; it is no
  accuracy measurement, so **fine-tune the result on real data**.
* **With data** each trial materializes the candidate, re-estimates its
  BatchNorm statistics on training batches, fine-tunes it for
  ``epochs_per_trial`` epochs and scores ``objective`` on validation data in
  inference mode. Trials run through LayerNASOracle and a KerasTuner tuner, so
  a search killed half-way resumes from ``directory``.

With ``target_latency_ms`` (``cost="latency"``) the cost is single-thread
TFLite latency instead: a :class:`~keras_layernas.LatencyModel` fitted to a
few measured architectures predicts it in microseconds, the search runs on the
prediction, and the chosen model is measured for real.

If the trial budget ends before LayerNAS reaches an in-target candidate, the
best candidates are completed to the target by a greedy rule
(:mod:`keras_layernas.compression._completion`) and the result says so.

With data, the same script runs distributed under KerasTuner's ``KERASTUNER_*``
variables: the chief serves the oracle, chooses, fine-tunes and publishes the
result in ``directory``; every worker trains trials, then returns that same
result (:mod:`keras_layernas.compression._distributed`).
"""
from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
import warnings
from typing import Any, Callable, Mapping, Sequence

import keras
import keras_tuner

from keras_layernas.compression._completion import complete_to_target, greedy_fill, pin_searched
from keras_layernas.compression._config import CompressionConfig
from keras_layernas.compression._distillation import frozen_copy
from keras_layernas.compression._distributed import clear_result, publish_result, role, wait_for_result
from keras_layernas.compression._drivers import (
    Progress,
    load_trained,
    search_in_process,
    search_with_tuner,
)
from keras_layernas.compression._multi import run_targets
from keras_layernas.compression._result import CompressionResult, layer_table
from keras_layernas.surgery.importance import RetainedImportance, option_width
from keras_layernas.compression._training import NonFiniteTraining, Trainer
from keras_layernas.latency import LatencyModel
from keras_layernas.profiling import count_madds
from keras_layernas.search import LayerNAS, Target, as_maximized, cheapest_arch
from keras_layernas.surgery.space import Arch, SearchLayer, SearchSpace

__all__ = ["CompressionResult", "CompressionSearch", "compress"]

DATA_FREE_SCORE = "retained_importance"
# Measured on the CIFAR-10 MobileNetV2 of docs/benchmark-quality.md (benchmarks/synthetic_scores.py)
UNTRAINED_RESULT = (
    "compress() without data returns the slim model untrained: it keeps the base's BatchNorm "
    "statistics, which no longer fit its cut layers, so as returned it can be at chance (measured "
    "on a trained CIFAR-10 MobileNetV2: 10% test accuracy at 70% of the MAdds, 39% once BatchNorm "
    "was re-estimated). Before use, re-estimate BatchNorm on a few batches of your images "
    "(layernas.reestimate_batchnorm) and fine-tune it, or pass data= so compress() does both."
)
# Trials between two progress-bar updates of the data-free search (a trial is
# microseconds; redrawing the bar every trial would dominate the run time).
_DATA_FREE_BAR_EVERY = 1000


def shrink_only(space: SearchSpace) -> SearchSpace:
    """The same space without depthwise kernels larger than each layer's base.

    A larger kernel is materialized by zero-padding, i.e. the same function at
    a higher cost; only training can make use of it, so data-free searches
    skip those options.

    Example:
        >>> from keras_layernas.surgery.model_space import KernelWidth
        >>> layer = SearchLayer("b1", "kernel_expand",
        ...     (KernelWidth(3, 96), KernelWidth(5, 96), KernelWidth(3, 64)))
        >>> space = SearchSpace([layer], cost_fn=lambda arch: arch[0].width * arch[0].kernel)
        >>> shrink_only(space).options
        [[KernelWidth(kernel=3, width=96), KernelWidth(kernel=3, width=64)]]
    """
    layers = []
    for layer in space.layers:
        base = layer.options[0]
        if layer.kind == "kernel":
            options = tuple(o for o in layer.options if o <= base)
        elif layer.kind == "kernel_expand":
            options = tuple(o for o in layer.options if o.kernel <= base.kernel)
        else:
            options = layer.options
        layers.append(dataclasses.replace(layer, options=options))
    return space.with_layers(layers)


def uniform_arch(space: SearchSpace, target: tuple[float, float]) -> Arch:
    """The architecture scaling every width of ``space`` by one factor, near ``target``.

    Each width-searching layer takes the option whose width is nearest
    ``f * base width`` (base kernel kept); ``f`` is found by bisection on the
    cost. What a user would get from a uniform width multiplier, as a point of
    this space.

    Returns:
        An architecture inside ``target`` when one factor lands there, else the
        dearest one below ``target[1]`` (the range is narrower than a step).

    Example:
        >>> space = SearchSpace.from_options({"a": [8, 6, 4, 2], "b": [8, 6, 4, 2]},
        ...                                  cost_fn=lambda v: v["a"] * 10 + v["b"])
        >>> uniform_arch(space, (40, 50))
        (4, 4)
    """
    def scaled(factor: float) -> Arch:
        arch = []
        for layer, base in zip(space.layers, space.base_arch):
            if layer.kind == "kernel":
                arch.append(base)
                continue
            kernel = getattr(base, "kernel", None)
            same_kernel = [o for o in layer.options if getattr(o, "kernel", None) == kernel]
            target_width = factor * option_width(layer, base)
            arch.append(min(same_kernel, key=lambda o: (abs(option_width(layer, o) - target_width),
                                                        -option_width(layer, o))))
        return tuple(arch)

    target = Target.of(target)
    lo, hi = 0.0, 1.0
    below = scaled(0.0)
    for _ in range(50):
        arch = scaled((lo + hi) / 2)
        cost = space.cost(arch)
        if target.contains(cost):
            return arch
        if cost > target.high:
            hi = (lo + hi) / 2
        else:
            below, lo = arch, (lo + hi) / 2
    return below


def start_from(space: SearchSpace, arch: Arch) -> SearchSpace:
    """The same space with ``arch``'s options first, so LayerNAS starts from ``arch``.

    LayerNAS fills the layers it has not searched yet with option 0 (the base
    model's); with data and a budget inside one pass, its in-target candidates
    then all come from one greedy chain away from the base. Starting from an
    in-target architecture makes every candidate a one-layer change of a model
    of about the target's cost.
    """
    return space.with_layers([
        dataclasses.replace(layer, options=(option,) + tuple(o for o in layer.options if o != option))
        for layer, option in zip(space.layers, arch)])


class CompressionSearch:
    """A configured compression of one model; :meth:`run` performs it.

    Args:
        model: a trained functional or Sequential Keras model.
        target_madds: the MAdds budget per sample (e.g. ``150e6``), or a
            percentage of the base model's MAdds as a string (``"50%"``,
            above 0% and below 100%), counted like :func:`count_madds` at the
            model's input size (or ``input_shape``). A list of such budgets
            (``[300e6, "50%"]``) runs one search and :meth:`run` returns a
            result per budget (:mod:`keras_layernas.compression._multi`).
        target_latency_ms: instead of ``target_madds``, a budget of median
            single-thread float32 TFLite latency in ms (``cost="latency"``):
            the search runs on a latency model calibrated on
            ``calibration_archs`` measured architectures
            (:class:`keras_layernas.LatencyModel`), and the result is measured.
        cost: ``"madds"`` or ``"latency"``; None follows the target given.
        calibration_archs: architectures measured to fit the latency model
            (each one a TFLite export, seconds).
        latency_runs: timed inferences per latency measurement (median).
        data: training data for scored trials: ``(x, y)`` arrays, a
            ``tf.data.Dataset`` of ``(x, y)``, ``"tfds:NAME"`` or ``"npz:PATH"``;
            None for the data-free search.
        validation_data: data ``objective`` is measured on; None uses the tfds/npz
            test split or holds out the last 10% of arrays.
        tolerance: the result lies in ``[(1 - tolerance) * target, target]``.
        max_trials: cap on evaluated candidates. None: the complete search
            without data; 12 trials with data and one budget (one pass over
            the options, ``sum |S_i|`` trials, with several budgets).
        epochs_per_trial: fine-tuning epochs of each candidate (with data).
        finetune_epochs: fine-tuning epochs of the winner, which starts from
            the weights its trial trained (with data); None: 12 with data (as
            long as the default trials trained: distilling the winner gained
            more than searching longer, see docs/compress.md), 0 without.
        num_buckets: LayerNAS's cost buckets per layer (H).
        per_bucket: candidates kept per bucket (k).
        directory: where the search state lives, so that a search killed
            half-way resumes there; None keeps nothing. A distributed search
            (``KERASTUNER_*`` variables set) needs one every process shares.
        overwrite: start over even if ``directory`` holds a search.
        input_shape: ``(height, width, channels)`` for a model whose input size
            is unknown; MAdds are counted at this size, and the slim model
            comes back fixed to it.
        seed: seed of the search.
        verbose: 0 silent, 1 a progress bar over trials and a summary, 2 also
            Keras' per-epoch lines; True and False mean 1 and 0.
        objective: validation metric to maximize (with data), e.g.
            ``"val_accuracy"``, or a ``keras_tuner.Objective``.
        compile_kwargs: ``model.compile`` arguments for fine-tuning; default
            Adam(1e-3) with the cross-entropy matching labels and output.
        batch_size: batch size for data that is not batched yet.
        preprocess: applied to tfds/npz images after resizing to the model's
            input size (e.g. ``keras.applications.mobilenet_v2.preprocess_input``).
        space: a ``SearchSpace.from_model(model, ...)`` with your own width or
            kernel options; default: the default space of ``model``.
        project_name: subfolder of ``directory`` for this search.
        importance_weighting: how the data-free score (also used to rank greedy
            completions) weighs layers: ``"equal"`` or ``"layers"`` (see
            :mod:`keras_layernas.surgery.importance`).
        start: what LayerNAS fills the layers it has not searched yet with:
            ``"base"`` (the paper's choice, the base model), ``"uniform"``
            (:func:`uniform_arch`, every width scaled by one factor to the
            target) or, with data only, ``"greedy"``: each trial's unsearched
            layers are cut by the greedy completion rule until the model it
            trains lies in the target
            (:func:`~keras_layernas.compression._completion.greedy_fill`), so
            every trial trains a model the user could ship. None: ``"greedy"``
            with data, ``"base"`` without.
        distill: fine-tune trials and the winner with distillation from the
            base model (cross-entropy plus KL to the base's outputs, see
            :mod:`keras_layernas.compression._distillation`); None: True with
            data. Applies to the default loss only.
        exclude: model layer names whose width and kernel never change (what
            ``SearchSpace.from_model(model, exclude=...)`` takes); not with ``space``.
        callbacks: Keras callbacks passed to every ``fit`` of trials and of the
            final fine-tuning (with data), after a ``TerminateOnNaN``. That
            ``fit`` has no validation data, so monitor training metrics
            (``"loss"``); under distillation ``callback.model`` is the student
            and teacher side by side.

    The settings, checked once, are ``search.config`` (a frozen
    :class:`~keras_layernas.compression._config.CompressionConfig`).

    Raises:
        TypeError: ``model`` is not a functional or Sequential Keras model.
        ValueError: a bad argument (named in the message), or a distributed
            search with data but without ``directory``.

    Example:
        >>> import keras
        >>> inputs = keras.Input((16, 16, 3))
        >>> x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="c1")(inputs)
        >>> x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="c2")(x)
        >>> outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x))
        >>> result = CompressionSearch(keras.Model(inputs, outputs), 1e6, verbose=0).run()
        >>> 0.95e6 <= result.madds <= 1e6, result.madds == count_madds(result.model)
        (True, True)
    """

    def __init__(
        self,
        model: keras.Model,
        target_madds: float | None = None,
        *,
        target_latency_ms: float | None = None,
        cost: str | None = None,
        calibration_archs: int = 12,
        latency_runs: int = 20,
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
        objective: str | keras_tuner.Objective = "val_accuracy",
        compile_kwargs: Mapping[str, Any] | None = None,
        batch_size: int = 32,
        preprocess: Callable | None = None,
        space: SearchSpace | None = None,
        project_name: str = "compress",
        importance_weighting: str = "equal",
        start: str | None = None,
        distill: bool | None = None,
        exclude: Sequence[str] = (),
        callbacks: Sequence[keras.callbacks.Callback] | None = None,
    ):
        self.config = CompressionConfig.checked(
            base_madds=lambda: count_madds(model, input_shape=input_shape), callbacks=callbacks,
            target_madds=target_madds, target_latency_ms=target_latency_ms, cost=cost,
            tolerance=tolerance, with_data=data is not None,
            with_validation_data=validation_data is not None,
            calibration_archs=calibration_archs, latency_runs=latency_runs, max_trials=max_trials,
            epochs_per_trial=epochs_per_trial, finetune_epochs=finetune_epochs,
            num_buckets=num_buckets, per_bucket=per_bucket, directory=directory,
            overwrite=overwrite, input_shape=input_shape, seed=seed, verbose=verbose,
            objective=objective, compile_kwargs=compile_kwargs, batch_size=batch_size,
            preprocess=preprocess, project_name=project_name,
            importance_weighting=importance_weighting, start=start, distill=distill,
        )
        self.model = model
        self.data, self.validation_data = data, validation_data
        self._fill: Callable[[Arch], Arch] | None = None  # start="greedy": set by run()
        if space is not None and exclude:
            raise ValueError(
                "Pass exclude=... or space=..., not both: a space of your own already fixes "
                "which layers change. Build it with SearchSpace.from_model(model, exclude=...) "
                f"instead. Received: exclude={list(exclude)!r}."
            )
        if isinstance(exclude, str):
            exclude = [exclude]  # one layer name, not its letters
        self.space = space if space is not None else SearchSpace.from_model(
            model, input_shape=input_shape, exclude=exclude or ())
        if space is not None:
            self._check_space_fits_model()

    def _check_space_fits_model(self) -> None:
        """Refuse a ``space=`` built from another model (other layers or input size).

        A model's own space prices its base architecture at the model's MAdds;
        a space of another model would search, and return, that other model.
        """
        try:
            madds = count_madds(self.model, input_shape=self.config.input_shape)
        except ValueError:  # unknown input size without input_shape: nothing to compare at
            return
        space_madds = self.space.cost(self.space.base_arch)
        if not math.isclose(space_madds, madds, rel_tol=1e-6):
            raise ValueError(
                f"`space` does not describe this model: its base architecture has "
                f"{space_madds:.6g} MAdds, the model {madds:.6g} (built from another model, "
                "other layers or another input size?). Pass space=SearchSpace.from_model(model, "
                f"...) of this very model (with input_shape={self.config.input_shape!r} if its "
                "input size is unknown)."
            )

    # -- the steps of run() --------------------------------------------------------
    def _check_target(self, space: SearchSpace) -> None:
        """Refuse a target below what the space can reach, naming the minimum."""
        below = self.config.target.below_minimum(space.cost(cheapest_arch(space.options, space.cost)))
        if below:
            raise ValueError(
                f"{below} Raise the target, or pass space=SearchSpace.from_model(model, "
                "width_options=...) with narrower widths."
            )

    def _warn_if_untrained(self) -> None:
        """Say that a data-free slim model is not ready: measured at chance as returned."""
        if self.data is None:
            warnings.warn(UNTRAINED_RESULT, stacklevel=3)

    def _unchanged(self, base_cost: float, started: float,
                   latency: dict | None) -> CompressionResult:
        unit = "MAdds" if self.config.cost == "madds" else "ms (predicted latency)"
        warnings.warn(
            f"The model already has {base_cost:.4g} {unit}, within {self.config.target_name}="
            f"{self.config.target.high:.4g}: returning an unchanged copy. Lower the target to compress.",
            stacklevel=3,
        )
        base_madds = int(self.space.cost(self.space.base_arch))
        copy = keras.models.clone_model(self.model)
        copy.set_weights(self.model.get_weights())
        params = self.model.count_params()
        return CompressionResult(
            model=copy, arch=self.space.as_dict(self.space.base_arch), target=self.config.target,
            base_madds=base_madds, madds=base_madds, base_params=params, params=params,
            score_name=self._score_name(), score=None, base_score=None, completed=False,
            trials=0, search_seconds=time.perf_counter() - started, cost=self.config.cost,
            latency=latency,
        )

    def _score_name(self) -> str:
        return DATA_FREE_SCORE if self.data is None else self.config.objective.name

    def _trainer(self) -> Trainer:
        from keras_layernas.compression._data import prepare_training

        input_shape = self.config.input_shape or tuple(self.model.inputs[0].shape[1:])
        # Integer labels are checked against the output width for the default
        # (cross-entropy) loss only: a loss of the user's own may read labels otherwise.
        own_loss = "loss" in (self.config.compile_kwargs or {})
        classes = None if own_loss or len(self.model.outputs) != 1 else self.model.outputs[0].shape[-1]
        train, validation = prepare_training(
            self.data, self.validation_data, input_shape, self.config.batch_size, self.config.preprocess,
            classes=classes,
        )
        return Trainer(train, validation, self.config.objective, self.config.compile_kwargs,
                       fit_verbose=2 if self.config.verbose == 2 else 0,
                       teacher=frozen_copy(self.model) if self.config.distill else None,
                       callbacks=self.config.callbacks)

    def _started(self, space: SearchSpace) -> SearchSpace:
        """``space`` with the options LayerNAS fills unsearched layers with first (``start``)."""
        if self.config.start == "uniform":
            return start_from(space, uniform_arch(space, self.config.target))
        return space

    def _search(self, space: SearchSpace, scorer: RetainedImportance | None,
                trainer: Trainer | None, project_dir: str | None,
                work_dir: str | None = None) -> LayerNAS | None:
        settings = dict(target=self.config.target, num_buckets=self.config.num_buckets,
                        per_bucket=self.config.per_bucket, seed=self.config.seed, max_trials=self.config.max_trials)
        if trainer is None:
            progress = Progress(self.config.max_trials, self.config.verbose, DATA_FREE_SCORE,
                                every=1 if self.config.max_trials else _DATA_FREE_BAR_EVERY,
                                cost_unit=self.config.cost_unit)
            engine = search_in_process(space, scorer, settings, project_dir, self.config.overwrite, progress)
        else:
            settings["max_trials"] = self.config.max_trials or sum(len(o) for o in space.options)
            progress = Progress(settings["max_trials"], self.config.verbose, self.config.objective.name,
                                cost_unit=self.config.cost_unit)
            engine = search_with_tuner(
                space, trainer, self.config.epochs_per_trial, settings, work_dir,
                self.config.project_name, self.config.overwrite, progress, fill=self._fill,
                trial_recipe={"start": self.config.start, "epochs_per_trial": self.config.epochs_per_trial,
                              "distill": self.config.distill},
            )
        progress.close()
        return engine

    def _completions(self, space: SearchSpace, engine: LayerNAS, scorer: RetainedImportance) -> list[Arch]:
        """Greedy completions of the deepest, best-scored candidates and of the base.

        When every greedy walk steps over the range, a complete data-free
        LayerNAS search (:meth:`_searched_completion`) stands in for them, so
        the target is reached whatever ``max_trials`` is.

        Returns:
            Distinct in-target completions, best retained importance first;
            empty when no architecture was found in the range (it is narrower
            than one option step).
        """
        told = sorted((r for r in engine.history if r.score is not None),
                      key=lambda r: (r.layer, r.score), reverse=True)
        starts = [r.arch for r in told[: self.config.per_bucket]] + [space.base_arch]
        completions = {complete_to_target(space, arch, scorer.log_term, self.config.target) for arch in starts}
        if completions == {None}:
            completions = {self._searched_completion(space, scorer)}
        completions.discard(None)
        return sorted(sorted(completions, key=str), key=scorer.log_score, reverse=True)

    def _filler(self, space: SearchSpace, scorer: RetainedImportance) -> Callable[[Arch], Arch]:
        """Candidate -> the in-target architecture its trial trains (``start="greedy"``).

        The greedy walk over the unsearched layers first; where it steps over
        the range, the complete data-free search over those layers; where
        the searched layers leave no in-target choice, the candidate itself
        (trained out of target, never the winner). Memoized: the result's
        history and the choice of the winner ask again.
        """
        filled: dict[Arch, Arch] = {}

        def fill(arch: Arch) -> Arch:
            arch = tuple(arch)
            if arch not in filled:
                filled[arch] = (
                    greedy_fill(space, arch, scorer.log_term, self.config.target)
                    or self._searched_completion(pin_searched(space, arch), scorer, announce=False)
                    or arch)
            return filled[arch]

        return fill

    def _searched_completion(self, space: SearchSpace, scorer: RetainedImportance,
                             announce: bool = True) -> Arch | None:
        """The best in-target architecture of a complete LayerNAS search scored data-free.

        A greedy walk changes one layer at a time and can step over a narrow
        range that a combination of changes hits (a small CNN at half its
        MAdds: no walk landed, two architectures lay inside). LayerNAS keeps
        several architectures per cost bucket of every layer, so it finds
        those; data-free its trials are table look-ups (seconds on MobileNetV2),
        shown on a bar of their own.
        """
        search = LayerNAS(space.options, space.cost, target=self.config.target,
                          num_buckets=self.config.num_buckets, per_bucket=self.config.per_bucket,
                          seed=self.config.seed)
        if announce and self.config.verbose:
            print("Completing to the target: no greedy walk from the best candidates lands in "
                  f"[{self.config.target.low:.4g}, {self.config.target.high:.4g}] {self.config.target.unit}; "
                  "searching the space completely, scored data-free.", flush=True)
        progress = Progress(None, self.config.verbose if announce else 0, DATA_FREE_SCORE,
                            every=_DATA_FREE_BAR_EVERY, cost_unit=self.config.cost_unit)
        while (candidate := search.ask()) is not None:
            score = scorer(candidate.arch)
            search.tell(candidate, score)
            progress.trial(candidate.cost, score, search.in_target(candidate.cost))
        progress.close()
        best = search.best()
        return None if best is None else best[0]

    def _choose(self, space: SearchSpace, engine: LayerNAS, scorer: RetainedImportance,
                trainer: Trainer | None, direction: str) -> tuple[Arch, bool, list[dict]]:
        """The winning architecture, whether a greedy completion won, and extra trials.

        The completions always compete with the search's best in-target
        candidate. Data-free, scoring is free, and for the additive retained
        importance a greedy walk from the base is a strong candidate (on
        MobileNetV2 at 150 M MAdds it scored 0.805 against the complete
        search's 0.801). With data each completion is scored by a trial like
        any candidate (a few trials more): when ``max_trials`` ends inside the
        first LayerNAS pass, the search's in-target candidates come from one
        greedy chain of layers, and a completion can beat them. ``direction``
        (the objective's) puts trial scores in LayerNAS's higher-is-better one.

        Returns:
            ``(arch, completed, completion_trials)``; the trials are
            ``{"madds", "score", "arch"}`` records of scored completions,
            whose trained models are kept in ``self._trained``.
        """
        best = engine.best() if self._fill is None else self._best_filled(space, engine)
        candidates = [] if best is None else [(best[1], best[0], False)]
        completion_trials = []
        failure = None
        # Filled trials trained in-target models already: their winner needs no completion.
        completions = [] if best is not None and self._fill is not None else (
            self._completions(space, engine, scorer))
        if trainer is not None and completions and self.config.verbose:
            print(f"Completing to the target: training {len(completions)} greedy completion(s) "
                  f"for {self.config.epochs_per_trial} epoch(s) each.", flush=True)
        for arch in completions:
            if trainer is None:
                score = scorer(arch)
            else:
                model = space.materialize(arch)
                try:
                    score = trainer.fine_tune(model, self.config.epochs_per_trial)
                except NonFiniteTraining as error:  # failed like a trial: never the winner
                    failure = error
                    continue
                self._trained[arch] = model
            candidates.append((as_maximized(score, direction), arch, True))
            if trainer is not None:
                completion_trials.append({**self._cost_fields(arch, space.cost(arch)), "score": score,
                                          "arch": space.encode(arch)})
        if not candidates and failure is not None:
            raise failure
        if not candidates:
            raise RuntimeError(
                f"No architecture in the target range {self.config.target} was found or reached by "
                "completion: the range is narrower than one option step. Raise tolerance."
            )
        # max keeps the first of equal scores: the searched candidate before completions
        score, arch, completed = max(candidates, key=lambda c: c[0])
        return arch, completed, completion_trials

    def _filled_in_target(self, space: SearchSpace, engine: LayerNAS) -> list[tuple[Arch, float]]:
        """``(trained architecture, score)`` of every scored trial that trained an in-target model.

        LayerNAS's own ``best`` and ``pareto_front`` read the candidates' costs;
        with a fill, what each trial trained and scored is ``self._fill(candidate)``.
        """
        trained = [(self._fill(r.arch), r.score) for r in engine.history if r.score is not None]
        return [(arch, score) for arch, score in trained if self.config.target.contains(space.cost(arch))]

    def _best_filled(self, space: SearchSpace, engine: LayerNAS) -> tuple[Arch, float] | None:
        """The best trial whose trained (filled) architecture lies in the target."""
        # max keeps the first of equal scores: the earlier trial
        return max(self._filled_in_target(space, engine), key=lambda pair: pair[1], default=None)

    def _pareto_front(self, space: SearchSpace, engine: LayerNAS, direction: str) -> list[dict]:
        """LayerNAS's front (best per last-layer cost bucket); with a fill, the trained models
        no cheaper one outscores (candidate buckets say nothing of the filled models' costs)."""
        if self._fill is None:
            return [{**self._cost_fields(r.arch, r.cost), "score": as_maximized(r.score, direction),
                     "arch": space.encode(r.arch)} for r in engine.pareto_front()]
        front, best = [], -math.inf
        for arch, score in sorted(self._filled_in_target(space, engine),
                                  key=lambda pair: (space.cost(pair[0]), -pair[1])):
            if score > best:
                best = score
                front.append({**self._cost_fields(arch, space.cost(arch)),
                              "score": as_maximized(score, direction), "arch": space.encode(arch)})
        return front

    def _calibrate(self, space: SearchSpace) -> LatencyModel:
        """The latency model of ``space``, its measurements cached beside the search.

        The cache sits in ``directory`` next to the project folder (not in it:
        ``overwrite`` lets KerasTuner delete that folder), so a resumed run
        re-measures nothing; ``overwrite`` measures again.
        """
        cache = None
        if self.config.directory is not None:
            os.makedirs(self.config.directory, exist_ok=True)
            cache = os.path.join(self.config.directory, f"{self.config.project_name}.latency.json")
            if self.config.overwrite and os.path.exists(cache):
                os.remove(cache)
        return LatencyModel.calibrate(
            space, num_archs=self.config.calibration_archs, runs=self.config.latency_runs, num_threads=1,
            cache=cache, seed=self.config.seed, verbose=min(self.config.verbose, 1),
        )

    def _latency_report(self, latency_model: LatencyModel, arch: Arch,
                        slim: keras.Model | None) -> dict[str, Any]:
        """Predicted and measured latency of ``arch`` and of the base, and the fit.

        The base was measured as the first calibration architecture; ``slim``
        (None when it is the base) is exported and measured here, the same way.
        """
        base = latency_model.measurements[0]
        measured = base["latency_ms"]
        if slim is not None:
            measured = latency_model.measure(slim)
        return {
            "predicted_ms": latency_model.predict(arch),
            "measured_ms": measured,
            "base_predicted_ms": latency_model.predict(latency_model.space.base_arch),
            "base_measured_ms": base["latency_ms"],
            "num_threads": 1,
            **latency_model.to_dict(),
        }

    def _cost_fields(self, arch: Arch, cost: float) -> dict[str, float]:
        """A trial's MAdds (and predicted latency when that was the search's cost)."""
        if self.config.cost == "madds":
            return {"madds": cost}
        return {"madds": self.space.cost(arch), "latency_ms": cost}

    def _trained_fields(self, space: SearchSpace, arch: Arch, cost: float) -> dict[str, Any]:
        """Cost fields and encoding of what a trial trained: ``arch`` itself, or its fill."""
        if self._fill is not None:
            arch = self._fill(arch)
            cost = space.cost(arch)
        return {**self._cost_fields(arch, cost), "arch": space.encode(arch)}

    def _result(self, space: SearchSpace, engine: LayerNAS, arch: Arch, slim: keras.Model,
                completed: bool, direction: str, started: float, score: float,
                base_score: float, completion_trials: list[dict],
                latency: dict | None) -> CompressionResult:
        """Collect the model, the search's history and front, and the layer table.

        ``direction`` turns LayerNAS's higher-is-better scores back into the
        objective's own (a minimized loss was negated for the search).
        """
        return CompressionResult(
            model=slim,
            arch=space.as_dict(arch),
            target=self.config.target,
            base_madds=int(self.space.cost(self.space.base_arch)),
            madds=count_madds(slim),
            base_params=self.model.count_params(),
            params=slim.count_params(),
            score_name=self._score_name(),
            score=score,
            base_score=base_score,
            completed=completed,
            trials=engine.num_told,
            search_seconds=time.perf_counter() - started,
            history=[
                {"id": r.id, "layer": r.layer, **self._trained_fields(space, r.arch, r.cost),
                 "score": as_maximized(r.score, direction)}
                for r in engine.history
            ] + [{"id": None, "layer": "completion", **t} for t in completion_trials],
            pareto_front=self._pareto_front(space, engine, direction),
            layers=layer_table(self.space, arch, self.model, slim, self.config.input_shape),
            cost=self.config.cost,
            latency=latency,
        )

    def _run_as_worker(self, space: SearchSpace, trainer: Trainer,
                       project_dir: str) -> CompressionResult:
        """Train the trials the chief hands out, then return the chief's result.

        The worker scores neither the base model nor the winner: the chief
        does both, and its published weights make every process return the
        same model.
        """
        self._search(space, None, trainer, project_dir, self.config.directory)
        result = wait_for_result(project_dir, space)
        if self.config.verbose:
            print(result.summary())
        return result

    # -- public ------------------------------------------------------------------
    def run(self) -> CompressionResult | list[CompressionResult]:
        """Search, choose, rebuild (and with data fine-tune) the slim model.

        Returns:
            A :class:`CompressionResult`; ``.model`` is the slim model. A
            distributed worker returns the chief's result (same architecture,
            the chief's final weights). With a list of budgets, a list of
            results, one per budget in the order given, from one search
            (:mod:`keras_layernas.compression._multi`).

        Raises:
            ValueError: the target is below the smallest reachable model, bad
                data (no labels, empty, NaN/inf, labels outside the classes, a
                Dataset repeating forever), an objective the model does not
                report, or training that left every candidate's weights
                non-finite.
            RuntimeError: no architecture lies in the target range (it is
                narrower than one option step).
        """
        started = time.perf_counter()
        space = shrink_only(self.space) if self.data is None else self.space
        if self.config.targets is not None:  # several budgets: one search, a result each
            results = run_targets(self, space, started)
            self._warn_if_untrained()
            return results
        latency_model = None
        if self.config.cost == "latency":
            latency_model = self._calibrate(space)
            space = space.with_cost(latency_model.predict)
        base_cost = space.cost(space.base_arch)
        if base_cost <= self.config.target.high:
            latency = None
            if latency_model is not None:
                latency = self._latency_report(latency_model, space.base_arch, None)
            return self._unchanged(base_cost, started, latency)
        trainer = None if self.data is None else self._trainer()
        self._check_target(space)
        space = self._started(space)
        project_dir = None if self.config.directory is None else os.path.join(self.config.directory, self.config.project_name)
        scorer = RetainedImportance(self.space, self.model, self.config.importance_weighting)
        self._fill = self._filler(space, scorer) if self.config.start == "greedy" else None
        distributed = role() if trainer is not None else "solo"
        if distributed == "worker":
            return self._run_as_worker(space, trainer, project_dir)
        if distributed == "chief":
            clear_result(project_dir)
        direction = "max"  # the data-free score: retained importance
        base_score = 1.0
        if trainer is not None:
            if self.config.verbose:
                print(f"Scoring the base model: {self.config.objective.name} on the validation "
                      "data.", flush=True)
            base_score = trainer.score(self.space.materialize(self.space.base_arch))
            direction = self.config.objective.direction
        with tempfile.TemporaryDirectory(prefix="layernas-") as scratch:
            work_dir = self.config.directory or scratch
            engine = self._search(space, scorer, trainer, project_dir, work_dir)
            self._trained = {}
            arch, completed, completion_trials = self._choose(space, engine, scorer, trainer, direction)
            arch = space.check_arch(arch)  # a resumed state holds plain tuples, not KernelWidths
            # The winner keeps what its trial trained; the final fine-tune goes on from there.
            slim = self._trained[arch] if arch in self._trained else space.materialize(arch)
            if trainer is not None and not completed:
                load_trained(slim, os.path.join(work_dir, self.config.project_name), space, arch)
        final_score = scorer(arch) if trainer is None else trainer.fine_tune(slim, self.config.finetune_epochs)
        self._warn_if_untrained()
        latency = None
        if latency_model is not None:
            latency = self._latency_report(latency_model, arch, slim)
        result = self._result(space, engine, arch, slim, completed, direction, started,
                              score=final_score, base_score=base_score, latency=latency,
                              completion_trials=completion_trials)
        if distributed == "chief":
            publish_result(project_dir, result)
        if self.config.verbose:
            print(result.summary())
        return result
