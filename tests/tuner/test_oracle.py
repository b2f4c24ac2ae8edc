"""LayerNASOracle driven trial by trial, as a KerasTuner worker would, without training."""
from __future__ import annotations

import itertools
import json
import math
import warnings

import keras_tuner
import pytest
from keras_tuner.engine.trial import TrialStatus

from keras_layernas.search import LayerNAS, Target
from keras_layernas.surgery import SearchSpace
from keras_layernas.surgery.space import SearchLayer
from keras_layernas.tuner import LayerNASOracle, TrialBudgetWarning
from keras_layernas.tuner._oracle import write_json_atomically

WIDTHS = {"l1": [32, 24, 16, 8], "l2": [32, 24, 16, 8], "l3": [32, 24, 16, 8]}
TARGET = (700, 1100)


def cost(v):
    return 3 * v["l1"] + v["l1"] * v["l2"] + v["l2"] * v["l3"]


def space():
    return SearchSpace.from_options(WIDTHS, cost)


def score(arch):
    """Wider is better, with a twist so the order is not trivial."""
    return sum(math.log(w) for w in arch) + 0.1 * (arch[2] == 16)


def make_oracle(tmp_path, **kwargs):
    kwargs = {"objective": keras_tuner.Objective("score", "max"), "target": TARGET,
              "num_buckets": 4, "per_bucket": 2, "seed": 3, "idle_wait_s": 0, **kwargs}
    oracle = LayerNASOracle(kwargs.pop("space", None) or space(), **kwargs)
    oracle._set_project_dir(str(tmp_path), "project")
    oracle.verbose = 0
    return oracle


def finish(oracle, trial, value, status=TrialStatus.COMPLETED, metric="score"):
    """What a tuner does after training: report the metric, then end the trial."""
    if value is not None:
        oracle.update_trial(trial.trial_id, {metric: value})
    trial.status = status
    oracle.end_trial(trial)


def run_sequentially(oracle, score_fn=score, limit=500):
    """One tuner asking and ending trials until the oracle stops it."""
    archs = []
    for _ in range(limit):
        trial = oracle.create_trial("tuner0")
        if trial.status == TrialStatus.STOPPED:
            return archs
        assert trial.status == TrialStatus.RUNNING
        arch = oracle.architecture(trial)
        archs.append(arch)
        finish(oracle, trial, score_fn(arch))
    raise AssertionError(f"search did not stop within {limit} trials")


def completion_cost_range(arch, layer):
    """Min and max cost over every completion of layers after ``layer`` (brute force)."""
    names = list(WIDTHS)
    tails = itertools.product(*(WIDTHS[n] for n in names[layer + 1:]))
    costs = [cost(dict(zip(names, tuple(arch[: layer + 1]) + tail))) for tail in tails]
    return min(costs), max(costs)


def test_each_searchable_layer_is_one_choice_of_its_encoded_options(tmp_path):
    layers = [SearchLayer("block1", "kernel_expand", ((5, 96), (3, 96), (3, 48))),
              SearchLayer("head", "width", (64, 32))]
    compound = SearchSpace(layers, lambda arch: arch[0][0] * arch[0][1] + arch[1])
    oracle = make_oracle(tmp_path, space=compound, target=(100, 300))
    hp = oracle.get_space()
    choices = {p.name: (p.values, p.default) for p in hp.space}
    assert choices == {"block1": (["(5, 96)", "(3, 96)", "(3, 48)"], "(5, 96)"),
                       "head": ([64, 32], 64)}
    trial = oracle.create_trial("tuner0")
    assert set(trial.hyperparameters.values) == {"block1", "head"}
    assert oracle.architecture(trial) in [(b, h) for b in layers[0].options for h in (64, 32)]


