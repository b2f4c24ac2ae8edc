"""The house rules of docs/architecture.md, read from the source with ``ast``.

Every ``import`` counts, also the ones inside functions (lazy imports still
make one room depend on another).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "keras_layernas"

# room -> floor: a module may import its own room and rooms on lower floors only.
FLOORS = {
    "_io": 0,
    "search": 1,
    "profiling": 2,
    "surgery": 3,
    "spaces": 4,
    "latency": 4,
    "tuner": 5,
    "compression": 6,
    "cli": 7,
    "demo": 8,  # the demo shows the CLI's compress -> export loop
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path) -> set[str]:
    """Every ``keras_layernas`` module or name ``path`` imports (``from a import b`` gives ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for alias in node.names:
                # ``from package import module`` depends on the module, not on the
                # package's __init__ (which Python runs for any import below it)
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {name for name in found if name == "keras_layernas" or name.startswith("keras_layernas.")}


def room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


IMPORTS = {name: imported_modules(path) for name, path in MODULES.items()}


def existing_module(name: str) -> str:
    """``name`` itself when it is a module, else the module it names something in."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def test_the_rules_see_every_room():
    rooms = {room(m) for m in MODULES if room(m)}
    assert rooms == set(FLOORS)  # a new room needs a floor here and in docs/architecture.md


def test_search_is_plain_python_and_imports_nothing_outside_search():
    for name, path in MODULES.items():
        if room(name) != "search":
            continue
        assert {room(m) for m in IMPORTS[name]} <= {"search"}, name
        tree = ast.parse(path.read_text(encoding="utf-8"))
        heavy = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names} | {node.module.split(".")[0] for node in ast.walk(tree)
                                             if isinstance(node, ast.ImportFrom) and node.module}
        assert not heavy & {"keras", "tensorflow", "keras_tuner"}, name


def test_profiling_imports_nothing_of_the_package_but_itself():
    for name in MODULES:
        if room(name) == "profiling":
            assert {room(m) for m in IMPORTS[name]} <= {"profiling"}, (name, IMPORTS[name])


def test_no_module_imports_a_higher_room_or_a_sibling_on_its_floor():
    wrong = []
    for name, imports in IMPORTS.items():
        here = room(name)
        if here is None:  # keras_layernas/__init__.py maps names to modules as strings
            assert not imports, imports
            continue
        for imported in imports:
            there = room(imported)
            if there not in (None, here) and FLOORS[there] >= FLOORS[here]:
                wrong.append(f"{name} imports {imported}")
    assert not wrong


def test_no_module_imports_another_rooms_private_module():
    wrong = []
    for name, imports in IMPORTS.items():
        for imported in imports:
            module = existing_module(imported)
            private = [p for p in module.split(".")[1:] if p.startswith("_")]
            if private and room(module) not in (room(name), "_io"):
                wrong.append(f"{name} imports {imported}")
    assert not wrong


def test_the_only_private_module_at_the_root_is_io():
    root_private = sorted(p.name for p in PACKAGE.glob("_*.py") if p.name != "__init__.py")
    assert root_private == ["_io.py"]


def test_no_import_circle_between_modules():
    graph = {name: {existing_module(m) for m in imports} - {name} for name, imports in IMPORTS.items()}
    state: dict[str, str] = {}
    circle: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                circle.extend(trail[trail.index(nxt):] + [node, nxt] if nxt in trail else [node, nxt])
                return
            if nxt not in state:
                visit(nxt, trail + [node])
            if circle:
                return
        state[node] = "done"

    for start in sorted(graph):
        if start not in state and not circle:
            visit(start, [])
    assert not circle, " -> ".join(circle)


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda p: p.name)
def test_benchmarks_import_only_public_library_modules(path):
    """The one exception is the atomic writer, shared so that results files are written alike."""
    private = [m for m in imported_modules(path)
               if any(p.startswith("_") for p in existing_module(m).split(".")[1:])
               and existing_module(m) != "keras_layernas._io"]
    assert not private
