"""Two ways to run one LayerNAS search, chosen by what a trial costs.

* With data a trial fine-tunes a model (seconds to hours), so it runs through
  :class:`~keras_layernas.tuner.LayerNASOracle` and a KerasTuner ``Tuner``:
  state on disk after every trial, resume after a crash, and KerasTuner's
  chief/worker mode.
* Data-free a trial is a table look-up (microseconds). The oracle writes its
  whole state after every trial; on MobileNetV2 1.0 at 224 (2 shared CPU
  cores) 300 trials took 26 s through the tuner and 0.07 s in process, and the
  complete LayerNAS search (about 22,500 trials) 13 s in process
  (benchmarks/compress_speed.py). So the
  data-free search drives :class:`~keras_layernas.search.LayerNAS` directly and
  saves its state atomically every few seconds; a resumed search continues
  exactly where the saved one stopped.

Both return the LayerNAS engine, whose history, best and Pareto front the
caller reads the same way; a KerasTuner worker holds no engine (the chief does)
and gets None.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
import warnings
from typing import Any, Callable

import keras
import keras_tuner

from keras_layernas.compression._distributed import role
from keras_layernas.compression._training import NonFiniteTraining
from keras_layernas import _io
from keras_layernas._io import atomic_path, write_atomically
from keras_layernas.search import LayerNAS, Target
from keras_layernas.surgery.space import Arch, SearchSpace
from keras_layernas.tuner import LayerNASTuner, TrialBudgetWarning

STATE_FILE = "layernas_state.json"
# Seconds between two state saves of the in-process search.
SAVE_EVERY_S = 2.0


class Progress:
    """One progress bar over trials with best-so-far (verbose=1), lines at 2.

    Args:
        total: number of trials if known (gives an ETA), else None.
        verbose: 0 silent, 1 a bar, 2 one line per trial.
        score_name: what the score is called in the bar.
        every: update the bar every this many trials (cheap trials).
        cost_unit: ``(name, scale)`` the cost is shown in: MAdds in millions
            by default, ``("ms", 1.0)`` for a latency search.
    """

    def __init__(self, total: int | None, verbose: int, score_name: str, every: int = 1,
                 cost_unit: tuple[str, float] = ("MMAdds", 1e6)):
        self.verbose = verbose
        self.score_name = score_name
        self.every = every
        self.cost_name, self.cost_scale = cost_unit
        self.best: float | None = None
        self.best_cost: float | None = None
        self._done = 0
        self._resumed = 0  # trials a resumed search had run: the bar times only the new ones
        self._bar = None
        # A search of unknown length (data-free: it ends when LayerNAS does)
        # shows a running count; Keras' Progbar would read "n/Unknown".
        self._counter = verbose == 1 and total is None
        self._total = total
        self._new_bar()

    def _new_bar(self) -> None:
        if self.verbose == 1 and self._total is not None:
            self._bar = keras.utils.Progbar(
                self._total - self._resumed, unit_name="trial",
                stateful_metrics=["best_" + self.score_name, "best_" + self.cost_name])

    def resume(self, ended: list[tuple[float, float | None, bool]], maximize: bool = True) -> None:
        """Count the ``(cost, score, in_target)`` trials a resumed search already ran, say so,
        and time only the trials still to run (a bar over all would show their ETA as seconds)."""
        if not ended:
            return
        for cost, score, in_target in ended:
            self._record(cost, score, in_target, maximize)
        self._resumed = self._done = len(ended)
        if self.verbose:
            best = ("" if self.best is None else f"; best in target: {self.score_name} "
                    f"{self.best:.4f} at {self.best_cost / self.cost_scale:.2f} {self.cost_name}")
            print(f"Resuming after {self._done} trials{best}.", flush=True)
        self._new_bar()

    def _record(self, cost: float, score: float | None, in_target: bool, maximize: bool) -> None:
        self._done += 1
        if score is not None and in_target and math.isfinite(score):
            if self.best is None or (score > self.best if maximize else score < self.best):
                self.best, self.best_cost = score, cost

    def trial(self, cost: float, score: float | None, in_target: bool, maximize: bool = True) -> None:
        """Record one ended trial."""
        self._record(cost, score, in_target, maximize)
        if self.verbose == 2:
            shown = "failed" if score is None else f"{score:.4f}"
            print(f"trial {self._done}: {cost / self.cost_scale:.2f} {self.cost_name}, "
                  f"{self.score_name} {shown}"
                  f"{' (in target)' if in_target else ''}", flush=True)
        elif (self._bar is not None or self._counter) and self._done % self.every == 0:
            self._update()

    def _update(self) -> None:
        values = []
        if self.best is not None:
            values = [("best_" + self.score_name, self.best),
                      ("best_" + self.cost_name, self.best_cost / self.cost_scale)]
        if self._bar is not None:
            self._bar.update(self._done - self._resumed, values=values)
        else:
            shown = "".join(f" - {name}: {value:.4g}" for name, value in values)
            print(f"\r{self._done} trials{shown}", end="", flush=True)

    def close(self) -> None:
        if self._bar is not None:
            if self._done == self._resumed:
                return  # a resumed search that had finished: "Resuming after" said it all
            # The search may end before max_trials: a bar at its target prints
            # its final line and a newline.
            self._bar.target = self._done - self._resumed
            self._update()
        elif self._counter:
            self._update()
            print(flush=True)


def search_in_process(
    space: SearchSpace,
    score_fn: Callable[[Arch], float],
    settings: dict[str, Any],
    project_dir: str | None,
    overwrite: bool,
    progress: Progress,
) -> LayerNAS:
    """Run LayerNAS to the end in this process, saving state under ``project_dir``.

    Args:
        space: the search space.
        score_fn: architecture -> score (higher is better); must be cheap.
        settings: ``LayerNAS`` keyword arguments (target, num_buckets,
            per_bucket, seed, max_trials); all but max_trials are part of the
            resume fingerprint.
        project_dir: where the state lives; None keeps nothing on disk.
        overwrite: start over even if a saved state exists.
        progress: where trials are reported.

    Returns:
        The finished LayerNAS engine.

    Raises:
        ValueError: the saved state belongs to a different space or settings.
    """
    path = os.path.join(project_dir, STATE_FILE) if project_dir else None
    fingerprint = _io.fingerprint(space, {**settings, "target": Target.of(settings["target"]).encode()})
    search = None
    if path and os.path.exists(path) and not overwrite:
        with open(path) as f:
            saved = json.load(f)
        if not _io.same_search(saved["fingerprint"], fingerprint):
            raise ValueError(
                f"{project_dir!r} holds a search of a different space or settings "
                f"({saved['fingerprint']['target']} vs {list(settings['target'])} target...). "
                "Pass overwrite=True or another directory to start a new search."
            )
        search = LayerNAS.from_json(saved["search"], space.cost, max_trials=settings.get("max_trials"))
        progress.resume([(r.cost, r.score, search.in_target(r.cost)) for r in search.history])
    if search is None:
        search = LayerNAS(space.options, space.cost, **settings)

    def save() -> None:
        if path:
            os.makedirs(project_dir, exist_ok=True)
            write_atomically(path, json.dumps({"fingerprint": fingerprint, "search": search.to_json()}))

    last_save = time.monotonic()
    while (candidate := search.ask()) is not None:
        score = score_fn(candidate.arch)
        search.tell(candidate, score)
        progress.trial(candidate.cost, score, search.in_target(candidate.cost))
        if time.monotonic() - last_save > SAVE_EVERY_S:
            save()
            last_save = time.monotonic()
    save()
    return search


def _trained_path(project_dir: str, space: SearchSpace, arch: Arch) -> str:
    """Where the weights a trial trained for ``arch`` live (shared by chief and workers)."""
    key = hashlib.sha256(json.dumps(space.encode(arch), sort_keys=True).encode()).hexdigest()[:20]
    return os.path.join(project_dir, "trained", f"{key}.weights.h5")


def save_trained(model: Any, project_dir: str, space: SearchSpace, arch: Arch) -> None:
    """Keep a trial's trained weights, so the winner is returned as trained, not re-sliced."""
    path = _trained_path(project_dir, space, arch)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_path(path, suffix=".weights.h5") as temporary:
        model.save_weights(temporary)