def test_oracle_proposes_exactly_what_layernas_alone_proposes(tmp_path):
    via_oracle = run_sequentially(make_oracle(tmp_path))
    alone = LayerNAS(space().options, space().cost, target=TARGET, num_buckets=4,
                     per_bucket=2, seed=3)
    direct = []
    while (candidate := alone.ask()) is not None:
        direct.append(candidate.arch)
        alone.tell(candidate, score(candidate.arch))
    assert via_oracle == direct
    assert len(set(via_oracle)) == len(via_oracle)  # never an architecture twice


def test_every_handed_out_architecture_can_still_reach_the_target(tmp_path):
    oracle = make_oracle(tmp_path)
    run_sequentially(oracle)
    low, high = TARGET
    for record in oracle.search.history:
        cheapest, dearest = completion_cost_range(record.arch, record.layer)
        assert cheapest <= high and dearest >= low, record
    last_layer = [r for r in oracle.search.history if r.layer == len(WIDTHS) - 1]
    assert last_layer and all(low <= r.cost <= high for r in last_layer)


def test_oracle_answers_idle_while_a_layer_waits_and_stopped_when_done(tmp_path):
    oracle = make_oracle(tmp_path)
    running, statuses, idle_with_pending = {}, [], 0
    for step in range(2000):
        tuner_id = f"tuner{step % 3}"
        if tuner_id in running:  # this worker finishes its trial first
            trial = running.pop(tuner_id)
            finish(oracle, trial, score(oracle.architecture(trial)))
            continue
        trial = oracle.create_trial(tuner_id)
        statuses.append(trial.status)
        if trial.status == TrialStatus.RUNNING:
            running[tuner_id] = trial
        elif trial.status == TrialStatus.IDLE:
            idle_with_pending += bool(oracle.search.pending)
        elif trial.status == TrialStatus.STOPPED and not running:
            break
    assert statuses[-1] == TrialStatus.STOPPED and oracle.search.finished
    assert TrialStatus.IDLE in statuses and idle_with_pending == statuses.count(TrialStatus.IDLE)
    assert oracle.ongoing_trials == {}


def test_failed_and_nan_trials_never_enter_a_bucket_and_the_search_goes_on(tmp_path):
    oracle = make_oracle(tmp_path, max_consecutive_failed_trials=100)
    bad = {}
    for index in range(500):
        trial = oracle.create_trial("tuner0")
        if trial.status == TrialStatus.STOPPED:
            break
        arch = oracle.architecture(trial)
        if index % 4 == 1:
            finish(oracle, trial, None, status=TrialStatus.FAILED)
            bad[trial.trial_id] = arch
        elif index % 4 == 2:
            finish(oracle, trial, float("nan"))  # KerasTuner: INVALID, then FAILED
            bad[trial.trial_id] = arch
        else:
            finish(oracle, trial, score(arch))
    assert oracle.search.finished and bad
    assert all(oracle.trials[t].status == TrialStatus.FAILED for t in bad)
    kept = [e for table in oracle.bucket_table() for entries in table.values() for e in entries]
    assert kept and not {e["trial_id"] for e in kept} & set(bad)
    told = {r.arch: r.score for r in oracle.search.history}
    assert all(told[arch] is None for arch in bad.values())


def test_invalid_trial_is_retried_before_layernas_hears_of_it(tmp_path):
    oracle = make_oracle(tmp_path, max_retries_per_trial=1)
    first = oracle.create_trial("tuner0")
    finish(oracle, first, float("nan"))
    assert oracle.trials[first.trial_id].status == TrialStatus.INVALID
    assert oracle.search.num_told == 0
    retry = oracle.create_trial("tuner0")
    assert retry.trial_id == first.trial_id
    finish(oracle, retry, 1.5)
    assert [(r.arch, r.score) for r in oracle.search.history] == [(oracle.architecture(retry), 1.5)]


