"""Run ``_search_job.py`` as real processes (resume and distributed tests)."""
from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

JOB = Path(__file__).with_name("_search_job.py")
REPO = Path(__file__).resolve().parents[2]


def job_env(**extra: str) -> dict[str, str]:
    """The parent's environment without distributed settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KERASTUNER_", "LAYERNAS_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["KERAS_BACKEND"] = "tensorflow"
    env.update(extra)
    return env


def start_job(workdir: Path, script: Path = JOB, **env: str) -> subprocess.Popen:
    """Start ``script PROJECT_DIR LOG_PATH RESULT_PATH`` (``_search_job.py`` by default)."""
    workdir.mkdir(exist_ok=True)
    name = env.get("KERASTUNER_TUNER_ID", "solo")
    with open(workdir / f"{name}.out", "ab") as out:
        return subprocess.Popen(
            [sys.executable, str(script), str(workdir / "project"), str(workdir / "log.jsonl"),
             str(workdir / "result.json")],
            env=job_env(**env), cwd=str(REPO), stdout=out, stderr=subprocess.STDOUT,
        )


def run_job(workdir: Path, timeout: float = 240, **env: str) -> int:
    """Run one job to its end (or its SIGKILL) and return its exit code."""
    process = start_job(workdir, **env)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def wait_all(processes: list[subprocess.Popen], workdir: Path, timeout: float) -> list[int]:
    """Exit codes of ``processes``; all are killed if one outlives ``timeout``."""
    try:
        return [p.wait(timeout=timeout) for p in processes]
    except subprocess.TimeoutExpired:
        for p in processes:
            p.kill()
        raise AssertionError(f"the processes did not finish in {timeout}s\n{output_of(workdir)}")


def read_log(workdir: Path) -> list[dict]:
    path = workdir / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def read_result(workdir: Path) -> dict:
    return json.loads((workdir / "result.json").read_text())


def count_events(log: list[dict], event: str) -> collections.Counter:
    """How many times each architecture had ``event`` ("start" or "end")."""
    return collections.Counter(tuple(r["arch"]) for r in log if r["event"] == event)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def output_of(workdir: Path) -> str:
    """Every process's captured output, for assertion messages."""
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(workdir.glob("*.out")))
