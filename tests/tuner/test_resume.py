"""A search SIGKILLed at many points resumes to exactly the uninterrupted result."""
from __future__ import annotations

import random
import signal

import pytest

from tests.tuner import _processes as proc
from tests.tuner._search_job import KILL_POINTS


@pytest.mark.slow
def test_search_killed_at_every_crash_point_resumes_to_the_uninterrupted_result(tmp_path):
    reference = tmp_path / "uninterrupted"
    assert proc.run_job(reference) == 0, proc.output_of(reference)

    # Every crash point once, in a seeded random order, each at a random
    # occurrence (1st-3rd time the restarted process reaches it).
    rng = random.Random(2024)
    schedule = [(point, rng.randint(1, 3)) for point in rng.sample(KILL_POINTS, len(KILL_POINTS))]
    resumed = tmp_path / "resumed"
    for point, nth in schedule:
        code = proc.run_job(resumed, LAYERNAS_KILL_AT=f"{point}:{nth}")
        assert code == -signal.SIGKILL, (
            f"run meant to die at {point}:{nth} exited {code}\n{proc.output_of(resumed)}")
    assert proc.run_job(resumed) == 0, proc.output_of(resumed)

    want, got = proc.read_result(reference), proc.read_result(resumed)
    assert got["finished"]
    # Same trials (ids, archs, scores, statuses): nothing lost, nothing extra.
    assert got["trials"] == want["trials"]
    assert got["bucket_table"] == want["bucket_table"]
    assert got["pareto_front"] == want["pareto_front"]
    assert got["best"] == want["best"]

    log = proc.read_log(resumed)
    ends = proc.count_events(log, "end")
    trained_twice = {arch: n for arch, n in ends.items() if n > 1}
    assert trained_twice == {}
    completed = {tuple(t["arch"]): t["score"] for t in got["trials"].values()
                 if t["status"] == "COMPLETED"}
    assert {tuple(r["arch"]): r["score"] for r in log if r["event"] == "end"} == completed
    # The mid-trial kill really interrupted a training that then ran again.
    restarted = [arch for arch, n in proc.count_events(log, "start").items() if n > 1]
    assert len(restarted) >= 1
