"""The layout's promises, read from the code's own imports: no loop, no arrow running back up.

Layers, bottom to top: `common` (the shared core) <- `functions` (the deployable handlers and the
local app) <- `cli` (operator commands) <- `tools` (benchmarks, fault suite) and `tests`. A module
may import its own layer and the layers below it, never above; within `common`, no import cycle.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["common", "functions", "cli", "tools"]
MAX_COMMON_MODULE_LINES = 320
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|FROM|JOIN)\b")


def modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if any(part.startswith(".") for part in parts):  # tools/lint/.venv and the like
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def imports_of(path: Path) -> set[str]:
    """Absolute module names imported anywhere in the file (functions' bodies included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def layer_of(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top in LAYERS or top == "tests" else None


@pytest.mark.parametrize("package", LAYERS)
def test_no_module_imports_a_layer_above_its_own(package: str) -> None:
    allowed = set(LAYERS[: LAYERS.index(package) + 1])
    upward = [
        f"{name} imports {target}"
        for name, path in modules(package)
        for target in imports_of(path)
        if (layer := layer_of(target)) is not None and layer not in allowed
    ]
    assert not upward, "\n".join(upward)


def test_the_shared_core_has_no_import_cycle() -> None:
    names = {name for name, _ in modules("common")}
    graph = {
        name: {t for t in imports_of(path) if t in names and t != name} for name, path in modules("common")
    }
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in graph[node]:
            if nxt in trail:
                cycles.append(trail[trail.index(nxt) :] + [nxt])
            elif len(trail) < len(graph):
                visit(nxt, [*trail, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert not cycles, "import cycles in common/: " + "; ".join(" -> ".join(c) for c in cycles[:5])


def test_no_module_of_the_core_outgrows_one_job() -> None:
    long = {
        path.relative_to(ROOT).as_posix(): n
        for _, path in modules("common")
        if (n := len(path.read_text().splitlines())) > MAX_COMMON_MODULE_LINES
    }
    assert not long, f"modules over {MAX_COMMON_MODULE_LINES} lines: {long}"


def test_handlers_are_thin() -> None:
    """A Lambda entry point parses the trigger, calls the core, shapes the answer: a few lines."""
    fat = {
        path.relative_to(ROOT).as_posix(): n
        for path in sorted((ROOT / "functions").glob("*/handler.py"))
        if (n := len(path.read_text().splitlines())) > 60
    }
    assert not fat, fat


def test_sql_for_the_dead_letter_store_lives_in_one_module() -> None:
    """Every statement naming rejected_events is in common/dead_letters.py (the migrations aside)."""
    owners = {
        path.relative_to(ROOT).as_posix()
        for package in ("common", "functions", "cli")
        for _, path in modules(package)
        if any("rejected_events" in statement for statement in _sql_strings(path))
    }
    # reconcile.py and reports.py read across every table (books and monitoring), by design.
    assert owners <= {"common/dead_letters.py", "common/reconcile.py", "common/reports.py"}, owners


def _sql_strings(path: Path) -> list[str]:
    """The string constants of a module that are SQL statements (not docstrings, not bare names)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and SQL.search(node.value)
    ]