def test_best_trials_are_in_target_only_and_minimised_objective_is_respected(tmp_path):
    oracle = make_oracle(tmp_path, objective=keras_tuner.Objective("loss", "min"))
    for _ in range(500):
        trial = oracle.create_trial("tuner0")
        if trial.status == TrialStatus.STOPPED:
            break
        finish(oracle, trial, 10 - score(oracle.architecture(trial)), metric="loss")
    best = oracle.get_best_trials(1000)
    costs = [oracle.space.cost(oracle.architecture(t)) for t in best]
    assert best and all(TARGET[0] <= c <= TARGET[1] for c in costs)
    assert [t.score for t in best] == sorted(t.score for t in best)  # lowest loss first
    completed = [t for t in oracle.trials.values() if t.status == TrialStatus.COMPLETED]
    assert min(t.score for t in completed) < best[0].score  # a wider arch did better
    layernas_arch, layernas_score = oracle.search.best()
    assert oracle.architecture(best[0]) == layernas_arch and best[0].score == -layernas_score
    front = oracle.pareto_front()
    assert front and all(e["score"] == oracle.trials[e["trial_id"]].score for e in front)


def test_tied_best_trials_go_to_the_earlier_trial_whatever_the_listing_order(tmp_path):
    oracle = make_oracle(tmp_path)
    run_sequentially(oracle, score_fn=lambda arch: 1.0)  # every trial ties
    first = oracle.get_best_trials(1)[0]
    # a reload may list trial files in any order: reverse the dict to mimic it
    oracle.trials = dict(reversed(list(oracle.trials.items())))
    assert oracle.get_best_trials(1)[0].trial_id == first.trial_id
    in_target = oracle.get_best_trials(1000)
    assert [t.trial_id for t in in_target] == sorted(
        (t.trial_id for t in in_target), key=lambda i: (len(i), i))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"target": (1, 50)}, ValueError, "outside the reachable range"),
        ({"target": None}, ValueError, "target"),
        ({"target": (900, 800)}, ValueError, "low <= high"),
        ({"num_buckets": 0}, ValueError, "num_buckets"),
        ({"space": {"l1": [8, 4]}}, TypeError, "SearchSpace"),
        ({"idle_wait_s": -1}, ValueError, "idle_wait_s"),
    ],
)
def test_bad_arguments_fail_at_construction_naming_what_was_received(
        tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match) as raised:
        make_oracle(tmp_path, **kwargs)
    assert "Received" in str(raised.value)


def test_empty_space_fails_before_any_oracle_is_built():
    with pytest.raises(ValueError, match="empty"):
        SearchSpace.from_options({}, cost)


def test_options_that_cannot_be_one_choice_fail_naming_the_layer(tmp_path):
    mixed = SearchSpace([SearchLayer("head", "width", (64, "half"))],
                        lambda arch: 64 if arch[0] == 64 else 32)
    with pytest.raises(ValueError, match="'head'.*one type"):
        make_oracle(tmp_path, space=mixed, target=(30, 70))


def test_resuming_with_another_target_is_refused(tmp_path):
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    finish(oracle, trial, 1.0)
    other = make_oracle(tmp_path, target=(600, 1100))
    with pytest.raises(ValueError, match="different space or LayerNAS settings"):
        other.reload()


def test_state_survives_reload_and_the_search_continues_identically(tmp_path):
    uninterrupted = run_sequentially(make_oracle(tmp_path / "a"))
    first = make_oracle(tmp_path / "b")
    archs = []
    for _ in range(7):
        trial = first.create_trial("tuner0")
        archs.append(first.architecture(trial))
        finish(first, trial, score(archs[-1]))
    second = make_oracle(tmp_path / "b")
    second.reload()
    assert archs + run_sequentially(second) == uninterrupted


def test_a_resume_with_a_larger_max_trials_runs_the_extra_trials_of_the_longer_search(tmp_path):
    longer = run_sequentially(make_oracle(tmp_path / "a", max_trials=9))
    first = run_sequentially(make_oracle(tmp_path / "b", max_trials=5))
    assert len(first) == 5
    resumed = make_oracle(tmp_path / "b", max_trials=9)
    resumed.reload()
    assert first + run_sequentially(resumed) == longer
    assert len(longer) == 9


