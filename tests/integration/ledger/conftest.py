"""Fixtures for the ledger's integration tests, independent of any other conftest.

They run against a real PostgreSQL: the database named by LEDGER_DATABASE_URL with `_test`
appended, created and migrated when missing. By default that is the server of DATABASE_URL (so
`make test` on other ports follows it) and a database `<db>_ledger_test` of its own, since these
tests empty the ledger tables before each test.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from common.adapters.migrate import DATA_TABLES, migrate
from common.domain.events import IncomingEvent, Origin, parse_event

ROOT = Path(__file__).resolve().parents[3]

DEFAULT_DATABASE_URL = "postgresql://warehouse:warehouse@127.0.0.1:5432/warehouse"
LEDGER_TABLES = DATA_TABLES

EventFactory = Callable[..., IncomingEvent]


def ledger_test_url() -> str:
    """The test database's URL: LEDGER_DATABASE_URL's database name with `_test` appended."""
    explicit = os.environ.get("LEDGER_DATABASE_URL")
    base = psycopg.conninfo.conninfo_to_dict(
        explicit or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    name = str(base.get("dbname") or "warehouse")
    if not explicit:
        name = name.removesuffix("_test") + "_ledger"
    base["dbname"] = f"{name}_test"
    return psycopg.conninfo.make_conninfo(**base)  # type: ignore[arg-type]


def ledger_create_database(url: str) -> None:
    """CREATE DATABASE for `url` through the `postgres` maintenance database, if it is missing."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    name = str(params["dbname"])
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            # Another session may create it meanwhile.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def ledger_drop_database(url: str) -> None:
    name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def ledger_truncate(conn: psycopg.Connection) -> None:
    """Empty the ledger's tables (the schema stays).

    DELETE, not TRUNCATE: on the few rows a test leaves it is ten times faster; the session starts
    with a real TRUNCATE so the tables never grow large.
    """
    with conn.transaction():
        for table in LEDGER_TABLES:
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))


@pytest.fixture(scope="session")
def ledger_database_url() -> str:
    """A migrated test database, created on first use."""
    url = ledger_test_url()
    try:
        ledger_create_database(url)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for the ledger integration tests: {exc}", pytrace=False)
    with psycopg.connect(url, connect_timeout=5) as conn:
        migrate(conn)
        conn.execute("TRUNCATE " + ", ".join(LEDGER_TABLES) + " RESTART IDENTITY")
        conn.commit()
    return url


# Commits need not wait for the disk in tests: same visibility and locking, a fraction of the time.
LEDGER_CONNECT_OPTIONS = "-c synchronous_commit=off"


def ledger_open(url: str) -> psycopg.Connection:
    """An autocommit connection to the test database: each apply_events call commits on its own."""
    return psycopg.connect(url, autocommit=True, connect_timeout=5, options=LEDGER_CONNECT_OPTIONS)


@pytest.fixture(scope="session")
def ledger_session_conn(ledger_database_url: str) -> Iterator[psycopg.Connection]:
    conn = ledger_open(ledger_database_url)
    yield conn
    conn.close()


@pytest.fixture
def ledger_connect(ledger_database_url: str) -> Iterator[Callable[[], psycopg.Connection]]:
    """Opens further connections to the test database (like `ledger_open`), closed after the test."""
    opened: list[psycopg.Connection] = []

    def connect() -> psycopg.Connection:
        conn = ledger_open(ledger_database_url)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture(scope="session")
def ledger_empty_tables() -> Callable[[psycopg.Connection], None]:
    """`ledger_truncate` for tests that empty the tables themselves (one hypothesis example each)."""
    return ledger_truncate


@pytest.fixture
def ledger_conn(ledger_session_conn: psycopg.Connection) -> psycopg.Connection:
    """An autocommit connection to empty ledger tables (shared by the session's tests)."""
    conn = ledger_session_conn
    if conn.closed or conn.broken:
        pytest.fail("the shared ledger test connection was closed by an earlier test")
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()
    ledger_truncate(conn)
    return conn


@pytest.fixture
def ledger_fresh_database(ledger_database_url: str) -> Iterator[Callable[[], str]]:
    """Creates empty databases (no schema) named after the test database; dropped after the test."""
    created: list[str] = []

    def create() -> str:
        name = (
            f"{psycopg.conninfo.conninfo_to_dict(ledger_database_url)['dbname']}_fresh_{uuid.uuid4().hex[:8]}"
        )
        url = psycopg.conninfo.make_conninfo(ledger_database_url, dbname=name)
        ledger_create_database(url)
        created.append(url)
        return url

    yield create
    for url in created:
        ledger_drop_database(url)


def ledger_payload(
    movement_id: UUID | str,
    event: str,
    warehouse_id: UUID | str,
    product_id: UUID | str,
    quantity: Any,
    timestamp: Any = "2025-02-18T12:12:56Z",
    envelope_id: str = "b3b53031-e83a-4654-87f5-b6b6fb09fd99",
) -> dict[str, Any]:
    """The brief's envelope around one half of a movement."""
    return {
        "id": envelope_id,
        "source": "WH-3322",
        "specversion": "1.0",
        "type": "ru.retail.warehouses.movement",
        "datacontenttype": "application/json",
        "dataschema": "ru.retail.warehouses.movement.v1.0",
        "time": 1737439421623,
        "subject": f"WH-3322:{event.upper()}",
        "destination": "ru.retail.warehouses",
        "data": {
            "movement_id": str(movement_id),
            "warehouse_id": str(warehouse_id),
            "timestamp": timestamp,
            "event": event,
            "product_id": str(product_id),
            "quantity": quantity,
        },
    }


def ledger_event(
    movement_id: UUID | str,
    event: str,
    warehouse_id: UUID | str,
    product_id: UUID | str,
    quantity: Any,
    timestamp: Any = "2025-02-18T12:12:56Z",
    envelope_id: str = "b3b53031-e83a-4654-87f5-b6b6fb09fd99",
    origin: Origin | None = None,
) -> IncomingEvent:
    """A valid incoming event, parsed from JSON exactly as an entry point would."""
    raw = json.dumps(
        ledger_payload(movement_id, event, warehouse_id, product_id, quantity, timestamp, envelope_id)
    ).encode()
    item = parse_event(raw, origin or Origin.webhook())
    assert item.is_valid, item.errors
    return item


@pytest.fixture(scope="session")
def ledger_make_event() -> EventFactory:
    """`ledger_event` as a fixture: (movement_id, event, warehouse_id, product_id, quantity, ...)."""
    return ledger_event
