"""The code's layout: pages and widgets go through segcore's public API only, and no core module imports itself back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import segcore

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "segcore"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The segcore modules a file imports (TYPE_CHECKING and function-level imports included: a circle is a circle)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m != name}


def _core_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in CORE.rglob("*.py")}
    return {name: _imports(path, set(files)) for name, path in files.items()}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for nxt in graph[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def test_no_core_module_imports_one_that_imports_it_back() -> None:
    graph = _core_graph()
    # A package's __init__ re-exports its modules, and they may import siblings through it: not a circle of rules.
    packages = {n for n in graph if (CORE / Path(*n.split(".")[1:]) / "__init__.py").exists() or n == "segcore"}
    graph = {n: {m for m in deps if m not in packages} for n, deps in graph.items()}
    circles = {
        frozenset({a, b}) for a in graph for b in graph[a] if a in _reachable(graph, b) and a not in packages
    }
    # No circle is allowed: the last one (engine ↔ preview) ended with issue 16's evaluation seam.
    assert not circles, f"import circles: {sorted(sorted(c) for c in circles)}"


@pytest.mark.parametrize(
    "pair",
    [
        ("segcore._db", "segcore._settings"),
        ("segcore.cli", "segcore._cli_import"),
        ("segcore._engine", "segcore._preview"),
        ("segcore._engine", "segcore.evaluation.sql"),
        ("segcore._engine", "segcore.evaluation.memory"),
    ],
)
def test_these_former_circles_stay_broken(pair: tuple[str, str]) -> None:
    graph = _core_graph()
    a, b = pair
    assert not (a in _reachable(graph, b) and b in _reachable(graph, a))


def test_the_engine_does_not_reach_the_preview_and_evaluation_does_not_reach_the_engine() -> None:
    """A page asks `evaluation` for a preview and the engine for a commit; the engine reads through `evaluation`."""
    graph = _core_graph()
    assert "segcore._preview" not in _reachable(graph, "segcore._engine")
    for name in [n for n in graph if n.startswith("segcore.evaluation")]:
        assert "segcore._engine" not in _reachable(graph, name), name


def _front_files() -> list[Path]:
    return sorted([ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "ui").glob("*.py")])


@pytest.mark.parametrize("path", _front_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_and_widgets_use_the_public_api_only(path: Path) -> None:
    private = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("segcore"):
            if node.module != "segcore":
                private.append(f"line {node.lineno}: from {node.module}")
            else:
                private += [f"line {node.lineno}: {a.name}" for a in node.names if a.name not in segcore.__all__]
        elif isinstance(node, ast.Import):
            private += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name.startswith("segcore.")]
    assert not private, f"{path.name} reaches past segcore's public API: {private}"


def test_every_public_name_exists_once() -> None:
    assert len(segcore.__all__) == len(set(segcore.__all__))
    assert [n for n in segcore.__all__ if not hasattr(segcore, n)] == []
