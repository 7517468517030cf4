"""README true to the code (issue 23): its settings tables against `common/adapters/config.py`, its
command table against the `warehouse-stock` parser, its endpoint table against the app's routes,
and the statements that once contradicted the code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from common.adapters.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
# Read by infra/scripts/stack.sh and make, not by the service (README's "Read by the local stack").
STACK_ONLY = {
    "POSTGRES_PORT", "REDIS_PORT", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "KAFKA_HEAP_OPTS", "STACK_DIR",
    "PYTHON", "MAVEN_ARGS", "APP_HOST", "APP_PORT", "APP_WORKERS", "KAFKA_POLLERS",
}  # fmt: skip


def section(title: str) -> str:
    """The text of README's `## title` section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, flags=re.MULTILINE | re.DOTALL)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """The cells of every table row in `text`, header and rule rows left out."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", " "}:
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells and cells[0] not in ("Variable", "Method and path", "Command", "Outcome", "Measurement"):
            rows.append(cells)
    return rows


def settings_rows() -> dict[str, str]:
    """Each variable README's configuration tables name, with its Default cell."""
    rows: dict[str, str] = {}
    for cells in table_rows(section("Configuration")):
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
            rows[name] = cells[1]
    return rows


def test_readme_settings_tables_are_the_settings() -> None:
    documented = settings_rows()
    read = {name.upper() for name in Settings.model_fields}
    assert sorted(read - set(documented)) == [], "settings the README does not list"
    # A few are read by a library or os.environ directly (OpenTelemetry's endpoint, say): the code names them.
    code = "\n".join(p.read_text() for d in ("common", "functions", "cli") for p in (ROOT / d).rglob("*.py"))
    elsewhere = {name for name in documented if f'"{name}"' in code}
    assert sorted(set(documented) - read - STACK_ONLY - elsewhere) == [], (
        "README lists settings nothing reads"
    )


def _literal(default: Any) -> str | None:
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, int | float | str) and not isinstance(default, bool):
        return str(default)
    return None


def test_readme_defaults_are_the_code_defaults() -> None:
    wrong = []
    for name, cell in settings_rows().items():
        field = Settings.model_fields.get(name.lower())
        if field is None or field.default is None:
            continue
        literal = _literal(field.default)
        shown = re.match(r"^`([^`]*)`$", cell)
        if literal is not None and shown and shown.group(1) not in (literal, literal.rstrip("0").rstrip(".")):
            wrong.append(f"{name}: README {shown.group(1)!r}, code {literal!r}")
    assert not wrong, wrong


def test_readme_command_table_is_the_cli() -> None:
    from cli.main import build_parser

    parser = build_parser()
    commands = set(next(a for a in parser._actions if a.dest == "command").choices or {})  # noqa: SLF001
    documented = {
        match
        for cells in table_rows(section("Operator commands"))
        for match in re.findall(r"`warehouse-stock ([a-z-]+)", cells[0])
    }
    assert commands == documented


def test_readme_endpoint_table_is_the_apps_routes() -> None:
    from functions.local_app.main import app

    def shape(path: str) -> str:  # `{id}` in the table is `{rejected_event_id}` in the code
        return re.sub(r"\{[^}]+\}", "{}", path.strip())

    routes = {(method.upper(), shape(path)) for path, ops in app.openapi()["paths"].items() for method in ops}
    documented = set()
    for cells in table_rows(section("Endpoints")):
        for method, path in re.findall(r"`(GET|POST|PUT|DELETE|PATCH) ([^`?]+)", cells[0]):
            if not path.startswith(("/ui/", "/static/")):  # the console's pages: docs/console.md
                documented.add((method, shape(path)))
    assert sorted(routes - documented) == [], "routes the README's endpoint table lacks"
    assert sorted(documented - routes) == [], "README rows no route serves"


def test_known_contradictions_stay_fixed() -> None:
    development = (ROOT / "docs" / "development.md").read_text()
    for text in (README, development):
        assert "not part of make test" not in text  # mypy runs in make test (infra/scripts/stack.sh)
    assert "mypy" in (ROOT / "infra" / "scripts" / "stack.sh").read_text()
    assert "without cli" not in README and "without the cli" not in README
    assert "COPY cli" in (ROOT / "Dockerfile").read_text() or "cli/" in (ROOT / "Dockerfile").read_text()
    ready = next(cells[1] for cells in table_rows(section("Endpoints")) if cells[0] == "`GET /ready`")
    # Without a poller thread in the process (make run's pollers are processes of their own),
    # /ready's kafka field is whether the broker takes a connection (functions/local_app/main.py).
    main = (ROOT / "functions" / "local_app" / "main.py").read_text()
    for state in ("reachable", "unreachable"):
        assert f'"{state}"' in main
        assert f"`{state}`" in ready, f"/ready's kafka value {state!r} is not in README"
