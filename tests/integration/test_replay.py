"""Replay of dead letters, end to end through `common.ledger.use_cases.replay` and its CLI.

What an operator relies on: a departure refused for lack of stock can be re-applied once the goods
have arrived, exactly once, and a replay never turns a bad payload into stock.
"""

from __future__ import annotations

import asyncio
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

from common.adapters import cache, db
from common.adapters.config import get_settings
from common.domain.events import Origin, parse_event
from common.domain.outcomes import Reason
from common.ledger import use_cases as service

ROOT = Path(__file__).resolve().parents[2]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/4"
TOKEN = "replay-test-token-3f9a"


@pytest.fixture
def conn(clean_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[psycopg.Connection]:
    """Empty ledger tables; the service (pool, settings, cache client) pointed at the test database."""
    monkeypatch.setenv("DATABASE_URL", clean_db)
    monkeypatch.setenv("REDIS_URL", os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    for name in ("WEBHOOK_TOKEN", "OPERATOR_TOKEN", "OPERATOR_TOKEN_SECRET_ARN", "OPERATOR_AUTH"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    db.close_pool()
    cache.reset()
    with psycopg.connect(clean_db, autocommit=True, connect_timeout=5) as connection:
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

    results = service.replay(reason=Reason.INSUFFICIENT_STOCK)

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

    async def load() -> bytes:
        return str(stock_of(conn, warehouse, product)).encode()

    with asyncio.Runner() as loop:  # the cache's async client belongs to this loop
        assert loop.run(cache.read_through(name, load)) == b"15"
        service.replay(ids=[rejected_id])
        assert loop.run(cache.read_through(name, load)) == b"7"


def test_replay_of_an_unknown_id_replays_nothing(conn: psycopg.Connection) -> None:
    assert service.replay(ids=[987654321]) == []


def test_cli_replays_by_id_and_by_reason(conn: psycopg.Connection, database_url: str) -> None:
    rejected_id, warehouse, product = refused_departure(conn)
    env = {**os.environ, "DATABASE_URL": database_url, "CACHE_ENABLED": "false"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", "replay", *args],
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


# --- POST /api/v1/rejected-events/{id}/replay ----------------------------------------------------


def replay_client() -> Any:
    """The replay function's own app (what its Lambda serves), in process."""
    from fastapi.testclient import TestClient

    from functions.http.app import make_app
    from functions.replay.routes import router

    return TestClient(make_app([router], lambda_mode=True), raise_server_exceptions=False)


def replay_url(rejected_id: int | str) -> str:
    return f"/api/v1/rejected-events/{rejected_id}/replay"


def test_route_replays_once_then_answers_duplicate(conn: psycopg.Connection) -> None:
    rejected_id, warehouse, product = refused_departure(conn)
    client = replay_client()

    first = client.post(replay_url(rejected_id))
    again = client.post(replay_url(rejected_id))

    assert first.status_code == 200, first.text
    expected = {"rejected_event_id": rejected_id, "status": "applied", "reason": None, "detail": None}
    assert first.json() == expected
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert stock_of(conn, warehouse, product) == 7


def test_route_answers_a_refusal_that_still_stands(conn: psycopg.Connection) -> None:
    warehouse, product = uuid.uuid4(), uuid.uuid4()
    refused = ingest(payload(uuid.uuid4(), "departure", warehouse, product, 4))

    response = replay_client().post(replay_url(refused.rejected_event_id))

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["reason"]) == ("rejected", "insufficient_stock")
    assert "exceeds the 0 on hand" in body["detail"]


def test_route_404_for_an_unknown_id(conn: psycopg.Connection) -> None:
    response = replay_client().post(replay_url(424242))

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"] == "rejected event 424242 not found"


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", str(2**63), "1.5"])
def test_route_422_for_an_id_that_cannot_exist(conn: psycopg.Connection, bad_id: str) -> None:
    response = replay_client().post(replay_url(bad_id))

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "rejected_event_id"


def test_route_requires_the_operator_token_when_one_is_set(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    rejected_id, warehouse, product = refused_departure(conn)
    webhook_token = "producers-token-9c1e"
    monkeypatch.setenv("OPERATOR_TOKEN", TOKEN)
    monkeypatch.setenv("WEBHOOK_TOKEN", webhook_token)
    get_settings.cache_clear()
    client = replay_client()

    refused = [
        client.post(replay_url(rejected_id)),
        client.post(replay_url(rejected_id), headers={"Authorization": f"Bearer {TOKEN}x"}),
        client.post(replay_url(rejected_id), headers={"Authorization": f"Bearer {TOKEN[:-1]}"}),
        client.post(replay_url(rejected_id), headers={"Authorization": f"Basic {TOKEN}"}),
        client.post(replay_url(rejected_id), headers={"Authorization": "Bearer"}),
        # The producers' token writes events; it never replays them.
        client.post(replay_url(rejected_id), headers={"Authorization": f"Bearer {webhook_token}"}),
        # Checked before the path: a caller without the token learns nothing about ids.
        client.post(replay_url("not-an-id")),
    ]
    for response in refused:
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in response.text
    assert stock_of(conn, warehouse, product) == 15  # nothing was replayed

    allowed = client.post(replay_url(rejected_id), headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200 and allowed.json()["status"] == "applied"
    assert stock_of(conn, warehouse, product) == 7


def test_route_answers_503_with_retry_after_when_postgres_is_unreachable(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 1: every connection attempt is refused at once.
    monkeypatch.setenv("DATABASE_URL", "postgresql://warehouse:s3cret-pw@127.0.0.1:1/nowhere")
    monkeypatch.setenv("DB_POOL_MAX", "1")
    monkeypatch.setenv("DB_POOL_TIMEOUT_SECONDS", "1")  # the outage answers within a second
    get_settings.cache_clear()
    db.close_pool()

    response = replay_client().post(replay_url(1))

    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert "s3cret-pw" not in response.text and "Traceback" not in response.text


def test_lambda_handler_serves_the_route(conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployed entry point: an API Gateway HTTP API (payload 2.0) event through Mangum."""
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "WarehouseTest")
    rejected_id, warehouse, product = refused_departure(conn)
    from functions.replay.handler import handler

    path = replay_url(rejected_id)
    event = {
        "version": "2.0",
        "routeKey": "POST /api/v1/rejected-events/{rejected_event_id}/replay",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "api.example.test", "content-length": "0"},
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "api.example.test",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "replay-test-request",
            "routeKey": "POST /api/v1/rejected-events/{rejected_event_id}/replay",
            "stage": "$default",
            "time": "26/Nov/2026:04:00:00 +0000",
            "timeEpoch": 1795665600000,
        },
        "pathParameters": {"rejected_event_id": str(rejected_id)},
        "isBase64Encoded": False,
    }

    class Context:
        function_name = "replay"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:eu-west-1:000000000000:function:replay"
        aws_request_id = "replay-test-request"

    answer = handler(event, Context())

    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["status"] == "applied"
    assert stock_of(conn, warehouse, product) == 7
