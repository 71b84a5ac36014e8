"""The house's plan: each module of hbens on one floor, imports only downwards (or level), no cycle.

Floors, from the ground up: the ground (formats, frames, runs, the pipeline), the maps floor
(:mod:`hbens.maps`), the wings (ensemble, postproc, predictors, tune, and the modules that score,
import and report on maps), the API (and the demo, which runs the API's steps), the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hbens"

FLOORS = {
    "hbens.maps": 1,
    "hbens.ensemble": 2,
    "hbens.postproc": 2,
    "hbens.predictors": 2,
    "hbens.tune": 2,
    "hbens.metrics": 2,
    "hbens.importer": 2,
    "hbens.report": 2,
    "hbens.demo": 3,
    "hbens.api": 3,
    "hbens.cli": 4,
    "hbens.__main__": 4,
}
"""Floor of each module or subpackage that is not on the ground (0)."""
NAMES = {0: "ground", 1: "maps", 2: "wings", 3: "api", 4: "cli"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor(module: str) -> int:
    matches = [prefix for prefix in FLOORS if module == prefix or module.startswith(prefix + ".")]
    return FLOORS[max(matches, key=len)] if matches else 0


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The hbens modules a file imports at run time (at its top or inside functions), not for type checking."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking(node):
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hbens":
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "hbens")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: imports(path, set(files)) - {name} for name, path in files.items()}


def test_every_import_goes_down_or_level():
    upward = [f"{source} ({NAMES[floor(source)]}) imports {target} ({NAMES[floor(target)]})"
              for source, targets in graph().items() for target in sorted(targets) if floor(target) > floor(source)]
    assert not upward, "\n".join(upward)


def test_the_ground_and_the_maps_floor_import_no_wing():
    edges = graph()
    for source in edges:
        if floor(source) <= 1:
            assert not [target for target in edges[source] if floor(target) >= 2], source


def test_there_is_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


@pytest.mark.parametrize("limit", [450])
def test_no_module_is_a_giant(limit):
    sizes = {module_name(path): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert not {name: size for name, size in sizes.items() if size > limit}


def test_no_function_is_a_giant():
    """At most 80 lines a function (docstring included); numba kernels may be longer."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                if not any("njit" in ast.unparse(d) for d in node.decorator_list):
                    long.append(f"{module_name(path)}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not long, long
