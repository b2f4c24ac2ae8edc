"""Shared output helpers for benchmark scripts.

Each benchmark owns one marked section of docs/benchmarks.md and one JSON file in
benchmarks/results/, so scripts can be re-run independently without clobbering
each other's tables.
"""
from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path

from keras_layernas._io import atomic_path, write_atomically  # noqa: F401 (atomic_path: for plots)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "benchmarks.md"


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (folder created) so that a crash never leaves a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text)


def machine() -> dict:
    """A short description of the machine the numbers were measured on."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def write_json(name: str, payload: dict) -> Path:
    """Save ``payload`` (plus the machine description) as results/<name>.json."""
    path = RESULTS / f"{name}.json"
    atomic_write(path, json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path


def write_section(name: str, markdown: str) -> None:
    """Replace the ``name`` section of docs/benchmarks.md (appending it if new)."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write(DOC, text)


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
