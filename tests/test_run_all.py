"""benchmarks.run_all: its plan covers docs/benchmarks.md, --quick runs what it says."""
from __future__ import annotations

import re
import sys

import pytest

from benchmarks import run_all
from benchmarks._report import DOC


def _doc_sections() -> list[str]:
    return re.findall(r"<!-- BEGIN (\S+) -->", DOC.read_text(encoding="utf-8"))


def test_every_docs_section_is_regenerated_by_a_planned_script():
    planned = [step.name for step in run_all.plan(quick=False) if step.command is not None]
    assert sorted(_doc_sections()) == sorted(planned)


def test_full_plan_follows_the_order_of_the_docs_sections():
    planned = [step.name for step in run_all.plan(quick=False) if step.command is not None]
    assert planned == _doc_sections()


def test_full_plan_runs_every_script_with_its_default_settings(monkeypatch):
    monkeypatch.setattr(run_all, "_has_sklearn", lambda: True)
    for step in run_all.plan(quick=False):
        if step.command is not None:
            assert step.command == [sys.executable, "-m", f"benchmarks.{step.name}"]


def test_quick_plan_uses_each_scripts_reduced_mode_or_skips_it(monkeypatch):
    monkeypatch.setattr(run_all, "_has_sklearn", lambda: True)
    steps = {step.name: step for step in run_all.plan(quick=True)}
    for benchmark in run_all.BENCHMARKS:
        step = steps[benchmark.name]
        if not benchmark.script.exists():
            assert step.command is None and "not in this checkout" in step.note
        elif benchmark.quick_args is None:
            assert step.command is None and step.note.startswith("skipped in --quick")
        else:
            assert step.command == [sys.executable, "-m", f"benchmarks.{benchmark.name}",
                                    *benchmark.quick_args]
    assert steps["surgery_speed"].command is None  # it has no flags at all


def test_quick_flags_exist_in_the_scripts_they_are_passed_to():
    for benchmark in run_all.BENCHMARKS:
        if benchmark.script.exists() and benchmark.quick_args:
            source = benchmark.script.read_text(encoding="utf-8")
            for flag in (a for a in benchmark.quick_args if a.startswith("--")):
                assert f'"{flag}"' in source, f"{benchmark.name} has no {flag} option"


@pytest.mark.parametrize("quick", [False, True])
def test_oracle_comparison_drops_bayesian_rows_only_without_sklearn(monkeypatch, quick):
    monkeypatch.setattr(run_all, "_has_sklearn", lambda: False)
    without = next(s for s in run_all.plan(quick) if s.name == "oracle_comparison")
    monkeypatch.setattr(run_all, "_has_sklearn", lambda: True)
    with_sklearn = next(s for s in run_all.plan(quick) if s.name == "oracle_comparison")
    assert without.command[-2:] == ["--only", "fast"] and "scikit-learn" in without.note
    assert "--only" not in with_sklearn.command


def test_a_failing_script_does_not_stop_the_others_and_main_exits_non_zero(monkeypatch, capsys):
    steps = [
        run_all.Step("fails", [sys.executable, "-c", "raise SystemExit(3)"], "test"),
        run_all.Step("skipped", None, "test"),
        run_all.Step("runs_after", [sys.executable, "-c", "print('ran after the failure')"], "test"),
    ]
    monkeypatch.setattr(run_all, "plan", lambda quick: steps)
    assert run_all.main([]) == 1
    out = capsys.readouterr().out
    assert re.search(r"fails\s+\d+\.\d+s\s+FAILED \(exit code 3\)", out)
    assert re.search(r"runs_after\s+\d+\.\d+s\s+ok", out)
    assert re.search(r"skipped\s+-\s+skipped", out)


def test_plan_flag_runs_nothing(monkeypatch):
    ran = []
    monkeypatch.setattr(run_all, "run_steps", ran.append)
    assert run_all.main(["--quick", "--plan"]) == 0
    assert ran == []
