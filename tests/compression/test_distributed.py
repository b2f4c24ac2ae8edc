"""layernas.compress under KerasTuner's chief/worker variables, and the chief-to-worker handoff.

The slow test runs the same compress() script as a chief and two workers,
real processes on 127.0.0.1.
"""
from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from keras_layernas.compression import _distributed
from keras_layernas.compression._compress import CompressionSearch
from tests.compression import _compress_job as job
from tests.compression.test_compress import small_cnn, toy_data
from tests.tuner import _processes as proc

TIMEOUT_S = 300
TUNERS = ("chief", "worker0", "worker1")


def distributed_env(monkeypatch, tuner_id: str) -> None:
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)


@pytest.fixture(scope="module")
def data_free_result():
    """A real (data-free, seconds) result of the small CNN, and the space it came from."""
    search = CompressionSearch(small_cnn(), 1e6, verbose=0)
    return search.run(), search.space


def test_role_follows_the_kerastuner_variables(monkeypatch):
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        monkeypatch.delenv(name, raising=False)
    assert _distributed.role() == "solo"
    distributed_env(monkeypatch, "chief")
    assert _distributed.role() == "chief"
    distributed_env(monkeypatch, "worker3")
    assert _distributed.role() == "worker"
    monkeypatch.delenv("KERASTUNER_ORACLE_PORT")
    with pytest.raises(RuntimeError, match="KERASTUNER_ORACLE_PORT"):
        _distributed.role()


def test_worker_rebuilds_the_published_model_with_the_chiefs_weights(data_free_result, tmp_path):
    result, space = data_free_result
    _distributed.publish_result(str(tmp_path), result)
    received = _distributed.wait_for_result(str(tmp_path), space, timeout_s=1)
    assert received.arch == result.arch and received.madds == result.madds
    assert received.trials == result.trials and received.history == result.history
    assert received.target == result.target
    probe = toy_data(4, seed=3)[0]
    np.testing.assert_array_equal(received.model.predict(probe, verbose=0),
                                  result.model.predict(probe, verbose=0))


def test_chief_clears_an_earlier_result_so_workers_wait_for_the_new_one(data_free_result, tmp_path):
    result, space = data_free_result
    _distributed.publish_result(str(tmp_path), result)
    _distributed.clear_result(str(tmp_path))
    assert not list(tmp_path.iterdir())
    with pytest.raises(TimeoutError, match="report.json.*same shared `directory`"):
        _distributed.wait_for_result(str(tmp_path), space, timeout_s=0.05, poll_s=0.01)


def test_report_naming_an_option_the_worker_lacks_is_refused(data_free_result, tmp_path):
    result, space = data_free_result
    _distributed.publish_result(str(tmp_path), result)
    report = json.loads((tmp_path / "report.json").read_text())
    report["arch"]["c1"] = "7"
    (tmp_path / "report.json").write_text(json.dumps(report))
    with pytest.raises(ValueError, match="option '7' for layer 'c1'.*same script"):
        _distributed.wait_for_result(str(tmp_path), space, timeout_s=1)
    # a finished step of a cut in steps is read back the same way: the fix names that case too
    with pytest.raises(ValueError, match="report.json.*to resume a cut in steps"):
        _distributed.read_result(str(tmp_path), space)


def test_distributed_search_with_data_needs_a_shared_directory(monkeypatch):
    distributed_env(monkeypatch, "worker0")
    with pytest.raises(ValueError, match="needs `directory`.*KERASTUNER_TUNER_ID='worker0'"):
        CompressionSearch(small_cnn(), 1e6, data=toy_data(), verbose=0)


def test_data_free_search_runs_in_process_under_distributed_variables(monkeypatch):
    # No server is listening on the port: any gRPC use would hang, not pass.
    distributed_env(monkeypatch, "worker0")
    result = CompressionSearch(small_cnn(), 1e6, verbose=0).run()
    assert 0.95e6 <= result.madds <= 1e6 and result.trials > 0


def trial_files(project_dir) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(project_dir.glob("trial_*/trial.json"))]


@pytest.mark.slow
def test_chief_and_workers_train_each_arch_once_and_all_return_the_chiefs_model(tmp_path):
    common = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(proc.free_port()),
              "LAYERNAS_MAX_TRIALS": str(job.MAX_TRIALS)}
    processes = [proc.start_job(tmp_path, script=proc.REPO / "tests" / "compression" / "_compress_job.py",
                                KERASTUNER_TUNER_ID=tuner, **common) for tuner in TUNERS]
    codes = proc.wait_all(processes, tmp_path, TIMEOUT_S)
    assert codes == [0, 0, 0], proc.output_of(tmp_path)

    # Workers trained every architecture exactly once; the chief trained none.
    log = proc.read_log(tmp_path)
    ends = proc.count_events(log, "end")
    assert sum(ends.values()) == job.MAX_TRIALS and set(ends.values()) == {1}
    assert {r["tuner"] for r in log} <= {"worker0", "worker1"}
    # The chief's trial files hold those same architectures, all completed.
    project = tmp_path / "project" / "compress"
    trials = trial_files(project)
    assert {t["status"] for t in trials} == {"COMPLETED"}
    chief_archs = collections.Counter(
        tuple(t["hyperparameters"]["values"][k] for k in sorted(t["hyperparameters"]["values"]))
        for t in trials)
    assert chief_archs == ends

    results = {t: json.loads(job.result_path(str(tmp_path / "result.json"), t).read_text())
               for t in TUNERS}
    chief = results["chief"]
    low, high = 0.95 * job.TARGET_MADDS, job.TARGET_MADDS
    assert low <= chief["madds"] == chief["counted_madds"] <= high
    assert chief["trials"] == job.MAX_TRIALS
    report = json.loads((project / "report.json").read_text())
    assert report["trials"] == job.MAX_TRIALS and report["madds"] == chief["madds"]
    for worker in ("worker0", "worker1"):
        returned = results[worker]
        assert returned["arch"] == chief["arch"]
        assert returned["counted_madds"] == chief["madds"] and returned["trials"] == job.MAX_TRIALS
        # The chief's fine-tuned weights, not the worker's own materialization.
        np.testing.assert_allclose(returned["probe_outputs"], chief["probe_outputs"], rtol=1e-6)