def load_trained(model: Any, project_dir: str, space: SearchSpace, arch: Arch) -> bool:
    """Load the weights a trial trained for ``arch`` into ``model``; False if none were kept."""
    path = _trained_path(project_dir, space, arch)
    if not os.path.exists(path):
        return False
    model.load_weights(path)
    return True


class CompressionTuner(LayerNASTuner):
    """Each trial: materialize the arch (inherited weights), fine-tune, score.

    On a KerasTuner worker ``self.oracle`` is a gRPC client that knows neither
    the space nor the trials, so architectures are decoded from the trial's
    hyperparameters here and an ended trial is asked of the chief.

    Args:
        space: the search space.
        trainer: a :class:`~keras_layernas.compression._training.Trainer`.
        epochs: fine-tuning epochs per trial.
        progress: where ended trials are reported.
        target: the search's cost range (a :class:`~keras_layernas.search.Target` or a pair).
        fill: candidate -> the architecture its trial trains (see
            :func:`~keras_layernas.compression._completion.greedy_fill`); None
            trains the candidate itself.
        **kwargs: :class:`LayerNASTuner` arguments.
    """

    def __init__(self, space: SearchSpace, trainer: Any, epochs: int, progress: Progress,
                 target: Target, fill: Callable[[Arch], Arch] | None = None, **kwargs):
        super().__init__(space, objective=trainer.objective, target=target, **kwargs)
        self.space = space
        self.trainer = trainer
        self.epochs = epochs
        self.progress = progress
        self.fill = fill or (lambda arch: arch)
        # the oracle's own target is out of reach on a worker (an OracleClient)
        self.target = Target.of(target)

    def run_trial(self, trial, *args, **kwargs) -> dict[str, float]:
        strategy = self.distribution_strategy
        scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
        arch = self.fill(self.space.decode(trial.hyperparameters.values))
        with scope:
            model = self.space.materialize(arch)
            try:
                score = self.trainer.fine_tune(model, self.epochs)
            except NonFiniteTraining as error:  # a FAILED trial, never a winner
                raise keras_tuner.errors.FailedTrialError(str(error)) from error
        save_trained(model, self.project_dir, self.space, arch)
        return {self.oracle.objective.name: score}

    def on_trial_end(self, trial) -> None:
        super().on_trial_end(trial)
        self.progress.trial(*self._outcome(trial.trial_id), self._maximize)

    @property
    def _maximize(self) -> bool:
        return self.oracle.objective.direction == "max"

    def _outcome(self, trial_id: str) -> tuple[float, float | None, bool]:
        """``(cost, score, in_target)`` of an ended trial: its trained model's cost, None if failed."""
        ended = self.oracle.get_trial(trial_id)
        cost = self.space.cost(self.fill(self.space.decode(ended.hyperparameters.values)))
        score = ended.score if ended.status == "COMPLETED" else None
        return cost, score, self.target.contains(cost)

    def report_resumed(self) -> None:
        """Tell the progress what a reloaded project had already run (the chief's oracle only)."""
        self.progress.resume([self._outcome(t) for t in self.oracle.end_order], self._maximize)


