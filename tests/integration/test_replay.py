"""Replay of dead letters, end to end through `common.service.replay` and its CLI.

What an operator relies on: a departure refused for lack of stock can be re-applied once the goods
have arrived, exactly once, and a replay never turns a bad payload into stock.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `common` is not installed: make it importable however pytest runs
    sys.path.insert(0, str(ROOT))

from common import cache, db, service  # noqa: E402
from common.config import get_settings  # noqa: E402
from common.events import Origin, parse_event  # noqa: E402
from common.migrate import migrate  # noqa: E402

DEFAULT_BASE_URL = "postgresql://warehouse:warehouse@127.0.0.1:5432/rel_dev"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/4"
TABLES = ("stock", "movements", "movement_events", "rejected_events")


def _test_database_url() -> str:
    """DATABASE_URL's database with `_test` appended (rel_dev_test by default), never the dev one."""
    params = psycopg.conninfo.conninfo_to_dict(os.environ.get("DATABASE_URL") or DEFAULT_BASE_URL)
    name = str(params.get("dbname") or "rel_dev")
    params["dbname"] = name if name.endswith("_test") else f"{name}_test"
    return psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]


def _create_database(url: str) -> None:
    name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # created meanwhile
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def replay_db_url() -> str:
    url = _test_database_url()
    try:
        _create_database(url)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for the replay tests: {exc}", pytrace=False)
    with psycopg.connect(url, connect_timeout=5) as conn:
        migrate(conn)
    return url


