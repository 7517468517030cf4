"""A Kafka record is decided once: redelivered after its dead letter was written, it stays parked."""

from __future__ import annotations

from uuid import UUID, uuid4

import psycopg
import pytest

from common.events import IncomingEvent, Origin, parse_event
from common.ledger import apply_events
from common.views import get_stock
from tests.e2e.support import body, envelope, new_id

pytestmark = pytest.mark.integration


def _event(warehouse: UUID, product: UUID, kind: str, quantity: int, origin: Origin) -> IncomingEvent:
    payload = envelope(
        kind, movement_id=new_id(), warehouse_id=str(warehouse), product_id=str(product), quantity=quantity
    )
    return parse_event(body(payload), origin)


def test_a_parked_departure_redelivered_after_restock_stays_parked(db_conn: psycopg.Connection) -> None:
    warehouse, product, topic = uuid4(), uuid4(), f"redelivery-{uuid4()}"
    departure = _event(warehouse, product, "departure", 5, Origin.kafka(topic, 0, 7))

    [first] = apply_events(db_conn, [departure])
    db_conn.commit()
    [restock] = apply_events(db_conn, [_event(warehouse, product, "arrival", 10, Origin.webhook())])
    db_conn.commit()
    [again] = apply_events(db_conn, [departure])  # the same record, e.g. after a lost offset commit
    db_conn.commit()

    assert (first.status, first.reason) == ("rejected", "insufficient_stock")
    assert restock.status == "applied"
    assert (again.status, again.reason) == ("rejected", "insufficient_stock")
    assert again.rejected_event_id == first.rejected_event_id
    assert get_stock(db_conn, warehouse, product).quantity == 10
    parked = db_conn.execute(
        "SELECT count(*) FROM rejected_events WHERE kafka_topic = %s", (topic,)
    ).fetchone()
    assert parked == (1,)


def test_the_same_payload_at_another_offset_is_decided_afresh(db_conn: psycopg.Connection) -> None:
    """Only the record (topic, partition, offset) is remembered, not its bytes."""
    warehouse, product, topic = uuid4(), uuid4(), f"redelivery-{uuid4()}"
    departure = _event(warehouse, product, "departure", 5, Origin.kafka(topic, 0, 7))
    [first] = apply_events(db_conn, [departure])
    apply_events(db_conn, [_event(warehouse, product, "arrival", 10, Origin.webhook())])
    republished = parse_event(departure.raw, Origin.kafka(topic, 0, 8))

    [again] = apply_events(db_conn, [republished])
    db_conn.commit()

    assert first.status == "rejected"
    assert again.status == "applied"
    assert get_stock(db_conn, warehouse, product).quantity == 5