TRIAL_RECIPE_FILE = "trial_recipe.json"


def check_trial_recipe(project_dir: str, recipe: dict[str, Any], overwrite: bool) -> None:
    """Refuse to resume trials trained another way; record the recipe of a new search.

    The oracle's own fingerprint covers the space and LayerNAS's settings,
    not how a trial trains: a search started with ``start="base"`` and
    resumed with ``"greedy"`` would compare scores of different models.

    Raises:
        ValueError: ``project_dir`` holds a search whose trials trained otherwise.
    """
    path = os.path.join(project_dir, TRIAL_RECIPE_FILE)
    recipe = json.loads(json.dumps(recipe))
    if os.path.exists(path) and not overwrite:
        with open(path) as f:
            saved = json.load(f)
        if saved != recipe:
            changed = sorted(k for k in set(saved) | set(recipe) if saved.get(k) != recipe.get(k))
            raise ValueError(
                f"{project_dir!r} holds a search whose trials trained another way: "
                + ", ".join(f"{k}={saved.get(k)!r} there, {recipe.get(k)!r} now" for k in changed)
                + ". Pass the same settings to resume it, or overwrite=True or another directory "
                "to start a new search."
            )
        return
    os.makedirs(project_dir, exist_ok=True)
    write_atomically(path, json.dumps(recipe))


def search_with_tuner(
    space: SearchSpace,
    trainer: Any,
    epochs: int,
    settings: dict[str, Any],
    directory: str,
    project_name: str,
    overwrite: bool,
    progress: Progress,
    fill: Callable[[Arch], Arch] | None = None,
    trial_recipe: dict[str, Any] | None = None,
) -> LayerNAS | None:
    """Run the search through LayerNASOracle + :class:`CompressionTuner`.

    Under KerasTuner's chief/worker variables the chief serves the oracle until
    the search ends and workers train trials until the chief stops them.

    ``trial_recipe`` (what a trial trains and how: ``start``, epochs,
    distillation) is kept beside the oracle's state; resuming with another
    recipe would rank trials scored two ways, so it is refused
    (:func:`check_trial_recipe`).

    Returns:
        The oracle's LayerNAS engine after the search (finished, or stopped at
        ``max_trials``); None on a worker, whose oracle lives in the chief.
    """
    worker = role() == "worker"
    with warnings.catch_warnings():
        # compress completes its best candidates to the target whatever max_trials is
        warnings.simplefilter("ignore", TrialBudgetWarning)
        tuner = CompressionTuner(
            space, trainer, epochs, progress, fill=fill,
            directory=directory, project_name=project_name,
            # The chief owns the shared project: a worker starting later with
            # overwrite=True would delete the oracle state the chief is writing.
            overwrite=overwrite and not worker, **settings,
        )
    # After the tuner: overwrite=True has deleted the project folder by now. The chief owns it.
    if trial_recipe is not None and not worker:
        check_trial_recipe(os.path.join(directory, project_name), trial_recipe, overwrite)
    if not worker:
        tuner.report_resumed()
    # KerasTuner's own display would print around every trial; Progress does.
    tuner.search(verbose=0)
    return None if worker else tuner.oracle.search

