"""LayerNASOracle: KerasTuner's Oracle interface over the LayerNAS search core.

The oracle adapts, it does not re-implement: ``populate_space`` asks
:class:`~keras_layernas.search.LayerNAS` for the next architecture and
``end_trial`` tells it the trial's score. Everything LayerNAS knows, plus the
trial -> candidate map, is part of the oracle state, written atomically, so a
search killed at any point resumes without losing or repeating a trial.
"""
from __future__ import annotations

import json
import logging
import math
import numbers
import os
import time
import warnings
from typing import Any, Callable, Mapping

import keras_tuner
from keras_tuner.engine.trial import Trial, TrialStatus
from keras_tuner.src import backend as keras_tuner_backend
from keras_tuner.src import utils as keras_tuner_utils
from keras_tuner.src.engine.metrics_tracking import MetricsTracker

from keras_layernas._io import fingerprint, same_search, write_atomically
from keras_layernas.search import LayerNAS, as_maximized
from keras_layernas.surgery.space import SearchSpace
from keras_layernas.tuner._choices import choice_values, declare_architecture
from keras_layernas.tuner._hypermodel import LayerNASHyperModel

# Statuses after which KerasTuner never runs a trial again.
_FINAL = (TrialStatus.COMPLETED, TrialStatus.FAILED)
# Statuses a worker may end a trial with (INVALID: crashed, subject to retries).
_ENDED = (TrialStatus.COMPLETED, TrialStatus.INVALID, TrialStatus.FAILED)

logger = logging.getLogger(__name__)


