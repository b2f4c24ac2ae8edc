"""examples/keras_tuner_pipeline.py runs end to end on real CIFAR-10 images."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.tuner import _processes as proc

EXAMPLE = proc.REPO / "examples" / "keras_tuner_pipeline.py"


@pytest.mark.slow
def test_example_finds_an_in_budget_cnn_and_resumes_without_new_trials(tmp_path, shared_dir):
    assert (shared_dir / "data" / "cifar10" / "cifar10_jpeg.npz").exists()
    command = [sys.executable, str(EXAMPLE), "--directory", str(tmp_path), "--max-trials", "20",
               "--epochs", "1", "--train-size", "320", "--test-size", "100"]
    outputs = [subprocess.run(command, env=proc.job_env(), capture_output=True, text=True,
                              timeout=600) for _ in range(2)]
    for run in outputs:
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    target = re.search(r"Target: ([\d.]+)-([\d.]+) MMAdds", outputs[0].stdout).groups()
    best = re.search(r"Best in budget: .*, ([\d.]+) MMAdds, test accuracy ([\d.]+) on 100 "
                     r"images, (\d+) trials", outputs[0].stdout).groups()
    assert float(target[0]) <= float(best[0]) <= float(target[1])
    assert 0.0 <= float(best[1]) <= 1.0 and 3 <= int(best[2]) < 20  # LayerNAS ran out first
    # the second run reloads the finished project: same answer, no new trial
    assert outputs[1].stdout.splitlines()[-1] == outputs[0].stdout.splitlines()[-1]
