"""Imports run one way: ``araft`` (the command) -> ``finetune`` -> ``evals`` -> ``araft_lc``, never
back, and no two modules import each other, however lazily.

Every import statement counts: at module level, inside functions, under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

# lower layers first: a module may import its own layer and those below it, never one above
LAYERS = ["araft_lc", "evals", "finetune", "araft"]


def _modules() -> dict[str, Path]:
    """Every module of the layers, by dotted name."""
    found: dict[str, Path] = {}
    for layer in LAYERS:
        if (ROOT / f"{layer}.py").is_file():
            found[layer] = ROOT / f"{layer}.py"
        for path in sorted((ROOT / layer).rglob("*.py")) if (ROOT / layer).is_dir() else []:
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The known module a dotted name lands in (its longest known prefix), or None (a library)."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in known:
            return ".".join(parts)
        parts.pop()
    return None


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The known modules ``module`` imports, anywhere in its file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import name` imports the submodule pkg.name when there is one
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        targets |= {t for t in (_resolve(n, known) for n in names) if t is not None and t != module}
    return targets


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {module: _imports(module, path, known) for module, path in known.items()}


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_every_package():
    graph = _graph()
    assert {"araft_lc", "araft_lc.agent.graph", "evals.metrics", "finetune.records"} <= set(graph)
    assert "araft_lc.react.trajectory" in graph["evals.runner"]  # a module-level import is seen


def test_imports_run_downward_only():
    upward = sorted(f"{m} -> {t}" for m, targets in _graph().items() for t in targets if _layer(t) > _layer(m))
    assert upward == [], "a lower layer imports a higher one:\n" + "\n".join(upward)


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert cycles == [], "modules that import each other: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_checker_catches_lazy_and_type_checking_imports(tmp_path):
    (tmp_path / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    from . import a\n")
    known = {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py"}
    graph = {m: _imports(m, p, known) for m, p in known.items()}
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]


# araft_lc's own floors, lowest first (ARCHITECTURE.md): a sub-package may import its own floor
# and those below, never one above; storage and runtime import nothing else of araft_lc.
FLOORS = ["version", "storage", "runtime", "wiki", "react", "chat", "agent", "cli", "araft_lc"]


def _floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS.index(parts[1] if len(parts) > 1 else parts[0])


def test_araft_lc_sub_packages_import_downward_only():
    graph = {m: t for m, t in _graph().items() if m.split(".")[0] == "araft_lc"}
    assert {m.split(".")[1] for m in graph if "." in m} == set(FLOORS[:-1])  # every module has a floor
    upward = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        for t in targets
        if t.split(".")[0] == "araft_lc" and _floor(t) > _floor(m)
    )
    assert upward == [], "a lower floor of araft_lc imports a higher one:\n" + "\n".join(upward)
    assert not {
        t
        for m in graph
        for t in graph[m]
        if m.startswith(("araft_lc.storage", "araft_lc.runtime"))
        and t.split(".")[1] not in ("storage", "runtime", "version")
    }
