"""Apply the versioned SQL migrations in `common/migrations/`: `python -m common.migrate`.

Safe to run twice (applied versions are recorded) and from several processes at once (a
transaction-scoped advisory lock serialises them; the loser finds the work done).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import psycopg

from common.db import connect

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
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
)
# An arbitrary constant naming "schema migrations" among advisory locks.
MIGRATION_LOCK_ID = 7_301_448_512

logger = logging.getLogger(__name__)


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations in one transaction; return the versions applied now."""
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    text PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for path in migration_files():
            version = path.stem
            if version in done:
                continue
            conn.execute(path.read_text())  # type: ignore[arg-type]  # trusted file from the repo
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied_now.append(version)
    return applied_now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", help="defaults to DATABASE_URL / DB_SECRET_ARN")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    with connect(args.database_url) as conn:
        applied = migrate(conn)
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
