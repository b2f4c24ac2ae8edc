"""CompressionSearch's settings, checked once into one frozen object.

``CompressionSearch`` takes some thirty arguments; every check of them lives
here, so that the steps of the search read settings that are known good and
a bad argument fails at construction, naming the argument and the fix.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
from typing import Any, Callable, Mapping

import keras
import keras_tuner

from keras_layernas.compression._distributed import role
from keras_layernas.compression._training import as_objective
from keras_layernas.search import Target
from keras_layernas.surgery.importance import WEIGHTINGS

COSTS = ("madds", "latency")
STARTS = ("base", "uniform", "greedy")
# With data and one budget, the default split of the training: TRIALS_WITH_DATA trials (one
# epoch each by default), then the winner fine-tuned as long, FINETUNE_EPOCHS_WITH_DATA epochs.
# Measured on the compression-quality benchmark (docs/compress.md, "What data buys"): the
# data-free pick ranked candidates about as well as the trial score, and 25 distilled epochs
# of the data-free architecture beat 24 trials plus a 1-epoch fine-tune by 7.9 points at 50%.
TRIALS_WITH_DATA = 12
FINETUNE_EPOCHS_WITH_DATA = 12


@dataclasses.dataclass(frozen=True)
class CompressionConfig:
    """The checked settings of one compression (see :class:`CompressionSearch` for each).

    ``target`` is the :class:`~keras_layernas.search.Target` range
    ``[(1 - tolerance) * budget, budget]`` in the unit of ``cost``. With
    several MAdds budgets (``target_madds=[300e6, 200e6]``) ``targets`` holds
    one such range per budget, in the order given, and ``target`` is their
    :meth:`~keras_layernas.search.Target.union`; ``targets`` is None for one
    budget.
    """

    cost: str
    target: Target
    targets: tuple[Target, ...] | None
    calibration_archs: int
    latency_runs: int
    max_trials: int | None
    epochs_per_trial: int
    finetune_epochs: int
    num_buckets: int
    per_bucket: int
    directory: str | None
    overwrite: bool
    input_shape: tuple[int, ...] | None
    seed: int
    verbose: int
    objective: keras_tuner.Objective
    compile_kwargs: Mapping[str, Any] | None
    batch_size: int
    preprocess: Callable | None
    project_name: str
    importance_weighting: str
    start: str
    distill: bool
    callbacks: tuple[keras.callbacks.Callback, ...]

    @property
    def target_name(self) -> str:
        """The argument the budget came from, for messages."""
        return "target_madds" if self.cost == "madds" else "target_latency_ms"

    @property
    def cost_unit(self) -> tuple[str, float]:
        """``(unit, scale)`` the progress bar shows costs in."""
        return ("MMAdds", 1e6) if self.cost == "madds" else ("ms", 1.0)

    @classmethod
    def checked(cls, *, target_madds: Any, target_latency_ms: Any, cost: Any, tolerance: Any,
                with_data: bool, with_validation_data: bool, directory: Any,
                objective: Any, base_madds: Callable[[], float], callbacks: Any,
                **settings: Any) -> "CompressionConfig":
        """Check every argument once and return the settings.

        ``base_madds`` gives the base model's MAdds, read only when
        ``target_madds`` is a percentage of them (``"50%"``).

        Raises:
            ValueError: a bad argument, named in the message with the fix.
        """
        budgets = madds_budgets(target_madds, target_latency_ms, base_madds)
        if budgets is not None:
            target_madds = max(budgets)
        fraction = madds_fraction(target_madds)
        if fraction is not None:
            target_madds = fraction * base_madds()
        cost, budget = _resolve_cost(target_madds, target_latency_ms, cost)
        _check_number("tolerance", tolerance, 1e-9, 1 - 1e-9)
        _check_number("calibration_archs", settings["calibration_archs"], 3, math.inf, integer=True)
        _check_number("latency_runs", settings["latency_runs"], 1, math.inf, integer=True)
        _check_number("epochs_per_trial", settings["epochs_per_trial"], 0, math.inf, integer=True)
        if settings["max_trials"] is None and with_data and budgets is None:
            settings["max_trials"] = TRIALS_WITH_DATA
        if settings["finetune_epochs"] is None:
            settings["finetune_epochs"] = FINETUNE_EPOCHS_WITH_DATA if with_data else 0
        _check_number("finetune_epochs", settings["finetune_epochs"], 0, math.inf, integer=True)
        if settings["distill"] is None:  # the base model teaches whenever there is training
            settings["distill"] = with_data
        if not isinstance(settings["distill"], bool):
            raise ValueError(f"distill must be True, False or None. Received: distill={settings['distill']!r}.")
        if isinstance(settings["verbose"], bool):  # verbose=True is the usual Python spelling of 1
            settings["verbose"] = int(settings["verbose"])
        _check_number("verbose", settings["verbose"], 0, 2, integer=True)
        _check_number("batch_size", settings["batch_size"], 1, math.inf, integer=True)
        if settings["max_trials"] is not None:
            _check_number("max_trials", settings["max_trials"], 1, math.inf, integer=True)
        if not with_data and with_validation_data:
            raise ValueError(
                "validation_data is only used to score fine-tuned candidates, which needs "
                "training data too. Pass data=... as well, or drop validation_data for the "
                "data-free search. Received: data=None."
            )
        if with_data and directory is None and role() != "solo":
            raise ValueError(
                "A distributed search (KERASTUNER_ORACLE_IP is set) needs `directory`: a folder "
                "the chief and every worker share, where the chief keeps the search state and "
                "publishes the result the workers return. Pass directory=... (the same path "
                f"on every process). Received: directory=None, KERASTUNER_TUNER_ID="
                f"{os.environ.get('KERASTUNER_TUNER_ID')!r}."
            )
        if budgets is not None and with_data and role() != "solo":
            raise ValueError(
                "A distributed search serves one target: the chief publishes one result for the "
                "workers to return. Run one distributed search per budget, or the several budgets "
                f"in one process (without KERASTUNER_* variables). Received: target_madds="
                f"{list(budgets)!r}, KERASTUNER_TUNER_ID={os.environ.get('KERASTUNER_TUNER_ID')!r}."
            )
        weighting = settings["importance_weighting"]
        if weighting not in WEIGHTINGS:
            raise ValueError(f"importance_weighting must be one of {WEIGHTINGS}. "
                             f"Received: importance_weighting={weighting!r}.")
        if settings["start"] is None:  # with data, every trial trains a model of the target's cost
            settings["start"] = "greedy" if with_data and budgets is None else "base"
        if settings["start"] not in STARTS:
            raise ValueError(f"start must be one of {STARTS} or None. Received: start={settings['start']!r}.")
        if settings["start"] == "greedy" and not with_data:
            raise ValueError(
                "start='greedy' fills each trial's unsearched layers so that the model a trial "
                "trains lies in the target; without data there is no trial training, and the "
                "complete data-free search reaches the target anyway. Pass data=..., or "
                "start='base' (the default without data)."
            )
        if settings["start"] == "greedy" and budgets is not None:
            raise ValueError(
                "start='greedy' cuts each trial's model into one target range, and several "
                "budgets have several: pass start='base' (their default) or 'uniform', or "
                f"compress once per budget. Received: target_madds={list(budgets)!r}."
            )
        name = "target_madds" if cost == "madds" else "target_latency_ms"
        unit = "MAdds" if cost == "madds" else "ms (predicted latency)"
        target, targets = Target((1 - tolerance) * budget, budget, unit, name), None
        if budgets is not None:
            targets = tuple(Target((1 - tolerance) * b, b, unit, f"{name}[{i}]")
                            for i, b in enumerate(budgets))
            target = Target.union(targets, unit, name)
        return cls(
            cost=cost,
            target=target,
            targets=targets,
            directory=None if directory is None else os.fspath(directory),
            objective=as_objective(objective),
            callbacks=_checked_callbacks(callbacks),
            **settings,
        )


def madds_budgets(target_madds: Any, target_latency_ms: Any,
                  base_madds: Callable[[], float]) -> list[float] | None:
    """The budgets of a list ``target_madds`` in MAdds, percentages resolved; None for one budget.

    Raises:
        ValueError: an empty list, a budget that is neither a number nor a
            percentage, the same budget twice, or a list mixed with
            ``target_latency_ms`` (several budgets are MAdds budgets only).
    """
    if isinstance(target_latency_ms, (list, tuple)):
        raise ValueError(
            "Several budgets in one search are MAdds budgets only: pass target_madds=[...] "
            "(numbers or percentages such as '50%'), or one target_latency_ms per call. "
            f"Received: target_latency_ms={target_latency_ms!r}."
        )
    if not isinstance(target_madds, (list, tuple)):
        return None
    if target_latency_ms is not None:
        raise ValueError(
            "Several MAdds budgets do not mix with target_latency_ms: give target_madds=[...] "
            "alone, or one target_latency_ms per call. Received: "
            f"target_madds={list(target_madds)!r}, target_latency_ms={target_latency_ms!r}."
        )
    if not target_madds:
        raise ValueError(
            "target_madds=[] holds no budget. Pass one or more, e.g. target_madds=[300e6, 200e6] "
            "or ['60%', '30%'] (one model per budget), or a single number for one model."
        )
    budgets, base = [], None
    for index, budget in enumerate(target_madds):
        fraction = madds_fraction(budget, name=f"target_madds[{index}]")
        if fraction is not None:
            base = base_madds() if base is None else base  # counted once, not per percentage
            budget = fraction * base
        else:
            _check_number(f"target_madds[{index}]", budget, 1, math.inf)
        budgets.append(float(budget))
    for index, budget in enumerate(budgets):
        first = budgets.index(budget)
        if first != index:
            raise ValueError(
                f"target_madds[{first}] and target_madds[{index}] are the same budget, "
                f"{budget:.6g} MAdds: each budget gets one model, so list it once. Received: "
                f"target_madds={list(target_madds)!r}."
            )
    return budgets


_PERCENT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*")


def madds_fraction(target_madds: Any, name: str = "target_madds") -> float | None:
    """The share of the base model's MAdds a ``"50%"`` budget asks for; None for a number.

    ``name`` is the argument the budget came from, for the message.

    Raises:
        ValueError: a string that is not a percentage strictly between 0% and 100%.
    """
    if not isinstance(target_madds, str):
        return None
    match = _PERCENT.fullmatch(target_madds)
    percent = float(match.group(1)) if match else None
    if percent is None or not 0 < percent < 100:
        raise ValueError(
            "target_madds as a string is a percentage of the base model's MAdds, above 0% and "
            "below 100% (a smaller model), e.g. target_madds='50%'; or pass a number of MAdds "
            f"such as 150e6. Received: {name}={target_madds!r}."
        )
    return percent / 100


def _checked_callbacks(callbacks: Any) -> tuple[keras.callbacks.Callback, ...]:
    """``callbacks`` as a tuple of Keras callbacks (None: none)."""
    if callbacks is None:
        return ()
    if isinstance(callbacks, keras.callbacks.Callback):
        callbacks = [callbacks]
    if not isinstance(callbacks, (list, tuple)) or not all(
            isinstance(c, keras.callbacks.Callback) for c in callbacks):
        raise ValueError(
            "callbacks must be a list of keras.callbacks.Callback instances, e.g. "
            f"callbacks=[keras.callbacks.CSVLogger('fit.csv')]. Received: callbacks={callbacks!r}."
        )
    return tuple(callbacks)


def _resolve_cost(target_madds: Any, target_latency_ms: Any, cost: Any) -> tuple[str, float]:
    """``(cost, target)`` from the one target given, checked against ``cost``.

    Raises:
        ValueError: no target, two targets, an unknown cost, or a cost that
            does not match the target.
    """
    if cost not in (None, *COSTS):
        raise ValueError(f"`cost` must be one of {COSTS}. Received: cost={cost!r}.")
    if (target_madds is None) == (target_latency_ms is None):
        raise ValueError(
            "Give exactly one target: target_madds=... (MAdds budget) or "
            "target_latency_ms=... (TFLite latency budget, with cost='latency'). "
            f"Received: target_madds={target_madds!r}, target_latency_ms={target_latency_ms!r}."
        )
    given = "madds" if target_madds is not None else "latency"
    if cost is not None and cost != given:
        wanted = "target_madds" if cost == "madds" else "target_latency_ms"
        raise ValueError(
            f"cost={cost!r} searches under a {wanted} budget, but "
            f"{'target_madds' if given == 'madds' else 'target_latency_ms'} was given. "
            f"Pass {wanted}=... instead, or cost={given!r}."
        )
    if given == "madds":
        _check_number("target_madds", target_madds, 1, math.inf)
        return given, float(target_madds)
    _check_number("target_latency_ms", target_latency_ms, 1e-6, math.inf)
    return given, float(target_latency_ms)


def _check_number(name: str, value: Any, low: float, high: float, integer: bool = False) -> None:
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        expected = "an integer" if integer else "a number"
        raise ValueError(f"`{name}` must be {expected} in [{low:g}, {high:g}]. Received: {name}={value!r}.")