def test_a_union_target_survives_reload_and_another_union_of_the_same_span_is_refused(tmp_path):
    tiers = Target.union([(700, 800), (1000, 1100)])
    uninterrupted = run_sequentially(make_oracle(tmp_path / "a", target=tiers))
    spanning = run_sequentially(make_oracle(tmp_path / "span", target=TARGET))
    assert len(uninterrupted) < len(spanning)  # nothing is tried between the two ranges
    first = make_oracle(tmp_path / "b", target=tiers)
    archs = []
    for _ in range(7):
        trial = first.create_trial("tuner0")
        archs.append(first.architecture(trial))
        finish(first, trial, score(archs[-1]))
    second = make_oracle(tmp_path / "b", target=Target.union([(700, 800), (1000, 1100)]))
    second.reload()
    assert archs + run_sequentially(second) == uninterrupted  # the ranges came back too
    other = make_oracle(tmp_path / "b", target=Target.union([(700, 750), (1050, 1100)]))
    with pytest.raises(ValueError, match="different space or LayerNAS settings"):
        other.reload()


def test_state_files_are_replaced_whole_or_not_at_all(tmp_path):
    path = tmp_path / "oracle.json"
    write_json_atomically(str(path), {"trials": 1})
    with pytest.raises(TypeError):
        write_json_atomically(str(path), {"trials": object()})
    assert json.loads(path.read_text()) == {"trials": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["oracle.json"]


@pytest.mark.parametrize("reported, status, told", [
    (2.5, TrialStatus.COMPLETED, 2.5),
    (float("nan"), TrialStatus.FAILED, None),
    (float("inf"), TrialStatus.FAILED, None),
])
def test_trial_that_reported_before_a_crash_is_ended_on_reload_not_rerun(
        tmp_path, reported, status, told):
    crashed = make_oracle(tmp_path)
    trial = crashed.create_trial("tuner0")
    crashed.update_trial(trial.trial_id, {"score": reported})  # then the process dies
    resumed = make_oracle(tmp_path)
    resumed.reload()
    assert resumed.trials[trial.trial_id].status == status
    assert [(r.arch, r.score) for r in resumed.search.history] == [
        (crashed.architecture(trial), told)]
    assert resumed.create_trial("tuner0").trial_id != trial.trial_id


# -- a max_trials below one pass, and the user's own hyperparameters ---------------------
def _layer_by_layer_space():
    # Layer a's options with b at its base cost 16, 12, 8, 4: the 4th trial is the first in (3, 4).
    return SearchSpace.from_options({"a": [4, 3, 2, 1], "b": [4, 3, 2, 1]},
                                    cost_fn=lambda v: v["a"] * v["b"])


def test_max_trials_before_the_first_in_target_candidate_is_warned_naming_the_trials_needed():
    with pytest.warns(TrialBudgetWarning, match=r"max_trials=3 .*about trial 4\..*at least 4"):
        LayerNASOracle(_layer_by_layer_space(), objective="val_accuracy", target=(3, 4), max_trials=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrialBudgetWarning)
        LayerNASOracle(_layer_by_layer_space(), objective="val_accuracy", target=(3, 4), max_trials=4)


def test_hyperparameters_of_the_users_build_are_pinned_to_their_default(tmp_path):
    class Tuner(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            hp = trial.hyperparameters
            learning_rates.append(hp.Float("lr", 1e-4, 1e-1, sampling="log", default=1e-3))
            return {"score": -hp["a"] * hp["b"]}

    learning_rates = []
    oracle = LayerNASOracle(_layer_by_layer_space(), objective=keras_tuner.Objective("score", "max"),
                            target=(3, 4), max_trials=6)
    Tuner(oracle=oracle, directory=str(tmp_path), project_name="pinned").search(verbose=0)
    assert learning_rates == [1e-3] * 6
