"""LayerNASOracle under faults: non-finite objectives, untrusted workers, dead workers,
corrupt state files. Driven trial by trial, without training, but for one real search."""
from __future__ import annotations

import json
import logging
import math

import keras
import keras_tuner
import numpy as np
import pytest
from keras_tuner.engine.trial import Trial, TrialStatus

from keras_layernas.surgery import SearchSpace
from keras_layernas.tuner import LayerNASOracle, LayerNASTuner, _oracle
from tests.tuner.test_oracle import TARGET, finish, make_oracle, run_sequentially, score


def received(trial: Trial) -> Trial:
    """The trial as the oracle gets it over gRPC: a copy, not its own object."""
    return Trial.from_state(json.loads(json.dumps(trial.get_state())))


def snapshot(oracle: LayerNASOracle) -> str:
    trials = {t: oracle.trials[t].get_state() for t in oracle.trials}
    return json.dumps([oracle.get_state(), trials], sort_keys=True, default=repr)


# ------------------------------------------------------------ non-finite objective
@pytest.mark.parametrize("direction, value", [("min", math.inf), ("max", -math.inf)])
def test_infinite_objective_fails_the_trial_and_the_search_goes_on(tmp_path, direction, value):
    objective = keras_tuner.Objective("score", direction)  # e.g. an overflowing val_loss
    oracle = make_oracle(tmp_path, objective=objective)
    trial = oracle.create_trial("tuner0")
    finish(oracle, trial, value)
    assert oracle.trials[trial.trial_id].status == TrialStatus.FAILED
    assert [r.score for r in oracle.search.history] == [None]
    sign = -1 if direction == "min" else 1
    assert len(run_sequentially(oracle, score_fn=lambda a: sign * score(a))) > 1
    assert oracle.search.finished
    best = oracle.get_best_trials(1000)
    assert best and all(math.isfinite(t.score) for t in best)
    reloaded = make_oracle(tmp_path, objective=objective)
    reloaded.reload()  # the directory stays usable
    assert reloaded.trials[trial.trial_id].status == TrialStatus.FAILED


def test_directory_holding_a_completed_infinite_trial_resumes_with_it_failed(
        tmp_path, monkeypatch):
    class Crash(Exception):
        pass

    def crash(self, trial):
        raise Crash

    with monkeypatch.context() as patch:  # the files an older version left behind
        patch.setattr(LayerNASOracle, "score_trial", keras_tuner.Oracle.score_trial)
        patch.setattr(LayerNASOracle, "_tell", crash)
        crashed = make_oracle(tmp_path)
        trial = crashed.create_trial("tuner0")
        with pytest.raises(Crash):
            finish(crashed, trial, math.inf)
    saved = json.loads((tmp_path / "project" / f"trial_{trial.trial_id}" / "trial.json").read_text())
    assert (saved["status"], saved["score"]) == ("COMPLETED", math.inf)
    resumed = make_oracle(tmp_path)
    resumed.reload()
    assert resumed.trials[trial.trial_id].status == TrialStatus.FAILED
    assert [r.score for r in resumed.search.history] == [None]
    assert run_sequentially(resumed) and resumed.search.finished
    assert trial.trial_id not in {t.trial_id for t in resumed.get_best_trials(1000)}


# --------------------------------------------------------------- untrusted workers
def refused(caplog, oracle, call, *args, **kwargs):
    """Run ``call``; assert it changed nothing and logged why. Returns the reason."""
    before = snapshot(oracle)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=_oracle.__name__):
        call(*args, **kwargs)
    assert snapshot(oracle) == before
    reasons = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(reasons) == 1 and reasons[0].startswith("Refused"), reasons
    return reasons[0]


