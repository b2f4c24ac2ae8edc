"""compress() with data: one process against KerasTuner chief + 2 workers, side by side.

Both run the same script (tests/_compress_job.py: three 32-wide convs at 16x16,
128 training images, one epoch per trial, one final epoch, target 2 M MAdds) at
the same trial budget, one after the other in this run (``--repeats`` pairs,
alternating which goes first, as the machine is shared). Wall time counts from
starting the processes to the last exit (TensorFlow start-up included); each
process also reports its own compress() time. On this project's 2 shared CPU
cores no speed-up is expected: the numbers show what distribution costs here,
not what it gains on separate machines.

Run: ``python -m benchmarks.compress_distributed [--max-trials N]`` from the
repository root. Writes benchmarks/results/compress_distributed.json.
"""
from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks._report import RESULTS, markdown_table, write_json, write_section
from tests import _compress_job as job
from tests.tuner import _processes as proc

SCRIPT = proc.REPO / "tests" / "_compress_job.py"
TIMEOUT_S = 900


def run_cluster(workdir: Path, tuners: list[str | None], max_trials: int) -> dict:
    """Start one job per tuner id (None: a plain process), wait, collect what each returned."""
    env = {"LAYERNAS_MAX_TRIALS": str(max_trials)}
    if tuners != [None]:
        env |= {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(proc.free_port())}
    started = time.perf_counter()
    processes = [proc.start_job(workdir, script=SCRIPT, **env,
                                **({"KERASTUNER_TUNER_ID": t} if t else {})) for t in tuners]
    codes = proc.wait_all(processes, workdir, TIMEOUT_S)
    wall = time.perf_counter() - started
    if any(codes):
        raise RuntimeError(f"exit codes {codes}\n{proc.output_of(workdir)}")
    names = [t or "solo" for t in tuners]
    results = {name: json.loads(job.result_path(str(workdir / "result.json"), name).read_text())
               for name in names}
    first = results[names[0]]  # the chief, or the single process
    log = proc.read_log(workdir)
    return {
        "wall_s": round(wall, 1),
        "compress_s": {name: round(r["seconds"], 1) for name, r in results.items()},
        "trials_by_process": dict(collections.Counter(r["tuner"] for r in log if r["event"] == "end")),
        "result": {k: first[k] for k in ("arch", "madds", "trials", "score", "completed")},
        "same_model_everywhere": all(
            r["arch"] == first["arch"] and r["probe_outputs"] == first["probe_outputs"]
            for r in results.values()),
    }


def write_report(payload: dict) -> None:
    """The ``compress_distributed`` section of docs/benchmarks.md from a results payload."""
    rows = []
    for repeat, runs in enumerate(payload["pairs"]):
        for name in ("one_process", "chief_and_2_workers"):
            run = runs[name]
            rows.append([repeat, name, run["wall_s"], run["compress_s"], run["trials_by_process"],
                         run["result"]["madds"], run["result"]["score"], run["same_model_everywhere"]])
    ratios = sorted(p["wall_ratio_distributed_over_one"] for p in payload["pairs"])
    table = markdown_table(["pair", "run", "wall s", "compress() s", "trials by process", "MAdds",
                            "val_accuracy", "same model in every process"], rows)
    write_section("compress_distributed", (
        "## compress_distributed: compress() as KerasTuner chief + 2 workers vs one process\n\n"
        f"`python -m benchmarks.compress_distributed` (max_trials {payload['max_trials']}, a 3-conv "
        "CNN at 16x16 on made-up data, pairs run side by side alternating which goes first; "
        "results `benchmarks/results/compress_distributed.json`; setup in "
        "[compress.md](compress.md#distributed-search)).\n\n" + table + "\n\n"
        f"Distributed / one-process wall time: {ratios} (median "
        f"{payload['median_wall_ratio_distributed_over_one']}x). On 2 shared CPU cores three "
        "TensorFlow processes only compete, so no speed-up is expected or seen; the run shows "
        "that every process returns the same model and each architecture is trained once."))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-trials", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3,
                        help="side-by-side pairs, alternating which runs first (the machine is shared)")
    parser.add_argument("--report", action="store_true",
                        help="only rewrite the docs section from the saved JSON")
    args = parser.parse_args()
    if args.report:
        write_report(json.loads((RESULTS / "compress_distributed.json").read_text()))
        return
    pairs = []
    with tempfile.TemporaryDirectory(prefix="layernas-dist-") as scratch:
        for repeat in range(args.repeats):
            runs = {}
            order = ["one_process", "chief_and_2_workers"][:: 1 if repeat % 2 == 0 else -1]
            for name in order:
                tuners = [None] if name == "one_process" else ["chief", "worker0", "worker1"]
                runs[name] = run_cluster(Path(scratch) / f"{name}-{repeat}", tuners, args.max_trials)
            runs["wall_ratio_distributed_over_one"] = round(
                runs["chief_and_2_workers"]["wall_s"] / runs["one_process"]["wall_s"], 2)
            pairs.append(runs)
    ratios = sorted(p["wall_ratio_distributed_over_one"] for p in pairs)
    payload = {"max_trials": args.max_trials, "pairs": pairs,
               "median_wall_ratio_distributed_over_one": statistics.median(ratios)}
    path = write_json("compress_distributed", payload)
    write_report(payload)
    print(f"written {path} and the compress_distributed section of docs/benchmarks.md")


if __name__ == "__main__":
    main()
