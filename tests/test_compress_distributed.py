"""layernas.compress with data as KerasTuner chief + 2 workers: real processes on 127.0.0.1."""
from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from tests import _compress_job as job
from tests.tuner import _processes as proc

TIMEOUT_S = 300
TUNERS = ("chief", "worker0", "worker1")


def trial_files(project_dir) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(project_dir.glob("trial_*/trial.json"))]


@pytest.mark.slow
def test_chief_and_workers_train_each_arch_once_and_all_return_the_chiefs_model(tmp_path):
    common = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(proc.free_port()),
              "LAYERNAS_MAX_TRIALS": str(job.MAX_TRIALS)}
    processes = [proc.start_job(tmp_path, script=proc.REPO / "tests" / "_compress_job.py",
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
