"""common.adapters.migrate on fresh databases: idempotent, and safe when several deployers run it at once."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest

from common.adapters.migrate import DATA_TABLES, migrate, migration_files

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
VERSIONS = [path.stem for path in migration_files()]
LEDGER_TABLES = set(DATA_TABLES)

FreshDatabase = Callable[[], str]


def tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchall()
    return {row[0] for row in rows}


def recorded(conn: psycopg.Connection) -> list[tuple[str, object]]:
    return conn.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version").fetchall()


def test_there_is_a_ledger_migration() -> None:
    assert VERSIONS and sorted(VERSIONS) == VERSIONS
    assert "0001_ledger" in VERSIONS


def test_second_run_is_a_no_op(ledger_fresh_database: FreshDatabase) -> None:
    url = ledger_fresh_database()
    with psycopg.connect(url, autocommit=True) as conn:
        first = migrate(conn)
        applied = recorded(conn)
        conn.execute(
            "INSERT INTO stock (warehouse_id, product_id, quantity, updated_at) VALUES (%s, %s, 7, now())",
            (uuid4(), uuid4()),
        )

        second = migrate(conn)

        assert first == VERSIONS
        assert second == []
        assert recorded(conn) == applied  # not re-recorded
        assert LEDGER_TABLES | {"schema_migrations"} <= tables(conn)
        assert conn.execute("SELECT quantity FROM stock").fetchall() == [(7,)]  # data kept


def test_migrate_commits_on_a_non_autocommit_connection(ledger_fresh_database: FreshDatabase) -> None:
    url = ledger_fresh_database()
    with psycopg.connect(url) as conn:
        migrate(conn)

    with psycopg.connect(url) as other:
        assert tables(other) >= LEDGER_TABLES
        assert [v for v, _ in recorded(other)] == VERSIONS


def test_concurrent_migrations_from_threads_apply_the_schema_once(
    ledger_fresh_database: FreshDatabase,
) -> None:
    url = ledger_fresh_database()
    workers = 4
    connections = [psycopg.connect(url, autocommit=True) for _ in range(workers)]
    start = threading.Barrier(workers)

    def run(conn: psycopg.Connection) -> list[str]:
        start.wait()
        return migrate(conn)

    try:
        with ThreadPoolExecutor(workers) as pool:
            results = [f.result(timeout=60) for f in [pool.submit(run, c) for c in connections]]
    finally:
        for conn in connections:
            conn.close()

    assert sorted(results) == [[]] * (workers - 1) + [VERSIONS]
    with psycopg.connect(url) as conn:
        assert [v for v, _ in recorded(conn)] == VERSIONS
        assert tables(conn) >= LEDGER_TABLES


def test_concurrent_migrations_from_processes_apply_the_schema_once(
    ledger_fresh_database: FreshDatabase,
) -> None:
    url = ledger_fresh_database()
    command = [sys.executable, "-m", "cli", "migrate", "--database-url", url]

    processes = [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    finished = [p.communicate(timeout=60) for p in processes]

    assert [p.returncode for p in processes] == [0, 0], finished
    outputs = sorted(out.strip() for out, _ in finished)
    assert outputs == [f"migrations applied: {', '.join(VERSIONS)}", "migrations applied: none (up to date)"]
    with psycopg.connect(url) as conn:
        assert [v for v, _ in recorded(conn)] == VERSIONS
        assert tables(conn) >= LEDGER_TABLES


def test_an_applied_migration_edited_afterwards_is_refused(
    ledger_fresh_database: FreshDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from common.adapters import migrate as migrations

    url = ledger_fresh_database()
    for path in migration_files():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(migrations, "MIGRATIONS_DIR", tmp_path)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        first = tmp_path / f"{VERSIONS[0]}.sql"
        first.write_text(first.read_text() + "\n-- edited after it was applied\n")

        with pytest.raises(migrations.MigrationError, match=f"{VERSIONS[0]} was edited after it was applied"):
            migrate(conn)
        states = {s.version: s.state for s in migrations.status(conn)}

    assert states[VERSIONS[0]] == "edited"
    assert all(states[v] == "applied" for v in VERSIONS[1:])


def test_status_names_pending_and_applied_migrations(ledger_fresh_database: FreshDatabase) -> None:
    from common.adapters.migrate import status

    url = ledger_fresh_database()
    with psycopg.connect(url, autocommit=True) as conn:
        before = {s.version: s.state for s in status(conn)}
        migrate(conn)
        after = {s.version: (s.state, s.applied_at is not None) for s in status(conn)}
    assert before == dict.fromkeys(VERSIONS, "pending")
    assert after == dict.fromkeys(VERSIONS, ("applied", True))


def test_rows_recorded_before_checksums_get_theirs_on_the_next_run(
    ledger_fresh_database: FreshDatabase,
) -> None:
    from common.adapters.migrate import checksum

    url = ledger_fresh_database()
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        conn.execute("UPDATE schema_migrations SET checksum = NULL")
        assert migrate(conn) == []
        rows: dict[str, str] = dict(
            conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
        )
    assert rows == {path.stem: checksum(path) for path in migration_files()}


def test_the_console_script_lists_its_subcommands_and_migrates(ledger_fresh_database: FreshDatabase) -> None:
    url = ledger_fresh_database()
    help_text = subprocess.run(
        [sys.executable, "-m", "cli", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "migrate" in help_text and "replay" in help_text
    status = subprocess.run(
        [sys.executable, "-m", "cli", "migrate", "status", "--database-url", url],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert [line.split()[:2] for line in status.splitlines()] == [[v, "pending"] for v in VERSIONS]