def test_end_trial_with_an_architecture_never_handed_out_is_refused(tmp_path, caplog):
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"score": 99.0})
    forged = received(trial)
    never_handed_out = next(v for v in ({"l1": 16, "l2": 24, "l3": 16}, {"l1": 24, "l2": 16, "l3": 24})
                            if v != trial.hyperparameters.values)
    assert TARGET[0] <= oracle.space.cost(oracle.space.decode(never_handed_out)) <= TARGET[1]
    forged.hyperparameters.values.update(never_handed_out)
    forged.status = TrialStatus.COMPLETED
    reason = refused(caplog, oracle, oracle.end_trial, forged)
    assert "not the one handed out" in reason
    genuine = received(trial)
    genuine.status = TrialStatus.COMPLETED
    oracle.end_trial(genuine)
    best = oracle.get_best_trials(1000)
    assert [oracle.architecture(t) for t in best] in ([], [oracle.architecture(trial)])
    assert oracle.trials[trial.trial_id].hyperparameters.values == trial.hyperparameters.values


def test_values_outside_the_options_are_refused_and_the_search_stays_usable(tmp_path, caplog):
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"score": 1.0})
    forged = received(trial)
    forged.hyperparameters.values["l1"] = 9999
    forged.status = TrialStatus.COMPLETED
    refused(caplog, oracle, oracle.end_trial, forged)
    reloaded = make_oracle(tmp_path)
    reloaded.reload()
    assert reloaded.get_best_trials(5) == []
    assert len(run_sequentially(reloaded)) > 1 and reloaded.search.finished


def test_second_declaration_of_a_searchable_layer_is_refused(tmp_path, caplog):
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"score": 1.0})
    hp = keras_tuner.HyperParameters()
    hp.Choice("l2", [32, 24, 16, 8])
    with hp.conditional_scope("l2", [8]):
        hp.Choice("l1", [1, 2])  # would make every later trial lack a value for l1
    forged = received(trial)
    forged.hyperparameters.merge(hp.space)
    forged.status = TrialStatus.COMPLETED
    assert "declares the searchable layers ['l1']" in refused(
        caplog, oracle, oracle.end_trial, forged)
    assert "Refused update_space" in refused(caplog, oracle, oracle.update_space, hp)
    genuine = received(trial)
    genuine.status = TrialStatus.COMPLETED
    oracle.end_trial(genuine)
    assert len(run_sequentially(oracle)) > 1 and oracle.search.finished


@pytest.mark.parametrize("status", [TrialStatus.RUNNING, TrialStatus.IDLE, TrialStatus.STOPPED])
def test_end_trial_with_a_status_that_ends_nothing_is_refused(tmp_path, caplog, status):
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"score": 1.0})
    forged = received(trial)
    forged.status = status
    assert "does not end a trial" in refused(caplog, oracle, oracle.end_trial, forged)
    genuine = received(trial)
    genuine.status = TrialStatus.COMPLETED
    oracle.end_trial(genuine)
    assert len(run_sequentially(oracle)) > 1 and oracle.search.finished  # never IDLE forever


def test_replayed_end_and_update_after_the_end_are_refused(tmp_path, caplog):
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"score": 1.0})
    report = received(trial)
    report.status = TrialStatus.COMPLETED
    oracle.end_trial(report)
    assert "already ended" in refused(caplog, oracle, oracle.end_trial, received(report))
    assert oracle.end_order == [trial.trial_id]
    assert "already ended" in refused(
        caplog, oracle, oracle.update_trial, trial.trial_id, {"score": 50.0})
    assert oracle.trials[trial.trial_id].score == 1.0


def test_reports_on_unknown_trials_bad_metrics_or_no_objective_are_refused(tmp_path, caplog):
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    stranger = received(trial)
    stranger.trial_id = "77"
    stranger.status = TrialStatus.COMPLETED
    assert "never handed out" in refused(caplog, oracle, oracle.end_trial, stranger)
    before = snapshot(oracle)
    with pytest.raises(ValueError, match="never handed out"):
        oracle.update_trial("77", {"score": 1.0})
    assert snapshot(oracle) == before
    assert "not a number" in refused(
        caplog, oracle, oracle.update_trial, trial.trial_id, {"score": "high"})
    unscored = received(trial)
    unscored.status = TrialStatus.COMPLETED
    assert "never reported its objective" in refused(caplog, oracle, oracle.end_trial, unscored)


