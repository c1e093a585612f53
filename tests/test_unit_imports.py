"""The import graph of grader/ and reports/, read from the modules' source (imports inside
functions count: a lazy import is still a dependency; imports for type hints only, under
`if TYPE_CHECKING:`, do not): no cycles, and reports/ needs nothing of the grader but the result
it renders."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = ("grader", "reports")
# What reports/ may import from grader/: the result it renders, and nothing that trains.
REPORTS_MAY_IMPORT = {"grader.result"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _run_time_nodes(node: ast.AST):
    """Every node of the source but those under `if TYPE_CHECKING:` (imports for type hints,
    which never run)."""
    yield node
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            for other in child.orelse:
                yield from _run_time_nodes(other)
            continue
        yield from _run_time_nodes(child)


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports at run time, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _run_time_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from grader import cost` imports the module grader.cost
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                         for alias in node.names)
    return {module for module in found if module in modules and module != name}


def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def test_the_cycle_finder_finds_a_cycle_through_three_modules() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]


def test_a_lazy_import_inside_a_function_counts_and_a_type_only_import_does_not(
        tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from grader import batch\n"
                      "def f():\n    from grader import cost\n    import grader.rules\n")
    known = {"grader.cost": Path(), "grader.rules": Path(), "grader.batch": Path(),
             "grader": Path()}
    assert _imports("grader.m", module, known) == {"grader.cost", "grader.rules"}


def test_grader_and_reports_have_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_reports_import_nothing_of_the_grader_but_the_result() -> None:
    reaching = {name: sorted(imported - REPORTS_MAY_IMPORT)
                for name, imported in graph().items() if name.startswith("reports")}
    assert {name: [m for m in found if m.startswith("grader")]
            for name, found in reaching.items()} == {name: [] for name in reaching}


def test_the_result_types_stand_on_their_own() -> None:
    """reports/ reads result.json through grader.result: that must not pull the grader in."""
    edges = graph()
    reached, todo = set(), ["grader.result"]
    while todo:
        for module in edges[todo.pop()] - reached:
            reached.add(module)
            todo.append(module)
    assert reached <= {"grader", "grader.io"}