def write_json_atomically(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON so that a reader sees the old or the new file, never half.

    KerasTuner writes its state files in place; a ``kill -9`` during that write
    leaves a truncated JSON that cannot be reloaded. Remote paths (``gs://``)
    keep KerasTuner's own writer, as ``os.replace`` cannot reach them.
    """
    if "://" in path:
        keras_tuner_utils.save_json(path, obj)
        return
    write_atomically(path, json.dumps(obj))


class TrialBudgetWarning(UserWarning):
    """``max_trials`` ends before LayerNAS proposes its first architecture inside ``target``."""


def first_in_target_trial(space: SearchSpace, search_args: Mapping[str, Any]) -> int | None:
    """The trial at which LayerNAS, all scores equal, first proposes an in-target architecture.

    LayerNAS goes layer by layer and keeps the layers it has not reached at
    their base (dearest) options, so with a target far below the base its
    first in-target candidate comes late. Scores choose which candidates a
    bucket keeps, not when a layer is reached, so equal scores give a fair
    estimate; costs are all it computes (no training). None: a complete
    search proposes none.
    """
    probe = LayerNAS(space.options, space.cost, **{**search_args, "max_trials": None})
    asked = 0
    while (candidate := probe.ask()) is not None:
        asked += 1
        if probe.in_target(candidate.cost):
            return asked
        probe.tell(candidate, 0.0)
    return None


class LayerNASOracle(keras_tuner.Oracle):
    """Searches a :class:`SearchSpace` with LayerNAS, one KerasTuner trial per arch.

    Each searchable layer is one ``hp.Choice`` named after the layer (values:
    ``SearchLayer.encode`` of its options), so a trial's hyperparameters are its
    architecture; use :func:`declare_architecture` in your own ``build(hp)`` or
    :class:`LayerNASHyperModel`. Architectures whose cost no completion can bring
    into ``target`` are never handed out.

    ``create_trial`` returns status ``"IDLE"`` while the current layer waits on
    trials still running elsewhere, and ``"STOPPED"`` when LayerNAS is done (or
    ``max_trials`` is reached). A trial that raises or whose objective is NaN
    or infinite follows KerasTuner's rules (``"INVALID"``, retried up to
    ``max_retries_per_trial`` times, then ``"FAILED"``); only its final outcome
    reaches LayerNAS, and a failure never enters a bucket. ``max_consecutive_failed_trials`` failures in
    a row end the search with KerasTuner's ``RuntimeError``.

    Workers are not trusted (KerasTuner's gRPC is plaintext and
    unauthenticated): ``update_trial`` and ``end_trial`` are accepted only for a
    trial handed out and still running, ``end_trial`` only with exactly the
    architecture handed out, a terminal status and, when ``"COMPLETED"``, a
    reported objective. Anything else is refused with a logged warning and no
    change of state. A running trial not heard from (handed out, metrics
    reported, or an epoch's ``get_trial`` from :class:`LayerNASTuner`) for
    ``worker_timeout_s`` is taken from its worker and handed to the next one
    that asks, so a dead worker cannot stall the search.

    Best trials (``get_best_trials``, hence ``get_best_models``,
    ``get_best_hyperparameters`` and ``results_summary``) are ranked among
    completed trials whose cost lies inside ``target`` only: the wider
    architectures LayerNAS trains on the way are not answers.

    Args:
        space: the ``SearchSpace`` to search (``SearchSpace.from_model`` or
            ``SearchSpace.from_options``).
        objective: a string or ``keras_tuner.Objective`` (e.g.
            ``keras_tuner.Objective("val_accuracy", "max")``).
        target: ``(low, high)`` cost range of the wanted architecture, in the
            space's cost unit (MAdds for model spaces).
        max_trials: optional cap on the number of trials; ``None`` runs until
            LayerNAS has nothing left to expand. A cap that ends before
            LayerNAS's first in-target candidate (estimated by
            :func:`first_in_target_trial`) gives a :class:`TrialBudgetWarning`
            naming the trials it needs: until an in-target trial completes,
            ``get_best_models()`` is empty and ``results_summary()`` prints none.
        num_buckets: LayerNAS's H, cost buckets per layer.
        per_bucket: LayerNAS's k, candidates kept per bucket.
        seed: seed of the LayerNAS search (deterministic for a seed and a
            score order).
        max_retries_per_trial: as in KerasTuner; retries of a crashed trial.
        max_consecutive_failed_trials: as in KerasTuner.
        idle_wait_s: seconds a tuner is held back after an ``"IDLE"`` answer,
            so that waiting workers poll the chief instead of spinning.
        worker_timeout_s: seconds a running trial may go unheard from before
            it goes back to the queue (default one hour, KerasTuner's own gRPC
            timeout); ``None`` waits forever. It must exceed the longest epoch
            (longest trial for a tuner that does not call ``get_trial`` each
            epoch).

    Raises:
        TypeError: ``space`` is not a ``SearchSpace``.
        ValueError: ``idle_wait_s`` is negative, ``worker_timeout_s`` is not
            positive, ``target`` is not a finite ``(low, high)`` pair or lies
            outside the space's reachable cost (LayerNAS's checks), a count is
            not positive, or a layer's options cannot be ``hp.Choice`` values.

    Example:
        >>> from keras_layernas.surgery import SearchSpace
        >>> space = SearchSpace.from_options(
        ...     {"conv1": [32, 24, 16], "conv2": [64, 48, 32]},
        ...     cost_fn=lambda v: v["conv1"] * v["conv2"])
        >>> oracle = LayerNASOracle(space, objective="val_accuracy",
        ...                         target=(600, 1000), seed=1)
        >>> sorted(oracle.get_space().values)
        ['conv1', 'conv2']
    """

    def __init__(
        self,
        space: SearchSpace,
        objective: str | keras_tuner.Objective | None = None,
        target: tuple[float, float] | None = None,
        max_trials: int | None = None,
        num_buckets: int = 100,
        per_bucket: int = 3,
        seed: int = 0,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        idle_wait_s: float = 0.2,
        worker_timeout_s: float | None = 3600.0,
    ):
        if not isinstance(space, SearchSpace):
            raise TypeError(
                "space must be a keras_layernas SearchSpace (SearchSpace.from_model or "
                f"SearchSpace.from_options). Received: space of type {type(space).__name__}."
            )
        if not idle_wait_s >= 0:
            raise ValueError(
                "idle_wait_s must be a number of seconds >= 0. "
                f"Received: idle_wait_s={idle_wait_s!r}."
            )
        if worker_timeout_s is not None and (
                isinstance(worker_timeout_s, bool)
                or not isinstance(worker_timeout_s, numbers.Real) or not worker_timeout_s > 0):
            raise ValueError(
                "worker_timeout_s must be a number of seconds > 0, or None to wait for "
                f"a silent worker forever. Received: worker_timeout_s={worker_timeout_s!r}."
            )
        hyperparameters = keras_tuner.HyperParameters()
        for layer in space.layers:
            choice_values(layer)  # fails now, naming the layer, not inside a worker
        declare_architecture(hyperparameters, space)
        # LayerNAS checks target and counts, and that the target is reachable.
        search_args = dict(target=target, num_buckets=num_buckets, per_bucket=per_bucket,
                           seed=seed, max_trials=max_trials)
        search = LayerNAS(space.options, space.cost, **search_args)
        if max_trials is not None:
            self._warn_if_no_trial_reaches(space, search_args, search.target)
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        self.space = space
        self.target = search.target
        self.idle_wait_s = idle_wait_s
        self.worker_timeout_s = worker_timeout_s
        self._search_args = {**search_args, "target": search.target.encode()}
        self._search = search
        # trial_id -> LayerNAS candidate id; persisted, as only the chief knows it.
        self._candidate_of_trial: dict[str, int] = {}
        self._told_trials: set[str] = set()
        self._cost_of_trial: dict[str, float] = {}
        # trial_id -> time.monotonic() when its worker was last heard from;
        # not saved, as a reload puts every running trial back in the queue.
        self._last_heard: dict[str, float] = {}
        # tuner_id -> time.monotonic() of its last create_trial call
        self._tuner_heard: dict[str, float] = {}

    @staticmethod
    def _warn_if_no_trial_reaches(space: SearchSpace, search_args: Mapping[str, Any],
                                  target: tuple[float, float]) -> None:
        """Say up front when ``max_trials`` ends before the first in-target candidate."""
        max_trials = search_args["max_trials"]
        first = first_in_target_trial(space, search_args)
        if first is not None and first <= max_trials:
            return
        if first is None:
            when, fix = "a complete search proposes none", "Widen target"
        else:
            when = f"its first in-target candidate comes at about trial {first}"
            fix = (f"Raise max_trials to at least {first} (a few times more to compare "
                   "candidates), or use layernas.compress(model, ..., data=..., max_trials=...), "
                   "which completes its best candidates to the target")
        warnings.warn(
            f"max_trials={max_trials} ends before LayerNAS proposes an architecture inside "
            f"target ({target[0]:.6g}, {target[1]:.6g}): it searches layer by layer with the "
            f"layers it has not reached at their base options, and {when}. Until a trial in "
            "target completes, get_best_models() and get_best_hyperparameters() are empty and "
            f"results_summary() lists none. {fix}.", TrialBudgetWarning, stacklevel=3)

    # -- KerasTuner hooks -------------------------------------------------------
    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Hand out LayerNAS's next architecture as the trial's hyperparameters.

        Every other hyperparameter of the user's build (e.g. ``hp.Float("lr")``)
        is pinned to its default, so that trials differ in their architecture
        alone (KerasTuner would otherwise sample it at random per trial).
        """
        candidate = self._search.ask()
        if candidate is None:
            status = TrialStatus.STOPPED if self._search.finished else TrialStatus.IDLE
            return {"status": status, "values": None}
        self._candidate_of_trial[trial_id] = candidate.id
        # By index into the space's own options: a restored LayerNAS holds
        # option values as JSON gave them back (a KernelWidth becomes a plain
        # tuple, which would encode differently).
        arch = tuple(layer.options[i] for layer, i in zip(self.space.layers, candidate.indices))
        values = self.space.encode(arch)
        for hyperparameter in self.hyperparameters.space:
            values.setdefault(hyperparameter.name, hyperparameter.default)
        return {"status": TrialStatus.RUNNING, "values": values}

    def create_trial(self, tuner_id: str) -> Trial:
        """KerasTuner's ``create_trial``, holding the caller back on ``"IDLE"``.

        The sleep happens outside the oracle lock so that the trial being
        waited for can still end meanwhile.
        """
        trial = self._create_trial_now(tuner_id)
        if trial.status == TrialStatus.IDLE:
            time.sleep(self.idle_wait_s)
        return trial

    @keras_tuner.synchronized
    def _create_trial_now(self, tuner_id: str) -> Trial:
        self._tuner_heard[tuner_id] = time.monotonic()
        self._forget_silent_workers()
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.RUNNING:
            self._last_heard[trial.trial_id] = time.monotonic()
        return trial

    @keras_tuner.synchronized
    def update_trial(self, trial_id: str, metrics: Mapping[str, Any], step: int = 0) -> Trial:
        """KerasTuner's ``update_trial`` for a running trial with numeric metrics.

        Raises:
            ValueError: ``trial_id`` was never handed out (there is no trial
                to answer with). Other refusals return the trial unchanged.
        """
        if trial_id not in self.trials:
            reason = f"update_trial for trial {trial_id!r}, which was never handed out"
            logger.warning("Refused %s.", reason)
            raise ValueError(f"Refused {reason}. Known trials: {sorted(self.trials)[:20]}.")
        reason = self._not_running(trial_id) or self._bad_metrics(metrics)
        if reason:
            logger.warning("Refused update_trial for trial %s: %s.", trial_id, reason)
            return self.trials[trial_id]
        self._last_heard[trial_id] = time.monotonic()
        return super().update_trial(trial_id, metrics, step=step)

    @keras_tuner.synchronized
    def update_space(self, hyperparameters: keras_tuner.HyperParameters) -> None:
        """KerasTuner's ``update_space``, refusing a second declaration of a searchable layer.

        Such a declaration (e.g. under a condition) would change which values a
        trial holds for that layer, and every later trial would fail to decode.
        """
        redeclared = self._redeclared_layers(hyperparameters)
        if redeclared:
            logger.warning("Refused update_space: it declares the searchable layers %s "
                           "again, under other conditions.", redeclared)
            return
        super().update_space(hyperparameters)

    @keras_tuner.synchronized
    def get_trial(self, trial_id: str) -> Trial:
        """The trial; a call for a running trial also tells the oracle its worker lives."""
        if trial_id in self._last_heard and not self._not_running(trial_id):
            self._last_heard[trial_id] = time.monotonic()
        return super().get_trial(trial_id)

    def score_trial(self, trial: Trial) -> None:
        """KerasTuner's score; an infinite one becomes NaN, which fails the trial.

        An overflowing ``val_loss`` is no result, and LayerNAS cannot rank it.
        """
        super().score_trial(trial)
        if trial.score is not None and not math.isfinite(trial.score):
            trial.score = math.nan

    @keras_tuner.synchronized
    def end_trial(self, trial: Trial) -> None:
        """KerasTuner's ``end_trial``, then tell LayerNAS the final outcome.

        A report the oracle cannot trust (see the class docstring) is refused
        with a logged warning, before anything changes.

        An ``"INVALID"`` trial waiting for a retry is not told: LayerNAS keeps
        it pending until its last attempt, which starts with empty metrics
        (KerasTuner would average the retry's objective with the failed NaN at
        the same step, so a NaN trial could never recover). Saving again at the
        end also writes the state KerasTuner's chief saved while the trial still
        looked ongoing.
        """
        reason = self._untrusted_end(trial)
        if reason:
            logger.warning("Refused end_trial for trial %s: %s.", trial.trial_id, reason)
            return
        self._last_heard.pop(trial.trial_id, None)
        try:
            super().end_trial(trial)
        except RuntimeError:
            if trial.trial_id not in self.end_order:
                raise
            # KerasTuner's stop after max_consecutive_failed_trials comes before
            # it saves and releases the trial; finish that first, or LayerNAS
            # would wait for the trial forever (and with it every other worker).
            self._after_end(trial.trial_id)
            raise
        self._after_end(trial.trial_id)

    def _after_end(self, trial_id: str) -> None:
        ended = self.trials[trial_id]
        for tuner_id, running in list(self.ongoing_trials.items()):
            if running.trial_id == trial_id:
                del self.ongoing_trials[tuner_id]
        if ended.status in _FINAL:
            self._tell(ended)
        elif trial_id in self._retry_queue:
            ended.metrics = MetricsTracker()
        self._save_trial(ended)
        self.save()

    def get_best_trials(self, num_trials: int = 1) -> list[Trial]:
        """Best completed trials whose architecture's cost lies inside ``target``."""
        # Trial ids count up in creation order; sorting by them first makes
        # ties go to the earlier trial, whatever order a reload listed the files in.
        in_target = sorted(
            (trial for trial in self.trials.values()
             if trial.status == TrialStatus.COMPLETED and self._in_target(trial)),
            key=lambda t: (len(t.trial_id), t.trial_id),
        )
        in_target.sort(key=lambda t: t.score, reverse=self.objective.direction == "max")
        return in_target[:num_trials]

    # -- inspection ------------------------------------------------------------
    @property
    def search(self) -> LayerNAS:
        """The LayerNAS engine (read it; the oracle alone asks and tells)."""
        return self._search

    def architecture(self, trial: Trial) -> tuple:
        """The architecture a trial trained (decoded from its hyperparameters)."""
        return self.space.decode(trial.hyperparameters.values)

    def bucket_table(self) -> list[dict]:
        """LayerNAS's kept candidates, per layer and cost bucket, as trials.

        Returns:
            One dict per searchable layer mapping the bucket key to the kept
            entries, best first: ``{"trial_id", "arch", "cost", "score",
            "expanded"}`` with ``score`` in the objective's own sign.
        """
        trial_of = {c: t for t, c in self._candidate_of_trial.items()}
        return [
            {bucket: [self._as_trial_entry(entry, trial_of) for entry in entries]
             for bucket, entries in table.items()}
            for table in self._search.bucket_table()
        ]

    def pareto_front(self) -> list[dict]:
        """Best in-target trial of each last-layer cost bucket, cheapest first.

        Returns:
            ``{"trial_id", "arch", "cost", "score"}`` dicts: the cost/score
            trade-off the search found around the target.
        """
        trial_of = {c: t for t, c in self._candidate_of_trial.items()}
        return [
            self._as_trial_entry(
                {"id": r.id, "arch": list(r.arch), "cost": r.cost, "score": r.score}, trial_of)
            for r in self._search.pareto_front()
        ]

    # -- state -----------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        # KerasTuner's end_trial saves before it drops the trial from
        # ongoing_trials; a resume would run such a trial again. A trial that
        # ended or waits in the retry queue is not ongoing.
        not_running = set(self.end_order) | set(self._retry_queue)
        state["ongoing_trials"] = {
            tuner_id: trial.trial_id
            for tuner_id, trial in self.ongoing_trials.items()
            if trial.trial_id not in not_running
        }
        state["layernas"] = {
            "space": self._fingerprint(),
            "search": self._search.to_json(),
            "candidate_of_trial": self._candidate_of_trial,
            "told_trials": sorted(self._told_trials),
        }
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        saved = state["layernas"]
        if not same_search(saved["space"], self._fingerprint()):
            raise _DifferentSearch(
                "This project was searched with a different space or LayerNAS "
                f"settings. Saved: {saved['space']}. Now: {self._fingerprint()}. "
                "Pass overwrite=True or another project_name to start a new search."
            )
        super().set_state(state)
        self._search = LayerNAS.from_json(saved["search"], self.space.cost,
                                          max_trials=self._search_args["max_trials"])
        self._candidate_of_trial = dict(saved["candidate_of_trial"])
        self._told_trials = set(saved["told_trials"])

    def save(self) -> None:
        write_json_atomically(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial: Trial) -> None:
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        write_json_atomically(path, trial.get_state())

    def reload(self) -> None:
        """Reload the project, then repair what a crash left half-done.

        KerasTuner's own reload, except that a state file that is missing,
        truncated or not a state fails naming the file and the way out.

        Raises:
            RuntimeError: a state file cannot be read back.
            ValueError: the project was searched with another space or settings.
        """
        pattern = os.path.join(self._project_dir, "trial_*", "trial.json")
        for path in keras_tuner_backend.io.glob(pattern):
            trial = self._read_state_file(path, Trial.from_state)
            self.trials[trial.trial_id] = trial
        path = self._get_oracle_fname()
        state = self._read_state_file(path, self._checked_oracle_state)
        try:
            self.set_state(state)
        except _DifferentSearch:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            raise _unreadable(path, error) from error
        # KerasTuner: trials running when the search stopped run again.
        self._retry_queue.extend(trial.trial_id for trial in self.ongoing_trials.values())
        self.ongoing_trials = {}
        self._recover_after_crash()
        self.save()

    def _read_state_file(self, path: str, parse: Callable[[Any], Any]) -> Any:
        if not keras_tuner_backend.io.exists(path):
            raise _unreadable(path, "the file is missing")
        try:
            return parse(keras_tuner_utils.load_json(path))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            raise _unreadable(path, error) from error

    def _checked_oracle_state(self, state: Any) -> Mapping[str, Any]:
        """The oracle state, once every trial it names has its file."""
        missing = [t for t in state["start_order"] if t not in self.trials]
        if missing:
            files = [os.path.join(self._project_dir, f"trial_{t}", "trial.json") for t in missing]
            raise ValueError(f"the trial files {files} it lists are missing")
        return state

    # -- internals -------------------------------------------------------------
    def _recover_after_crash(self) -> None:
        """Make trial files and oracle state agree after a ``kill -9``.

        Trial files are written before the oracle state, so they may be ahead:
        a trial file the state never recorded was created but never handed out
        (LayerNAS will propose that architecture again); a trial whose file says
        it ended, or that already reported its objective, finished training and
        is ended here rather than trained a second time.
        """
        started = set(self.start_order)
        for trial_id in [t for t in self.trials if t not in started]:
            del self.trials[trial_id]
        for trial_id in self.start_order:
            trial = self.trials[trial_id]
            if trial_id in self._told_trials:
                continue
            if trial.status == TrialStatus.RUNNING and self._objective_reported(trial):
                # end_trial's accounting, minus the display of a trial that
                # started in the crashed process
                trial.status = TrialStatus.COMPLETED
                self.score_trial(trial)
                if math.isnan(trial.score):
                    trial.status = TrialStatus.INVALID
                self._run_times[trial_id] += 1
                if self._retry(trial):
                    trial.metrics = MetricsTracker()
                self._save_trial(trial)
            elif trial.status == TrialStatus.COMPLETED and not _finite(trial.score):
                # saved by a version that completed trials with an infinite score
                trial.status = TrialStatus.FAILED
                trial.message = f"The objective is not finite: {trial.score}."
                self._save_trial(trial)
            if trial.status in _FINAL:
                if trial_id not in self.end_order:
                    self.end_order.append(trial_id)
                self._tell(trial)
        ended = set(self.end_order)
        # dict.fromkeys keeps the order while dropping repeats: a trial both
        # saved as ongoing and queued for retry must run once.
        self._retry_queue = [t for t in dict.fromkeys(self._retry_queue) if t not in ended]

    def _forget_silent_workers(self) -> None:
        """Take running trials from workers silent for ``worker_timeout_s``.

        The trial goes back to the queue with empty metrics (not counted as a
        failed attempt), and its tuner id, like that of a tuner without a
        trial that stopped asking for one, stops counting as a live tuner, so
        the chief can exit without it. A report from that worker arriving
        later is refused unless the trial runs again by then.
        """
        if self.worker_timeout_s is None:
            return
        now = time.monotonic()
        for tuner_id, trial in list(self.ongoing_trials.items()):
            # a trial from before a reload starts its clock now
            heard = self._last_heard.setdefault(trial.trial_id, now)
            if now - heard <= self.worker_timeout_s:
                continue
            logger.warning(
                "Trial %s: tuner %r not heard from for %.0f s (worker_timeout_s=%s); "
                "the trial goes back to the queue.",
                trial.trial_id, tuner_id, now - heard, self.worker_timeout_s)
            del self.ongoing_trials[tuner_id]
            del self._last_heard[trial.trial_id]
            self.tuner_ids.discard(tuner_id)
            trial.metrics = MetricsTracker()
            self._retry_queue.append(trial.trial_id)
            self._save_trial(trial)
            self.save()
        for tuner_id in self.tuner_ids - set(self.ongoing_trials):
            heard = self._tuner_heard.setdefault(tuner_id, now)
            if now - heard > self.worker_timeout_s:
                logger.warning(
                    "Tuner %r has not asked for a trial for %.0f s (worker_timeout_s=%s); "
                    "the chief no longer waits for it.", tuner_id, now - heard,
                    self.worker_timeout_s)
                self.tuner_ids.discard(tuner_id)

    def _not_running(self, trial_id: Any) -> str | None:
        """Why a worker may not report on ``trial_id`` now, or None."""
        if trial_id not in self.trials:
            return "it was never handed out"
        if trial_id in self.end_order:
            return "it has already ended"
        if all(t.trial_id != trial_id for t in self.ongoing_trials.values()):
            return "it is not running (it waits for a retry, or was taken from a silent worker)"
        return None

    @staticmethod
    def _bad_metrics(metrics: Any) -> str | None:
        """Why ``metrics`` is not a name -> number mapping, or None."""
        if not hasattr(metrics, "items"):
            return f"metrics must map names to numbers, not {type(metrics).__name__}"
        for name, value in metrics.items():
            if not isinstance(name, str):
                return f"metric name {name!r} is not a string"
            try:
                if isinstance(value, (bool, str, bytes)):
                    raise TypeError
                float(value)
            except (TypeError, ValueError):
                return f"metric {name!r} = {value!r} is not a number"
        return None

    def _untrusted_end(self, trial: Any) -> str | None:
        """Why ``end_trial(trial)`` must be refused, or None."""
        if not isinstance(trial, Trial):
            return f"expected a Trial, got {type(trial).__name__}"
        reason = self._not_running(trial.trial_id)
        if reason:
            return reason
        if trial.status not in _ENDED:
            return f"status {trial.status!r} does not end a trial (expected one of {_ENDED})"
        handed_out = self.trials[trial.trial_id].hyperparameters.values
        sent = getattr(trial.hyperparameters, "values", None) or {}
        names = [layer.name for layer in self.space.layers]
        if any(sent.get(n) != handed_out.get(n) for n in names):
            return (f"its architecture {({n: sent.get(n) for n in names})} is not the one "
                    f"handed out {({n: handed_out.get(n) for n in names})}")
        redeclared = self._redeclared_layers(trial.hyperparameters)
        if redeclared:
            return f"it declares the searchable layers {redeclared} again, under other conditions"
        if (trial.status == TrialStatus.COMPLETED
                and not self._objective_reported(self.trials[trial.trial_id])):
            return "it is COMPLETED but never reported its objective (update_trial)"
        return None

    def _redeclared_layers(self, hyperparameters: Any) -> list[str]:
        """Searchable layers that ``hyperparameters`` declares as new entries."""
        names = {layer.name for layer in self.space.layers}
        return sorted({hp.name for hp in getattr(hyperparameters, "space", [])
                       if hp.name in names
                       and not self.hyperparameters._exists(hp.name, hp.conditions)})

    def _objective_reported(self, trial: Trial) -> bool:
        names = getattr(self.objective, "name_to_direction", {self.objective.name: None})
        return all(trial.metrics.exists(name) for name in names)

    def _tell(self, trial: Trial) -> None:
        score = None
        if trial.status == TrialStatus.COMPLETED:
            score = self._layernas_sign(trial.score)
        self._search.tell(self._candidate_of_trial[trial.trial_id], score)
        self._told_trials.add(trial.trial_id)

    def _layernas_sign(self, score: float | None) -> float | None:
        """LayerNAS maximizes; a KerasTuner objective may minimize (its own inverse)."""
        return as_maximized(score, self.objective.direction)

    def _as_trial_entry(self, entry: dict, trial_of: Mapping[int, str]) -> dict:
        converted = {"trial_id": trial_of[entry["id"]], **entry}
        del converted["id"]
        converted["score"] = self._layernas_sign(entry["score"])
        return converted

    def _in_target(self, trial: Trial) -> bool:
        if trial.trial_id not in self._cost_of_trial:
            self._cost_of_trial[trial.trial_id] = self.space.cost(self.architecture(trial))
        return self.target.contains(self._cost_of_trial[trial.trial_id])

    def _fingerprint(self) -> dict[str, Any]:
        """What must not change between a search and its resume."""
        return fingerprint(self.space, self._search_args)


