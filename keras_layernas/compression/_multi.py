"""Many budgets from one search: ``compress(model, target_madds=[300e6, 200e6, 100e6])``.

Phones come in tiers, and each tier wants its own model of the same network.
Separate searches would repeat most of their work: every search walks the
same layers from the same base model and differs only in which candidates it
prunes. So one LayerNAS search runs with the union of the tiers' ranges as
its target (:meth:`Target.union <keras_layernas.search.Target.union>`).
LayerNAS prunes only candidates whose reachable costs miss its target, here
every tier's range, so every candidate a single tier's search would keep is
kept here too; candidates whose costs all fall between two tiers are pruned
as a single search prunes them. (Its buckets may spend expansions on other
tiers' candidates: ``benchmarks/multi_target.py`` measures what that costs.)

Then each tier chooses on its own, with the single-target steps of
:class:`~keras_layernas.compression._compress.CompressionSearch` aimed at its
range: the best told candidate inside it competes with greedy completions to
it, and the winner is rebuilt (with data: keeps its trial's trained weights
and is fine-tuned ``finetune_epochs`` on its own). A tier whose budget is at
or above the base model's cost gets an unchanged copy, as a single target
does.

The functions here receive the ``CompressionSearch`` (``run()`` hands itself
over) and call its steps; this module does not import ``_compress``, which
imports it.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import tempfile

from keras_layernas.compression._drivers import load_trained
from keras_layernas.compression._result import CompressionResult
from keras_layernas.search import LayerNAS, Target
from keras_layernas.surgery.importance import RetainedImportance
from keras_layernas.surgery.space import SearchSpace


def aimed_at(search: CompressionSearch, target: Target) -> CompressionSearch:
    """``search`` with one target range: what a single-target compression to it would read."""
    aimed = copy.copy(search)
    aimed.config = dataclasses.replace(search.config, target=target, targets=None)
    return aimed


def narrowed(engine: LayerNAS, target: Target) -> LayerNAS:
    """The finished search seen from one tier: ``best()`` and ``in_target()`` answer for ``target``.

    A shallow copy that shares the history, tables and Pareto front; only its
    target differs, so nothing may be asked of it.
    """
    view = copy.copy(engine)
    view.target = target
    return view


def run_targets(search: CompressionSearch, space: SearchSpace,
                started: float) -> list[CompressionResult]:
    """One search over the union of ``search.config.targets``, a result per target.

    Args:
        search: the configured compression, with several targets.
        space: the space it searches (data-free: without larger kernels).
        started: ``time.perf_counter()`` when ``run()`` began.

    Returns:
        One :class:`CompressionResult` per target, in the order given, each
        with its own ``target``, model in that range and ``completed`` flag;
        ``trials`` is the one search's count for all of them.
    """
    config = search.config
    base_cost = space.cost(space.base_arch)
    tiers = [aimed_at(search, target) for target in config.targets]
    searched = [tier for tier in tiers if tier.config.target.high < base_cost]
    results = {index: tier._unchanged(base_cost, started, None)
               for index, tier in enumerate(tiers) if tier not in searched}
    if searched:
        for tier in searched:  # every budget below the smallest model fails before any work
            tier._check_target(space)
        union = Target.union([t.config.target for t in searched], config.target.unit,
                             config.target.name)
        for tier, result in zip(searched, _search_once(aimed_at(search, union), searched, space,
                                                       started)):
            results[tiers.index(tier)] = result
    return [results[index] for index in range(len(tiers))]


def _search_once(whole: CompressionSearch, tiers: list[CompressionSearch], space: SearchSpace,
                 started: float) -> list[CompressionResult]:
    """Search ``whole``'s (the union's) range once, then choose and finish each tier."""
    config = whole.config
    trainer = None if whole.data is None else whole._trainer()
    space = whole._started(space)
    project_dir = None if config.directory is None else os.path.join(config.directory, config.project_name)
    scorer = RetainedImportance(whole.space, whole.model, config.importance_weighting)
    direction, base_score = "max", 1.0  # the data-free score: retained importance
    if trainer is not None:
        base_score = trainer.score(whole.space.materialize(whole.space.base_arch))
        direction = config.objective.direction
    trained = {}  # completions trained with data, by architecture; any tier may choose one
    chosen = []
    with tempfile.TemporaryDirectory(prefix="layernas-") as scratch:
        work_dir = config.directory or scratch
        engine = whole._search(space, scorer, trainer, project_dir, work_dir)
        for tier in tiers:
            tier._trained = trained
            view = narrowed(engine, tier.config.target)
            arch, completed, completion_trials = tier._choose(space, view, scorer, trainer, direction)
            arch = space.check_arch(arch)  # a resumed state holds plain tuples, not KernelWidths
            # A fresh model per tier: two tiers choosing one architecture are fine-tuned apart.
            slim = space.materialize(arch)
            if arch in trained:
                slim.set_weights(trained[arch].get_weights())
            elif trainer is not None and not completed:
                load_trained(slim, os.path.join(work_dir, config.project_name), space, arch)
            chosen.append((tier, view, arch, slim, completed, completion_trials))
    results = []
    for number, (tier, view, arch, slim, completed, completion_trials) in enumerate(chosen, 1):
        score = scorer(arch) if trainer is None else trainer.fine_tune(slim, config.finetune_epochs)
        result = tier._result(space, view, arch, slim, completed, direction, started, score=score,
                              base_score=base_score, completion_trials=completion_trials,
                              latency=None)
        if config.verbose:
            low, high = tier.config.target
            print(f"\nTarget {number} of {len(tiers)} searched: {low / 1e6:.4g}-{high / 1e6:.4g} M "
                  f"MAdds ({tier.config.target.name})")
            print(result.summary())
        results.append(result)
    return results
