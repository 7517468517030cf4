"""The versioned SQL migrations in `common/migrations/`, applied in order, each exactly once.

Safe to run twice (applied versions are recorded) and from several processes at once (a
transaction-scoped advisory lock serialises them; the loser finds the work done). Each applied
file's SHA-256 is recorded: a migration edited after it was applied is an error, not a silent
divergence between databases (fix forward with a new file instead).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import psycopg

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
# Every table the migrations create that holds data, referencing tables first (so deleting in
# this order never trips a foreign key): what tests and benchmarks empty between runs.
DATA_TABLES = (
    "dead_letter_outbox",
    "stock",
    "movements",
    "movement_events",
    "rejected_events",
    "event_outcome_counts",
    "consumer_lag",
    "poller_status",
    "poller_commands",
    "stock_opening",
)
# An arbitrary constant naming "schema migrations" among advisory locks.
MIGRATION_LOCK_ID = 7_301_448_512


class MigrationError(RuntimeError):
    """The database's migrations disagree with the files (an applied file was edited or removed)."""


@dataclass(frozen=True)
class MigrationState:
    version: str
    state: Literal["applied", "pending", "edited", "missing"]
    applied_at: datetime | None


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ensure_table(conn: psycopg.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    text PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # Recorded since the checksums were introduced; older rows get theirs on the next run.
    conn.execute("ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text")


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations in one transaction; return the versions applied now.

    Raises MigrationError, applying nothing, when an applied migration's file changed.
    """
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        # A migration may rewrite a large table: the service's statement timeout is not for it.
        conn.execute("SET LOCAL statement_timeout = 0")
        _ensure_table(conn)
        done: dict[str, str | None] = dict(
            conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
        )
        files = {path.stem: path for path in migration_files()}
        for version, recorded in done.items():
            if version in files and recorded is not None and recorded != checksum(files[version]):
                raise MigrationError(
                    f"migration {version} was edited after it was applied (recorded sha256 {recorded[:12]}, "
                    f"file {checksum(files[version])[:12]}): restore it and add a new migration instead"
                )
        for version, path in files.items():
            if version in done:
                if done[version] is None:
                    conn.execute(
                        "UPDATE schema_migrations SET checksum = %s WHERE version = %s",
                        (checksum(path), version),
                    )
                continue
            conn.execute(path.read_bytes())  # trusted SQL from the repository
            conn.execute(
                "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)", (version, checksum(path))
            )
            applied_now.append(version)
    return applied_now


def status(conn: psycopg.Connection) -> list[MigrationState]:
    """Every migration, file or database row, with its state; nothing is changed."""
    with conn.transaction():
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        rows: dict[str, tuple[str | None, datetime]] = {}
        if exists and exists[0]:
            has_checksum = conn.execute(
                "SELECT 1 FROM information_schema.columns "
                "WHERE table_name = 'schema_migrations' AND column_name = 'checksum'"
            ).fetchone()
            query = "SELECT version, {}, applied_at FROM schema_migrations".format(
                "checksum" if has_checksum else "NULL"
            )
            rows = {v: (c, at) for v, c, at in conn.execute(query.encode())}  # constant SQL
    files = {path.stem: path for path in migration_files()}
    states = []
    for version in sorted(set(files) | set(rows)):
        if version not in rows:
            states.append(MigrationState(version, "pending", None))
        elif version not in files:
            states.append(MigrationState(version, "missing", rows[version][1]))
        else:
            recorded, at = rows[version]
            edited = recorded is not None and recorded != checksum(files[version])
            states.append(MigrationState(version, "edited" if edited else "applied", at))
    return states