class _DifferentSearch(ValueError):
    """A saved project belongs to another space or other LayerNAS settings."""


def _unreadable(path: str, problem: Any) -> RuntimeError:
    return RuntimeError(
        f"Cannot resume the search: {path} cannot be read back ({problem}). The file is "
        "missing, truncated or not a state file of this search. Pass overwrite=True (or "
        "another project_name) to start a new search; the other trials' results are "
        "still in their trial.json files."
    )


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and math.isfinite(value)


class LayerNASTuner(keras_tuner.Tuner):
    """A KerasTuner ``Tuner`` driven by :class:`LayerNASOracle`, in one call.

    Without a ``hypermodel`` (and without an overridden ``run_trial``), each
    trial's model is ``space.materialize(arch)`` compiled with
    ``compile_kwargs`` (see :class:`LayerNASHyperModel`). A trial whose training
    history lacks the objective stops the search at once with a clear error,
    instead of failing every trial in turn.

    Args:
        space: the ``SearchSpace`` to search.
        hypermodel: optional ``HyperModel`` or ``build(hp)`` callable; it must
            declare the searchable layers (see :func:`declare_architecture`).
        objective, target, max_trials, num_buckets, per_bucket, seed,
            max_retries_per_trial, max_consecutive_failed_trials,
            worker_timeout_s: as in :class:`LayerNASOracle`; this tuner tells
            the oracle it lives at each epoch's end.
        compile_kwargs: compile recipe of the default hypermodel.
        fit_kwargs: default ``model.fit`` arguments of the default hypermodel.
        **kwargs: ``keras_tuner.Tuner`` arguments (``directory``,
            ``project_name``, ``overwrite``, ``distribution_strategy``...).

    Raises:
        ValueError: neither ``hypermodel`` nor ``compile_kwargs`` is given for a
            tuner that uses the default ``run_trial``.

    Example:
        >>> import keras, tempfile
        >>> from keras_layernas.surgery import SearchSpace
        >>> def build(v):
        ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(v["units"]),
        ...                              keras.layers.Dense(2, activation="softmax")])
        >>> space = SearchSpace.from_options({"units": [16, 8, 4]}, lambda v: v["units"], build)
        >>> tuner = LayerNASTuner(space, objective="loss", target=(4, 8),
        ...                       compile_kwargs={"loss": "sparse_categorical_crossentropy"},
        ...                       directory=tempfile.mkdtemp(), project_name="doc")
        >>> tuner.oracle.target
        (4.0, 8.0)
    """

    def __init__(
        self,
        space: SearchSpace,
        hypermodel: keras_tuner.HyperModel | None = None,
        objective: str | keras_tuner.Objective | None = None,
        target: tuple[float, float] | None = None,
        max_trials: int | None = None,
        num_buckets: int = 100,
        per_bucket: int = 3,
        seed: int = 0,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        worker_timeout_s: float | None = 3600.0,
        compile_kwargs: Mapping[str, Any] | None = None,
        fit_kwargs: Mapping[str, Any] | None = None,
        **kwargs,
    ):
        oracle = LayerNASOracle(
            space, objective=objective, target=target, max_trials=max_trials,
            num_buckets=num_buckets, per_bucket=per_bucket, seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
            worker_timeout_s=worker_timeout_s,
        )
        if hypermodel is None and compile_kwargs is not None:
            hypermodel = LayerNASHyperModel(space, compile_kwargs, fit_kwargs)
        elif hypermodel is None and type(self).run_trial is LayerNASTuner.run_trial:
            raise ValueError(
                "LayerNASTuner needs a hypermodel, or compile_kwargs to compile the "
                "models it materializes from the space (e.g. compile_kwargs={'optimizer': "
                "'adam', 'loss': 'sparse_categorical_crossentropy', 'metrics': "
                "['accuracy']}). Received: hypermodel=None, compile_kwargs=None."
            )
        super().__init__(oracle, hypermodel, **kwargs)

    def run_trial(self, trial: Trial, *args, **kwargs):
        results = super().run_trial(trial, *args, **kwargs)
        objective = self.oracle.objective
        names = list(getattr(objective, "name_to_direction", [objective.name]))
        for history in results:
            logged = getattr(history, "history", None)
            missing = [n for n in names if logged is not None and n not in logged]
            if missing:
                raise keras_tuner.errors.FatalValueError(
                    f"The objective {missing} is not among the metrics the model "
                    f"logged during fit: {sorted(logged)}. Add it to compile(metrics=...) "
                    "(and pass validation_data for a 'val_' metric) or choose an "
                    "objective from those names."
                )
        return results

    def on_epoch_end(self, trial: Trial, model, epoch: int, logs=None) -> None:
        """Tell the oracle (``get_trial``) that this worker lives: see ``worker_timeout_s``."""
        super().on_epoch_end(trial, model, epoch, logs=logs)
        self.oracle.get_trial(trial.trial_id)

    def reload(self) -> None:
        """Reload like KerasTuner; a tuner file that cannot be read back fails naming it.

        Raises:
            RuntimeError: a state file cannot be read back.
        """
        if not self._is_worker():
            self.oracle.reload()
        path = self._get_tuner_fname()
        try:
            self.set_state(keras_tuner_utils.load_json(path))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            raise _unreadable(path, error) from error

    def save(self) -> None:
        """Save like KerasTuner, writing the tuner file atomically too."""
        if not self._is_worker():
            self.oracle.save()
        write_json_atomically(self._get_tuner_fname(), self.get_state())