# ------------------------------------------------------------------- dead workers
class Clock:
    """Stands in for the ``time`` module inside the oracle: time moves when told."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_trial_of_a_silent_worker_goes_to_the_next_worker_and_ends_once(
        tmp_path, monkeypatch, caplog):
    clock = Clock()
    monkeypatch.setattr(_oracle, "time", clock)
    oracle = make_oracle(tmp_path, worker_timeout_s=60)
    lost = oracle.create_trial("worker0")  # worker0 dies with it
    alive = oracle.create_trial("worker1")
    clock.now += 50
    oracle.get_trial(alive.trial_id)  # worker1 finishes an epoch
    clock.now += 20  # worker0 silent for 70 s, worker1 for 20 s
    with caplog.at_level(logging.WARNING, logger=_oracle.__name__):
        finish(oracle, received(alive), score(oracle.architecture(alive)))
        again = oracle.create_trial("worker1")
    assert again.trial_id == lost.trial_id and "worker0" in caplog.text
    assert "worker0" not in oracle.tuner_ids and oracle.ongoing_trials == {"worker1": again}
    late = received(lost)
    late.status = TrialStatus.COMPLETED
    finish(oracle, received(again), 2.0)
    assert "already ended" in refused(caplog, oracle, oracle.end_trial, late)
    assert oracle.trials[lost.trial_id].score == 2.0
    assert oracle.end_order.count(lost.trial_id) == 1


def test_tuner_that_stopped_asking_no_longer_keeps_the_chief_waiting(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(_oracle, "time", clock)
    oracle = make_oracle(tmp_path, worker_timeout_s=60)
    done = oracle.create_trial("worker0")
    finish(oracle, received(done), 1.0)  # then worker0 dies between two trials
    clock.now += 30
    oracle.create_trial("worker1")
    assert oracle.tuner_ids == {"worker0", "worker1"}
    clock.now += 40
    oracle.create_trial("worker2")
    assert oracle.tuner_ids == {"worker1", "worker2"}  # worker1 holds a trial


def test_trial_that_hits_the_failure_limit_is_still_told_and_released(tmp_path):
    oracle = make_oracle(tmp_path, max_consecutive_failed_trials=2)
    first, second = oracle.create_trial("worker0"), oracle.create_trial("worker1")
    finish(oracle, received(first), None, status=TrialStatus.FAILED)
    with pytest.raises(RuntimeError, match="consecutive failures"):
        finish(oracle, received(second), None, status=TrialStatus.FAILED)
    assert oracle.ongoing_trials == {}
    assert [r.score for r in oracle.search.history] == [None, None]
    saved = json.loads((tmp_path / "project" / f"trial_{second.trial_id}" / "trial.json")
                       .read_text())
    assert saved["status"] == TrialStatus.FAILED
    assert oracle.create_trial("worker2").status == TrialStatus.RUNNING


def test_worker_timeout_must_be_positive_or_none(tmp_path):
    with pytest.raises(ValueError, match="worker_timeout_s.*Received: worker_timeout_s=0"):
        make_oracle(tmp_path, worker_timeout_s=0)
    assert make_oracle(tmp_path, worker_timeout_s=None).worker_timeout_s is None


# ------------------------------------------------------------ corrupt state files
def damage(path, how):
    text = path.read_text()
    if how == "truncated":
        path.write_text(text[: len(text) // 2])
    elif how == "garbage":
        path.write_bytes(b"\x00\xffnot json at all")
    elif how == "not a state":
        path.write_text("[1, 2, 3]")
    else:
        path.unlink()


@pytest.mark.parametrize("how", ["truncated", "garbage", "not a state", "deleted"])
@pytest.mark.parametrize("file", ["oracle.json", "trial.json"])
def test_damaged_state_file_fails_naming_the_file_and_the_way_out(tmp_path, file, how):
    oracle = make_oracle(tmp_path)
    for _ in range(3):
        trial = oracle.create_trial("tuner0")
        finish(oracle, trial, score(oracle.architecture(trial)))
    project = tmp_path / "project"
    path = project / file if file == "oracle.json" else sorted(project.glob("trial_*/" + file))[1]
    damage(path, how)
    resumed = make_oracle(tmp_path)
    with pytest.raises(RuntimeError) as raised:
        resumed.reload()
    assert str(path) in str(raised.value) and "overwrite=True" in str(raised.value)


def test_damaged_tuner_file_fails_naming_the_file_and_the_way_out(tmp_path):
    space = SearchSpace.from_options({"units": [16, 4]}, lambda v: v["units"], build_regressor)

    def tuner():
        return LayerNASTuner(space, objective="val_loss", target=(4, 16),
                             compile_kwargs={"loss": "mse"}, directory=str(tmp_path),
                             project_name="p")

    tuner().save()
    path = tmp_path / "p" / "tuner0.json"
    damage(path, "garbage")
    with pytest.raises(RuntimeError) as raised:
        tuner()
    assert str(path) in str(raised.value) and "overwrite=True" in str(raised.value)


def test_another_target_is_still_reported_as_another_search_not_a_damaged_file(tmp_path):
    oracle = make_oracle(tmp_path)
    finish(oracle, oracle.create_trial("tuner0"), 1.0)
    with pytest.raises(ValueError, match="different space or LayerNAS settings"):
        make_oracle(tmp_path, target=(TARGET[0] - 100, TARGET[1])).reload()


# ----------------------------------------------------- an overflowing val_loss, for real
def build_regressor(v):
    """No BatchNorm; the 8-wide model scales its output so that its MSE overflows float32.

    That model is frozen: a step on an infinite loss would make its weights NaN.
    """
    layers = [keras.Input((4,)), keras.layers.Dense(v["units"]), keras.layers.Dense(1)]
    if v["units"] != 8:
        return keras.Sequential(layers)
    model = keras.Sequential(layers + [keras.layers.Rescaling(1e25)])
    model.trainable = False
    return model


@pytest.mark.slow
def test_search_whose_val_loss_overflows_fails_that_trial_and_reruns_cleanly(tmp_path):
    space = SearchSpace.from_options({"units": [16, 8, 4]}, lambda v: v["units"], build_regressor)
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)

    def run():
        tuner = LayerNASTuner(
            space, objective="val_loss", target=(4, 16), num_buckets=3, per_bucket=1,
            compile_kwargs={"optimizer": "sgd", "loss": "mse"},
            directory=str(tmp_path), project_name="overflow")
        tuner.search(x, y, validation_data=(x, y), epochs=1, batch_size=16, verbose=0)
        return tuner

    first = run()
    status = {first.oracle.architecture(t): t.status for t in first.oracle.trials.values()}
    assert status[(8,)] == TrialStatus.FAILED
    assert set(status.values()) == {TrialStatus.COMPLETED, TrialStatus.FAILED}
    assert first.oracle.search.finished
    best = first.get_best_hyperparameters(3)
    assert best and all(hp.values["units"] != 8 for hp in best)
    rerun = run()  # the directory stays usable: nothing left to train, same answer
    assert rerun.oracle.trials.keys() == first.oracle.trials.keys()
    assert [hp.values for hp in rerun.get_best_hyperparameters(3)] == [hp.values for hp in best]


@pytest.mark.slow
def test_layernas_tuner_tells_the_oracle_it_lives_at_every_epoch(tmp_path, monkeypatch):
    heard = []
    get_trial = LayerNASOracle.get_trial

    def spy(self, trial_id):
        if not self._not_running(trial_id):
            heard.append(trial_id)
        return get_trial(self, trial_id)

    monkeypatch.setattr(LayerNASOracle, "get_trial", spy)
    space = SearchSpace.from_options({"units": [16, 4]}, lambda v: v["units"], build_regressor)
    tuner = LayerNASTuner(space, objective="val_loss", target=(4, 16), num_buckets=2,
                          per_bucket=1, compile_kwargs={"optimizer": "sgd", "loss": "mse"},
                          directory=str(tmp_path), project_name="beat")
    x = np.ones((8, 4), "float32")
    tuner.search(x, x[:, :1], validation_data=(x, x[:, :1]), epochs=3, verbose=0)
    # each epoch's end, plus KerasTuner's own look before it reports the metrics
    assert heard and {t: heard.count(t) for t in heard} == {t: 4 for t in tuner.oracle.trials}
