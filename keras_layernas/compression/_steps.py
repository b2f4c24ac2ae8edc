"""Deep cuts in steps: several compressions, each of the previous winner (NetAdapt-style).

One search from the base to 30% of its MAdds asks every trial to recover from a large cut
in one epoch. In steps, each step's search starts from the previous step's trained winner,
which is also its teacher, and each cut is small (at least ``STEP_RATIO`` of the previous
cost kept). The training with data (trials, then the winner's epochs) is split evenly over
the steps, so a cut in steps trains as long as one search. Measured on the
compression-quality benchmark at 30%: 58.30 +/- 0.18% in 4 steps against 55.56 +/- 0.20% in
one (docs/compress.md, "Deep cuts in steps").

With ``directory``, every finished step publishes its winner in its project folder (the
weights, then ``report.json``, as a distributed chief does), so a killed run resumes at the
first unfinished step and does not train a finished one again.
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Any

import keras

from keras_layernas.compression._compress import CompressionSearch
from keras_layernas.compression._config import (
    FINETUNE_EPOCHS_WITH_DATA,
    TRIALS_WITH_DATA,
    _check_number,
    madds_fraction,
)
from keras_layernas.compression._distributed import REPORT_FILE, publish_result, read_result, role
from keras_layernas.compression._result import CompressionResult
from keras_layernas.profiling import count_madds

# steps="auto": the fewest equal steps that each keep at least this share of the previous cost
STEP_RATIO = 0.7


def step_budgets(base_madds: float, target_madds: float, steps: int | str = "auto") -> list[float]:
    """The MAdds budget of every step, equal ratios from ``base_madds`` down to ``target_madds``.

    ``steps="auto"`` takes the fewest steps that each keep at least ``STEP_RATIO`` of the
    previous cost (30% of the base: 74%, 55%, 41%, 30%; 70% and above: one step).

    >>> [round(b) for b in step_budgets(100.0, 30.0)]
    [74, 55, 41, 30]
    >>> step_budgets(100.0, 50.0, steps=1)
    [50.0]
    """
    fraction = target_madds / base_madds
    if steps == "auto":
        steps = max(1, math.ceil(math.log(fraction) / math.log(STEP_RATIO) - 1e-9)) if fraction < 1 else 1
    return [base_madds * fraction ** ((step + 1) / steps) for step in range(steps - 1)] + [target_madds]


def _checked_steps(steps: Any, target_madds: Any, data: Any, kwargs: dict) -> None:
    """Refuse what a cut in steps cannot do, naming the fix."""
    if steps != "auto":
        _check_number("steps", steps, 1, math.inf, integer=True)
    if data is None:
        raise ValueError(
            "steps > 1 needs data=...: each step trains the previous winner, which then teaches "
            "the next step. Without data a cut in steps keeps the same channels as one cut; "
            f"pass steps=1 (the default). Received: steps={steps!r}, data=None.")
    one_budget = isinstance(target_madds, str) or (
        isinstance(target_madds, numbers.Real) and not isinstance(target_madds, bool) and target_madds > 0)
    if not one_budget or kwargs.get("target_latency_ms") is not None or kwargs.get("cost") not in (None, "madds"):
        raise ValueError(
            "steps cut toward one MAdds budget: pass one target_madds (a positive number or '30%'), or "
            f"steps=1. Received: target_madds={target_madds!r}, "
            f"target_latency_ms={kwargs.get('target_latency_ms')!r}.")
    if kwargs.get("space") is not None:
        raise ValueError(
            "space=... is built from the base model, and every step after the first searches "
            "the previous step's slim model: pass exclude=[layer names] to keep layers fixed "
            "in every step, or steps=1.")
    if role() != "solo":
        raise ValueError(
            "A cut in steps runs in one process (each step's base is the previous step's "
            "trained winner); unset the KERASTUNER_* variables, or pass steps=1.")


def compress_in_steps(
    model: keras.Model,
    target_madds: float | str,
    *,
    data: Any,
    steps: int | str = "auto",
    max_trials: int | None = None,
    finetune_epochs: int | None = None,
    directory: str | os.PathLike | None = None,
    project_name: str = "compress",
    overwrite: bool = False,
    input_shape: tuple[int, ...] | None = None,
    tolerance: float = 0.05,
    verbose: int = 1,
    **kwargs: Any,
) -> list[CompressionResult]:
    """Reach ``target_madds`` in ``steps`` compressions with data, each of the previous winner.

    Every step is a :class:`CompressionSearch` of the previous step's returned model (the
    first of ``model``) with ``max_trials // steps`` trials and ``finetune_epochs // steps``
    epochs of its winner (at least 1 each; None: compress's defaults with data, 12 and 12),
    so the whole cut trains about as long as one search. A step before the last may land
    anywhere above the next step's budget (its ``tolerance`` widened to reach it: the options
    of a slimmed model are coarser, and a 5% band of an intermediate cost may hold none); the
    last step lies within ``tolerance`` of ``target_madds``. Other arguments are those of
    :class:`CompressionSearch` and go to every step; step ``i`` keeps its state in
    ``directory/<project_name>_step<i>``.

    Returns:
        One :class:`CompressionResult` per step; the last one's ``model`` is the answer,
        within ``[(1 - tolerance) * target_madds, target_madds]``.

    Raises:
        ValueError: no data, several or latency budgets, ``space=``, a distributed run,
            ``steps`` not a positive integer or ``"auto"``, or a bad argument of a step's
            search.
    """
    _checked_steps(steps, target_madds, data, kwargs)
    base_madds = count_madds(model, input_shape=input_shape)
    fraction = madds_fraction(target_madds)
    budgets = step_budgets(base_madds, base_madds * fraction if fraction is not None else target_madds, steps)
    trials = max(1, (TRIALS_WITH_DATA if max_trials is None else max_trials) // len(budgets))
    epochs = max(1, (FINETUNE_EPOCHS_WITH_DATA if finetune_epochs is None else finetune_epochs) // len(budgets))
    results: list[CompressionResult] = []
    for index, budget in enumerate(budgets):
        name = f"{project_name}_step{index + 1}"
        project_dir = None if directory is None else os.path.join(os.fspath(directory), name)
        if verbose:
            print(f"Step {index + 1}/{len(budgets)}: to {budget / 1e6:.4g} MMAdds "
                  f"({budget / base_madds:.0%} of the base).", flush=True)
        band = tolerance if index == len(budgets) - 1 else max(tolerance, 1 - budgets[index + 1] / budget)
        search = CompressionSearch(
            model, budget, data=data, max_trials=trials, finetune_epochs=epochs, tolerance=band,
            directory=directory, project_name=name, overwrite=overwrite,
            input_shape=input_shape, verbose=verbose, **kwargs)
        if project_dir is not None and not overwrite and os.path.exists(os.path.join(project_dir, REPORT_FILE)):
            result = read_result(project_dir, search.space)  # the space the step searched
            if not math.isclose(result.target[1], budget, rel_tol=1e-6):
                raise ValueError(
                    f"{project_dir} holds step {index + 1} of another cut (to "
                    f"{result.target[1] / 1e6:.4g} MMAdds, this one is to {budget / 1e6:.4g}): "
                    "pass another project_name or directory, or overwrite=True to start over.")
            if verbose:
                print(f"Step {index + 1} finished earlier: {result.madds / 1e6:.4g} MMAdds, "
                      f"{result.score_name} {result.score:.4g}.", flush=True)
        else:
            result = search.run()
            if project_dir is not None:
                publish_result(project_dir, result)
        results.append(result)
        model = result.model
    return results
