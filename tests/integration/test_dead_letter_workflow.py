"""The dead-letter workflow (issue 23) on the real test database, through the operator routes:
resolve with a note, resolve and replay by filter, the applied version beside a refused conflict,
webhook refusals answered, every action audited and the audit surviving retention."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from common.adapters import db
from common.adapters.config import get_settings
from common.domain.events import Origin, parse_event
from common.ledger.apply import apply_events
from tests.e2e.support import body, envelope

pytestmark = pytest.mark.integration

TOKEN = "operator-secret-for-the-workflow"
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Operator": "anna"}


@pytest.fixture
def client(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from functions.http.app import make_app
    from functions.list_resources.routes import router as list_router
    from functions.replay.routes import router as replay_router

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("OPERATOR_TOKEN", TOKEN)
    for name in ("DB_SECRET_ARN", "OPERATOR_TOKEN_SECRET_ARN", "OPERATOR_AUTH"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    db.close_pool()
    yield TestClient(make_app([list_router, replay_router], lambda_mode=True), raise_server_exceptions=False)
    db.close_pool()
    get_settings.cache_clear()


def apply(database_url: str, *envs: dict[str, Any], kind: str = "kafka") -> list[Any]:
    topic = "t-" + uuid.uuid4().hex
    with psycopg.connect(database_url) as conn:
        outcomes = []
        for i, env in enumerate(envs):
            where = Origin.webhook() if kind == "webhook" else Origin.kafka(topic, 0, i)
            outcomes += apply_events(conn, [parse_event(body(env), where)], auto_replay_window=0)
        conn.commit()
    return outcomes


def half(event: str, movement: str, warehouse: str, product: str, quantity: int) -> dict[str, Any]:
    return envelope(
        event, movement_id=movement, warehouse_id=warehouse, product_id=product, quantity=quantity
    )


def test_conflict_shows_the_applied_version_is_not_replayable_and_is_resolved_with_a_note(
    client: TestClient, database_url: str
) -> None:
    w, p, m = (str(uuid.uuid4()) for _ in range(3))
    first, changed = half("arrival", m, w, p, 10), half("arrival", m, w, p, 12)
    (_, refused) = apply(database_url, first, changed)
    rid = refused.rejected_event_id
    one = client.get(f"/api/v1/rejected-events/{rid}", headers=AUTH).json()
    assert one["reason"] == "conflict" and one["replayable"] is False
    assert [(a["event"], a["quantity"]) for a in one["applied"]] == [("arrival", 10)]

    answer = client.post(
        f"/api/v1/rejected-events/{rid}/resolve", headers=AUTH, json={"note": "sender fixed it"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["resolved_ids"] == [rid]
    again = client.post(f"/api/v1/rejected-events/{rid}/resolve", headers=AUTH, json={"note": "twice"})
    assert again.json()["resolved_ids"] == []  # the first resolution stands
    one = client.get(f"/api/v1/rejected-events/{rid}", headers=AUTH).json()
    assert (one["resolution"], one["resolved_by"], one["resolution_note"]) == (
        "resolved",
        "anna",
        "sender fixed it",
    )
    assert [(e["action"], e["actor"], e["note"]) for e in one["audit"]] == [
        ("resolve", "anna", "sender fixed it")
    ]
    unresolved = client.get(
        "/api/v1/rejected-events", headers=AUTH, params={"movement_id": m, "unresolved": True}
    )
    assert unresolved.json()["items"] == []
    assert (
        client.post(
            "/api/v1/rejected-events/999999999999/resolve", headers=AUTH, json={"note": "x"}
        ).status_code
        == 404
    )
    assert client.post(f"/api/v1/rejected-events/{rid}/resolve", json={"note": "x"}).status_code == 401


def test_bulk_replay_by_movement_leaves_conflicts_out_and_bulk_resolve_needs_a_filter(
    client: TestClient, database_url: str
) -> None:
    w, p, m = (str(uuid.uuid4()) for _ in range(3))
    # a departure before its stock, then the stock arrives (window 0 here: it waits for an operator)
    with psycopg.connect(database_url) as conn:
        (waiting,) = apply_events(conn, [parse_event(body(half("departure", m, w, p, 4)), Origin.webhook())])
        conn.commit()
    assert waiting.rejected_event_id is not None
    apply(database_url, half("arrival", str(uuid.uuid4()), w, p, 4), kind="webhook")
    # a webhook refusal is answered to its caller: not unresolved
    one = client.get(f"/api/v1/rejected-events/{waiting.rejected_event_id}", headers=AUTH).json()
    assert (one["resolution"], one["replayable"]) == ("answered", False)

    # a Kafka one waits for an operator: replay it in bulk by movement
    m2 = str(uuid.uuid4())
    (kafka_waiting,) = apply(database_url, half("departure", m2, w, p, 10))  # 4 on hand
    rid = kafka_waiting.rejected_event_id
    assert rid is not None
    apply(database_url, half("arrival", str(uuid.uuid4()), w, p, 10), kind="webhook")
    replayed = client.post("/api/v1/rejected-events/replay", headers=AUTH, json={"movement_id": m2})
    assert replayed.status_code == 200, replayed.text
    assert [(r["rejected_event_id"], r["status"]) for r in replayed.json()["results"]] == [(rid, "applied")]
    audit = client.get(f"/api/v1/rejected-events/{rid}", headers=AUTH).json()["audit"]
    assert [(e["action"], e["actor"], e["outcome"]) for e in audit] == [("replay", "anna", "applied")]

    assert (
        client.post("/api/v1/rejected-events/resolve", headers=AUTH, json={"note": "all"}).status_code == 422
    )
    assert (
        client.post("/api/v1/rejected-events/resolve", headers=AUTH, json={"movement_id": m2}).status_code
        == 422
    )


def test_the_audit_survives_retention(client: TestClient, database_url: str) -> None:
    from common.dead_letters.retention import delete_expired_resolved  # noqa: PLC0415

    w, p, m = (str(uuid.uuid4()) for _ in range(3))
    (refused,) = apply(database_url, half("departure", m, w, p, 2))
    rid = refused.rejected_event_id
    client.post(f"/api/v1/rejected-events/{rid}/resolve", headers=AUTH, json={"note": "written off"})
    with psycopg.connect(database_url, autocommit=True) as conn:
        old = datetime.now(UTC) - timedelta(days=400)
        conn.execute(
            "UPDATE rejected_events SET received_at = %s, resolved_at = %s WHERE id = %s", (old, old, rid)
        )
        delete_expired_resolved(conn, datetime.now(UTC) - timedelta(days=90), limit=100_000)
        assert conn.execute("SELECT 1 FROM rejected_events WHERE id = %s", (rid,)).fetchone() is None
        kept = conn.execute(
            "SELECT action, actor, note FROM dead_letter_audit WHERE rejected_event_id = %s", (rid,)
        )
        assert kept.fetchall() == [("resolve", "anna", "written off")]
