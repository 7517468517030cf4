"""Stock as of a past time after the event log was trimmed (EVENT_LOG_RETENTION_DAYS): the
opening balance the old events were folded into counts, and a time before the fold is refused."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

import psycopg
import pytest

from common.ledger.apply import apply_events
from common.ledger.fold import fold_before
from common.reads.stock import BeforeRetainedLog, warehouse_stock
from tests.integration.ledger.conftest import ledger_event

pytestmark = pytest.mark.integration


def now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]


def quantities(page: object) -> dict[object, int]:
    return {item.product_id: item.quantity for item in page.items}  # type: ignore[attr-defined]


def test_as_of_after_a_fold_counts_the_opening_balance(ledger_conn: psycopg.Connection) -> None:
    warehouse, p1, p2 = uuid4(), uuid4(), uuid4()
    moments: list[tuple[datetime, dict[object, int]]] = []
    for product, kind, quantity in [(p1, "arrival", 10), (p2, "arrival", 4), (p1, "departure", 3),
                                    (p1, "arrival", 5), (p2, "departure", 4)]:  # fmt: skip
        apply_events(ledger_conn, [ledger_event(uuid4(), kind, warehouse, product, quantity)])
        moments.append((now(ledger_conn), quantities(warehouse_stock(ledger_conn, warehouse, limit=10))))
    cutoff = moments[2][0]

    folded = fold_before(ledger_conn, cutoff)

    assert folded.events == 3
    for moment, expected in moments[2:]:
        assert quantities(warehouse_stock(ledger_conn, warehouse, as_of=moment)) == expected, moment
    with pytest.raises(BeforeRetainedLog):
        warehouse_stock(ledger_conn, warehouse, as_of=moments[0][0])


def test_the_console_page_refuses_a_time_before_the_fold(
    ledger_conn: psycopg.Connection, ledger_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from common.adapters import db
    from common.adapters.config import get_settings
    from functions.console.routes import router
    from functions.http.app import make_app

    warehouse, product = uuid4(), uuid4()
    apply_events(ledger_conn, [ledger_event(uuid4(), "arrival", warehouse, product, 3)])
    before = now(ledger_conn)
    apply_events(ledger_conn, [ledger_event(uuid4(), "arrival", warehouse, product, 4)])
    fold_before(ledger_conn, now(ledger_conn))
    monkeypatch.setenv("DATABASE_URL", ledger_database_url)
    get_settings.cache_clear()
    db.close_pool()
    try:
        with TestClient(make_app([router], lambda_mode=False)) as client:
            answer = client.get(f"/ui/warehouses/{warehouse}", params={"as_of": before.isoformat()})
    finally:
        db.close_pool()
        get_settings.cache_clear()
    assert answer.status_code == 422 and "as_of" in answer.text
