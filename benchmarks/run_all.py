"""Regenerate every table and plot of docs/benchmarks.md, one script after another.

Each benchmark runs in its own subprocess (a crash or a leaked TF graph in one
cannot skew the next one's timings), in the order of docs/benchmarks.md. A
failing script does not stop the others; run_all exits non-zero at the end.

With ``--quick`` every script runs in its own reduced mode, and a script that has
none is skipped (the printed plan says which and why). A quick run rewrites the
scripts' sections and JSON with smoke-test numbers: run it in a scratch copy, or
restore with ``git checkout -- docs benchmarks/results`` afterwards.

Usage:
    python -m benchmarks.run_all            # full numbers (hours on 2 CPU cores)
    python -m benchmarks.run_all --quick    # reduced modes (minutes)
    python -m benchmarks.run_all --quick --plan   # print the plan, run nothing
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._report import ROOT

BENCHMARKS_DIR = ROOT / "benchmarks"


@dataclass(frozen=True)
class Benchmark:
    """One script under benchmarks/ and how run_all calls it.

    Attributes:
        name: the module ``benchmarks.<name>`` and the docs section it writes;
            its full run takes no arguments.
        quick_args: arguments of its reduced mode; None if it has none (skipped
            by ``--quick``).
        quick_note: what the reduced mode does, or why there is none.
    """

    name: str
    quick_args: tuple[str, ...] | None
    quick_note: str

    @property
    def script(self) -> Path:
        """The script's file, to tell whether its branch is merged into this checkout."""
        return BENCHMARKS_DIR / f"{self.name}.py"


# In the order of their sections in docs/benchmarks.md; speed_summary last, so it
# re-measures the headline numbers of the others side by side.
BENCHMARKS = (
    Benchmark("profile_speed", ("--repeats-tf", "1", "--repeats-ours", "20"),
              "no --quick flag; its own --repeats-* flags cut the medians to 20 / 1 calls"),
    Benchmark("nats_sss", ("--quick",), "cifar10 only, 3 seeds"),
    Benchmark("search_overhead", ("--trials", "200"),
              "no --quick flag; its own --trials flag cuts 2000 trials to 200"),
    Benchmark("surgery_speed", None, "no reduced mode (no flags at all)"),
    Benchmark("compress_speed", None, "no reduced mode (no flags at all)"),
    Benchmark("multi_target", ("--repeats", "1"), "one run of each way instead of 2"),
    Benchmark("compress_distributed", ("--repeats", "1"), "one side-by-side pair instead of 3"),
    Benchmark("nb201", ("--quick",), "cifar10 only, 3 seeds"),
    Benchmark("oracle_comparison", ("--quick",),
              "cifar10, 2 seeds, 100 trials (Bayesian rows: 1 seed, 40 trials)"),
    Benchmark("cifar10_compression", ("--smoke",),
              "--smoke: 600 images, 1 epoch, 3 trials; checks the script end to end and "
              "writes no table (its section keeps the last full run)"),
    Benchmark("latency_model", ("--quick",),
              "MobileNetV2 0.35 at 96x96, 6 calibration and 8 held-out architectures"),
    Benchmark("in_target_share", (), "takes seconds: runs as it is"),
    Benchmark("compression_quality", None,
              "no reduced mode: trains the base (once, kept in benchmarks/models) and fine-tunes "
              "every method 3 times (hours); resumable"),
    Benchmark("speed_summary", ("--quick",), "fewer repeats and trials"),
)


@dataclass(frozen=True)
class Step:
    """One planned subprocess: the command, or why it is skipped."""

    name: str
    command: list[str] | None
    note: str


def _has_sklearn() -> bool:
    return importlib.util.find_spec("sklearn") is not None


def plan(quick: bool, benchmarks: tuple[Benchmark, ...] = BENCHMARKS) -> list[Step]:
    """What run_all will run, in order, with a note per script.

    Scripts not on this checkout yet (their branch not merged) are skipped, not
    failed: run_all lists every benchmark the project plans to have.
    """
    steps = []
    for benchmark in benchmarks:
        if not benchmark.script.exists():
            missing = benchmark.script.relative_to(ROOT)
            steps.append(Step(benchmark.name, None, f"skipped: {missing} is not in this checkout"))
            continue
        args, note = (benchmark.quick_args, benchmark.quick_note) if quick else ((), "full run")
        if args is None:
            steps.append(Step(benchmark.name, None, f"skipped in --quick: {note}"))
            continue
        if benchmark.name == "oracle_comparison" and not _has_sklearn():
            # Its Bayesian rows need scikit-learn; the script refuses up front without it.
            args = (*args, "--only", "fast")
            note += "; --only fast: scikit-learn is missing, so no Bayesian rows"
        steps.append(Step(benchmark.name,
                          [sys.executable, "-m", f"benchmarks.{benchmark.name}", *args], note))
    return steps


def describe(steps: list[Step]) -> str:
    """The plan as printed before anything runs."""
    lines = []
    for step in steps:
        what = " ".join(step.command[1:]) if step.command else "-"
        lines.append(f"  {step.name:<20} {what}\n  {'':<20} ({step.note})")
    return "\n".join(lines)


def run_steps(steps: list[Step]) -> list[tuple[str, float | None, int | None]]:
    """Run every planned command in turn, whatever the previous one returned.

    Returns:
        ``(name, wall seconds, return code)`` per step; None, None for a skipped one.
    """
    results = []
    for step in steps:
        if step.command is None:
            results.append((step.name, None, None))
            continue
        print(f"\n=== {step.name}: {' '.join(step.command[1:])}", flush=True)
        start = time.perf_counter()
        returncode = subprocess.call(step.command, cwd=ROOT)
        results.append((step.name, time.perf_counter() - start, returncode))
    return results


def summary(results: list[tuple[str, float | None, int | None]]) -> str:
    """Wall time and outcome per script, and the total."""
    lines = []
    for name, seconds, returncode in results:
        if returncode is None:
            lines.append(f"  {name:<20} {'-':>9}  skipped")
        else:
            outcome = "ok" if returncode == 0 else f"FAILED (exit code {returncode})"
            lines.append(f"  {name:<20} {seconds:8.1f}s  {outcome}")
    total = sum(seconds for _, seconds, _ in results if seconds is not None)
    lines.append(f"  {'total':<20} {total:8.1f}s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the plan, run it, print wall time per script.

    Returns:
        The process exit code: 1 if any script failed, else 0.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="each script's reduced mode; scripts without one are skipped")
    parser.add_argument("--plan", action="store_true", help="print the plan and run nothing")
    args = parser.parse_args(argv)
    steps = plan(args.quick)
    print(("Quick" if args.quick else "Full") + " run plan:\n" + describe(steps), flush=True)
    if args.quick:
        print("Note: --quick rewrites these scripts' docs sections and JSON with smoke-test "
              "numbers; restore with `git checkout -- docs benchmarks/results`.", flush=True)
    if args.plan:
        return 0
    results = run_steps(steps)
    print("\nWall time per script:\n" + summary(results), flush=True)
    failed = [name for name, _, returncode in results if returncode not in (None, 0)]
    if failed:
        print(f"Failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
