"""KerasTuner's chief/worker gRPC mode with LayerNASOracle: real processes on 127.0.0.1."""
from __future__ import annotations

import signal

import pytest

from tests.tuner import _processes as proc
from tests.tuner._search_job import KERAS_SPACE, TARGET

TIMEOUT_S = 240


def start_cluster(workdir, mode, worker_env=None, common_env=None):
    """A chief and two workers; ``worker_env`` adds variables to worker0 only."""
    common = {"LAYERNAS_JOB_MODE": mode, "KERASTUNER_ORACLE_IP": "127.0.0.1",
              "KERASTUNER_ORACLE_PORT": str(proc.free_port()), **(common_env or {})}
    chief = proc.start_job(workdir, KERASTUNER_TUNER_ID="chief", **common)
    workers = [proc.start_job(workdir, KERASTUNER_TUNER_ID="worker0", **common,
                              **(worker_env or {})),
               proc.start_job(workdir, KERASTUNER_TUNER_ID="worker1", **common)]
    return common, chief, workers


def wait_all(processes, workdir):
    return proc.wait_all(processes, workdir, TIMEOUT_S)


def assert_chief_matches_what_workers_reported(workdir):
    result, log = proc.read_result(workdir), proc.read_log(workdir)
    assert result["finished"]
    ends = proc.count_events(log, "end")
    assert ends and set(ends.values()) == {1}  # every architecture trained once
    reported = {tuple(r["arch"]): r["score"] for r in log if r["event"] == "end"}
    statuses = {t["status"] for t in result["trials"].values()}
    assert statuses == {"COMPLETED"}
    assert {tuple(t["arch"]): t["score"] for t in result["trials"].values()} == reported
    return result, log


@pytest.mark.slow
def test_chief_and_two_workers_train_every_architecture_once(tmp_path):
    _, chief, workers = start_cluster(tmp_path, "keras")
    assert wait_all([chief, *workers], tmp_path) == [0, 0, 0], proc.output_of(tmp_path)
    result, log = assert_chief_matches_what_workers_reported(tmp_path)
    assert {r["tuner"] for r in log} == {"worker0", "worker1"}
    in_target = [t["score"] for t in result["trials"].values()
                 if TARGET[0] <= KERAS_SPACE.cost(tuple(t["arch"])) <= TARGET[1]]
    best_scores = [t["score"] for t in result["trials"].values() if t["arch"] == result["best"][0]]
    assert best_scores == [max(in_target)]


@pytest.mark.slow
def test_worker_killed_mid_trial_is_restarted_and_the_search_finishes(tmp_path):
    common, chief, workers = start_cluster(
        tmp_path, "synthetic", worker_env={"LAYERNAS_KILL_AT": "mid_trial:2"})
    killed = workers[0]
    assert wait_all([killed], tmp_path) == [-signal.SIGKILL]
    # The chief still holds worker0's trial as ongoing; the same id resumes it.
    restarted = proc.start_job(tmp_path, KERASTUNER_TUNER_ID="worker0", **common)
    codes = wait_all([chief, workers[1], restarted], tmp_path)
    assert codes == [0, 0, 0], proc.output_of(tmp_path)
    _, log = assert_chief_matches_what_workers_reported(tmp_path)
    starts = proc.count_events(log, "start")
    rerun = [arch for arch, n in starts.items() if n == 2]
    assert len(rerun) == 1 and max(starts.values()) == 2
    first_pid = next(r["pid"] for r in log if r["tuner"] == "worker0")
    interrupted = [r for r in log if r["pid"] == first_pid and r["event"] == "start"][-1]
    assert tuple(interrupted["arch"]) == rerun[0]


@pytest.mark.slow
def test_worker_killed_for_good_leaves_its_trial_to_the_other_worker(tmp_path):
    _, chief, workers = start_cluster(
        tmp_path, "synthetic", worker_env={"LAYERNAS_KILL_AT": "mid_trial:2"},
        common_env={"LAYERNAS_WORKER_TIMEOUT_S": "5"})
    codes = wait_all([chief, *workers], tmp_path)
    assert codes == [0, -signal.SIGKILL, 0], proc.output_of(tmp_path)
    _, log = assert_chief_matches_what_workers_reported(tmp_path)
    interrupted = [r for r in log if r["tuner"] == "worker0" and r["event"] == "start"][-1]
    lost = tuple(interrupted["arch"])
    starts = proc.count_events(log, "start")
    assert starts[lost] == 2 and all(n == 1 for arch, n in starts.items() if arch != lost)
    rerun = [r for r in log if tuple(r["arch"]) == lost and r["event"] == "end"]
    assert [(r["tuner"], r["trial"]) for r in rerun] == [("worker1", interrupted["trial"])]
