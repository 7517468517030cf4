"""The layout's promises that import-linter does not check (its contracts, in pyproject.toml, hold
the layers: `lint-imports` in make test): no import cycle inside a package of `common/`, no crowded
folder, thin handlers, and each table's statements with the concept that owns it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["common", "functions", "cli", "tools"]
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


def test_the_core_is_grouped_by_concept() -> None:
    """No folder of `common/` holds more than a dozen modules side by side: a concept that outgrows
    one module becomes a package of its own (the layers between packages: pyproject.toml)."""
    crowded = {
        folder.relative_to(ROOT).as_posix(): n
        for folder in [ROOT / "common", *(p.parent for p in (ROOT / "common").rglob("__init__.py"))]
        if (n := len([m for m in folder.glob("*.py") if m.name != "__init__.py"])) > 12
    }
    assert not crowded, crowded


def test_handlers_are_thin() -> None:
    """A Lambda entry point parses the trigger, calls the core, shapes the answer: a few lines."""
    fat = {
        path.relative_to(ROOT).as_posix(): n
        for path in sorted((ROOT / "functions").glob("*/handler.py"))
        if (n := len(path.read_text().splitlines())) > 60
    }
    assert not fat, fat


def test_sql_for_the_dead_letter_store_lives_in_one_module() -> None:
    """Every statement naming rejected_events is in common/dead_letters/store.py (the migrations aside)."""
    owners = {
        path.relative_to(ROOT).as_posix()
        for package in ("common", "functions", "cli")
        for _, path in modules(package)
        if any("rejected_events" in statement for statement in _sql_strings(path))
    }
    # reconcile.py and reports.py read across every table (books and monitoring), by design;
    # dead_letter_retention.py is the store's retention, split off to keep each module to one job.
    allowed = {
        "common/dead_letters/store.py",
        "common/dead_letters/retention.py",
        "common/operations/reconcile.py",
        "common/reads/summary.py",
    }
    assert owners <= allowed, owners


def test_the_pollers_tables_have_one_owner() -> None:
    """consumer_lag, poller_status and poller_commands: every statement in common/adapters/consumer_lag.py."""
    owners = {
        path.relative_to(ROOT).as_posix()
        for package in ("common", "functions", "cli")
        for _, path in modules(package)
        if any(
            re.search(r"\b(consumer_lag|poller_status|poller_commands)\b", statement)
            for statement in _sql_strings(path)
        )
    }
    assert owners == {"common/adapters/consumer_lag.py"}, owners


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
