"""Imports follow the layers: each package imports only the packages below it.

    scripts      dashboard        entry points (a dashboard never imports scripts)
         \\       /    |
          workers     |           the only code that knows queues
              \\       |
              services            the domain, functions over a ServiceContext
                 |
               model              the face: no database or queue I/O

Inside services/, the domain packages and the wiring modules import each other in no cycle. Today's order, each
importing only from the lines above it (the test checks the absence of cycles, not this order):

    config, errors
    storage
    context, engine
    registry
    search
    dedup, attendance, evaluation
    reports

(storage names ServiceContext for types only, under `if TYPE_CHECKING:`; such imports do not count here.)
Every other import counts, a function's deferred import included. The imports are read with `ast`, so nothing
is executed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from services.config import REPO_ROOT

FORBIDDEN = {
    "model": {"services", "workers", "dashboard", "scripts"},
    "services": {"workers", "dashboard", "scripts"},
    "workers": {"dashboard", "scripts"},
    "dashboard": {"scripts"},
}
WIRING = ("services.config", "services.errors", "services.context", "services.engine")

Import = tuple[str, str]  # (imported module, "path:line")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def type_checking_nodes(tree: ast.AST) -> set[int]:
    """The ids of every node inside an `if TYPE_CHECKING:` body."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def imports(path: Path) -> Iterator[Import]:
    """Every module `path` imports at run time: `from a.b import c` names a.b and a.b.c (c may be a module)."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = type_checking_nodes(tree)
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    where = path.relative_to(REPO_ROOT)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from ((alias.name, f"{where}:{node.lineno}") for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            yield base, f"{where}:{node.lineno}"
            yield from ((f"{base}.{alias.name}", f"{where}:{node.lineno}") for alias in node.names)


def sources(package: str) -> list[Path]:
    return sorted((REPO_ROOT / package).rglob("*.py"))


def test_the_reader_sees_runtime_imports_and_skips_type_checking_ones() -> None:
    found = {name for name, _ in imports(REPO_ROOT / "services" / "context.py")}
    assert "services.storage.db" in found
    assert "model.pipeline" not in found  # imported under TYPE_CHECKING only


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(package: str) -> None:
    wrong = sorted(
        f"{where} imports {name}"
        for path in sources(package)
        for name, where in imports(path)
        if name.partition(".")[0] in FORBIDDEN[package]
    )
    assert not wrong, f"{package}/ must not import {', '.join(sorted(FORBIDDEN[package]))}:\n" + "\n".join(
        dict.fromkeys(wrong)
    )


def unit_of(module: str) -> str | None:
    """The unit a services module belongs to: its domain package (services.registry) or wiring module."""
    parts = module.split(".")
    if parts[0] != "services" or len(parts) < 2:
        return None
    here = REPO_ROOT / "services" / parts[1]
    return f"services.{parts[1]}" if here.is_dir() or here.with_suffix(".py").is_file() else None


def services_graph() -> dict[str, dict[str, str]]:
    """unit -> {unit it imports: the first import line that does}."""
    graph: dict[str, dict[str, str]] = {}
    for path in sources("services"):
        source = unit_of(module_name(path))
        for name, where in imports(path):
            target = unit_of(name)
            if source is not None and target not in (None, source):
                graph.setdefault(source, {}).setdefault(str(target), where)
    return graph


def find_cycle(graph: dict[str, dict[str, str]]) -> list[str]:
    """One cycle as [a, b, ..., a], or [] when the graph has none (depth-first search)."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        for target in sorted(graph.get(node, {})):
            cycle = visit(target, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return []

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return []


def test_the_graph_holds_every_domain_package_and_wiring_module() -> None:
    graph = services_graph()
    units = set(graph) | {t for targets in graph.values() for t in targets}
    packages = {f"services.{p.name}" for p in (REPO_ROOT / "services").iterdir() if (p / "__init__.py").exists()}
    assert packages <= units and set(WIRING) <= units


def test_find_cycle_reports_a_cycle() -> None:
    assert find_cycle({"a": {"b": "x"}, "b": {"c": "y"}, "c": {"a": "z"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": "x"}, "b": {}, "c": {"a": "z"}}) == []
    two = {"a": {"b": "x"}, "b": {"a": "y", "c": "y"}, "c": {"d": "z"}, "d": {"c": "w"}}
    assert cycles(two) == [["a", "b", "a"], ["c", "d", "c"]]


def cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """One cycle through each group of units that import each other (a strongly connected component)."""
    reach = {node: _reachable(graph, node) for node in graph}
    groups = {frozenset(m for m in reach[n] if n in reach.get(m, set())) for n in graph if n in reach[n]}
    return sorted(find_cycle({n: {t: w for t, w in graph[n].items() if t in g} for n in g}) for g in groups)


def _reachable(graph: dict[str, dict[str, str]], node: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(node, {}))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(graph.get(n, {}))
    return seen


def test_no_import_cycle_between_the_services_packages() -> None:
    graph = services_graph()
    found = cycles(graph)
    steps = ["\n".join(f"  {a} -> {b}  ({graph[a][b]})" for a, b in pairwise(cycle)) for cycle in found]
    assert not found, "import cycles:\n" + "\n\n".join(steps)