@pytest.fixture
def conn(replay_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[psycopg.Connection]:
    """Empty ledger tables; the service (pool, settings, cache client) pointed at the test database."""
    monkeypatch.setenv("DATABASE_URL", replay_db_url)
    monkeypatch.setenv("REDIS_URL", os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    get_settings.cache_clear()
    db.close_pool()
    cache.reset()
    with psycopg.connect(replay_db_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute("TRUNCATE " + ", ".join(TABLES) + " RESTART IDENTITY")
        yield connection
    db.close_pool()
    cache.reset()
    get_settings.cache_clear()


def payload(movement_id: uuid.UUID, event: str, warehouse: uuid.UUID, product: uuid.UUID, qty: Any) -> bytes:
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "source": "WH-1",
            "specversion": "1.0",
            "type": "ru.retail.warehouses.movement",
            "time": 1737439421623,
            "data": {
                "movement_id": str(movement_id),
                "warehouse_id": str(warehouse),
                "product_id": str(product),
                "event": event,
                "quantity": qty,
                "timestamp": "2025-02-18T12:12:56Z",
            },
        }
    ).encode()


def ingest(raw: bytes) -> Any:
    (outcome,) = service.ingest([parse_event(raw, Origin.webhook())])
    return outcome


def stock_of(conn: psycopg.Connection, warehouse: uuid.UUID, product: uuid.UUID) -> int:
    row = conn.execute(
        "SELECT quantity FROM stock WHERE warehouse_id = %s AND product_id = %s", (warehouse, product)
    ).fetchone()
    return int(row[0]) if row else 0


def rejected_row(conn: psycopg.Connection, rejected_id: int) -> dict[str, Any]:
    cur = conn.execute(
        "SELECT reason, replay_status, replay_detail, replayed_at FROM rejected_events WHERE id = %s",
        (rejected_id,),
    )
    row = cur.fetchone()
    assert row is not None
    return dict(zip([c.name for c in cur.description or []], row, strict=True))


def refused_departure(conn: psycopg.Connection) -> tuple[int, uuid.UUID, uuid.UUID]:
    """A warehouse with 5 on hand, a departure of 8 refused (parked), then the 10 that were missing."""
    warehouse, product = uuid.uuid4(), uuid.uuid4()
    assert ingest(payload(uuid.uuid4(), "arrival", warehouse, product, 5)).status == "applied"
    refused = ingest(payload(uuid.uuid4(), "departure", warehouse, product, 8))
    assert (refused.status, refused.reason) == ("rejected", "insufficient_stock")
    assert refused.rejected_event_id is not None
    assert stock_of(conn, warehouse, product) == 5
    assert ingest(payload(uuid.uuid4(), "arrival", warehouse, product, 10)).status == "applied"
    return refused.rejected_event_id, warehouse, product


def test_replayed_departure_is_applied_once_after_its_stock_arrived(conn: psycopg.Connection) -> None:
    rejected_id, warehouse, product = refused_departure(conn)

    (result,) = service.replay(ids=[rejected_id])

    assert (result.rejected_event_id, result.status, result.reason) == (rejected_id, "applied", None)
    assert stock_of(conn, warehouse, product) == 5 + 10 - 8
    row = rejected_row(conn, rejected_id)
    assert row["reason"] == "insufficient_stock"  # the original refusal stays on record
    assert row["replay_status"] == "applied" and row["replayed_at"] is not None
    origins = conn.execute(
        "SELECT origin FROM movement_events WHERE warehouse_id = %s AND event = 'departure'", (warehouse,)
    ).fetchall()
    assert origins == [("replay",)]


def test_second_replay_is_a_duplicate_and_changes_nothing(conn: psycopg.Connection) -> None:
    rejected_id, warehouse, product = refused_departure(conn)
    service.replay(ids=[rejected_id])

    (again,) = service.replay(ids=[rejected_id])

    assert again.status == "duplicate"
    assert stock_of(conn, warehouse, product) == 7
    assert rejected_row(conn, rejected_id)["replay_status"] == "applied"  # not downgraded
    count = conn.execute("SELECT count(*) FROM movement_events WHERE warehouse_id = %s", (warehouse,))
    assert count.fetchone() == (3,)


def test_replay_by_reason_skips_resolved_rows(conn: psycopg.Connection) -> None:
    resolved_id, warehouse, product = refused_departure(conn)
    service.replay(ids=[resolved_id])
    # A second refusal that is still not coverable: 7 on hand, 50 asked.
    still_short = ingest(payload(uuid.uuid4(), "departure", warehouse, product, 50))
    assert still_short.reason == "insufficient_stock"
    # One of another reason, which a replay by reason must leave alone.
    invalid = ingest(b'{"not": "an envelope"}')
    assert invalid.reason == "invalid"

    results = service.replay(reason="insufficient_stock")

    assert [(r.rejected_event_id, r.status, r.reason) for r in results] == [
        (still_short.rejected_event_id, "rejected", "insufficient_stock")
    ]
    assert stock_of(conn, warehouse, product) == 7
    assert rejected_row(conn, invalid.rejected_event_id)["replayed_at"] is None
    short_row = rejected_row(conn, still_short.rejected_event_id)
    assert short_row["replay_status"] == "rejected"
    assert "exceeds the 7 on hand" in short_row["replay_detail"]


def test_replay_of_an_invalid_payload_stays_rejected_with_its_reason(conn: psycopg.Connection) -> None:
    warehouse, product = uuid.uuid4(), uuid.uuid4()
    bad = ingest(payload(uuid.uuid4(), "arrival", warehouse, product, -3))
    assert (bad.status, bad.reason) == ("rejected", "invalid")

    (result,) = service.replay(ids=[bad.rejected_event_id])

    assert (result.status, result.reason) == ("rejected", "invalid")
    assert result.detail and "data.quantity" in result.detail
    row = rejected_row(conn, bad.rejected_event_id)
    assert row["replay_status"] == "rejected" and "data.quantity" in row["replay_detail"]
    assert stock_of(conn, warehouse, product) == 0
    assert conn.execute("SELECT count(*) FROM movement_events").fetchone() == (0,)


def test_replay_refreshes_a_cached_stock_read(conn: psycopg.Connection) -> None:
    """A stock read cached before the replay is not served after it (the cache version is bumped)."""
    rejected_id, warehouse, product = refused_departure(conn)
    name = cache.stock_name(warehouse, product)

    def load() -> bytes:
        return str(stock_of(conn, warehouse, product)).encode()

    assert cache.read_through(name, load) == b"15"
    service.replay(ids=[rejected_id])
    assert cache.read_through(name, load) == b"7"


def test_replay_of_an_unknown_id_replays_nothing(conn: psycopg.Connection) -> None:
    assert service.replay(ids=[987654321]) == []


def test_cli_replays_by_id_and_by_reason(conn: psycopg.Connection, replay_db_url: str) -> None:
    rejected_id, warehouse, product = refused_departure(conn)
    env = {**os.environ, "DATABASE_URL": replay_db_url, "CACHE_ENABLED": "false"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "common.replay", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    first = cli("--id", str(rejected_id))
    assert first.returncode == 0, first.stderr
    assert [json.loads(line) for line in first.stdout.splitlines()] == [
        {"rejected_event_id": rejected_id, "status": "applied", "reason": None, "detail": None}
    ]
    assert "replayed 1: 1 applied" in first.stderr
    assert stock_of(conn, warehouse, product) == 7

    by_reason = cli("--reason", "insufficient_stock")
    assert by_reason.returncode == 0, by_reason.stderr
    assert by_reason.stdout == ""  # the only such row is resolved
    assert stock_of(conn, warehouse, product) == 7

    usage = cli()
    assert usage.returncode == 2 and "--id or --reason" in usage.stderr
