"""A Kafka record is decided once: redelivered after its dead letter was written, it stays parked.

Its identity is its cluster, coordinates and content: another record at the same coordinates (a
recreated topic, another cluster) is decided on its own merits.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import psycopg
import pytest

from common.domain.events import IncomingEvent, Origin, parse_event
from common.ledger.apply import apply_events
from common.reads.stock import get_stock
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

    # Without the automatic retry (AUTO_REPLAY_WINDOW_SECONDS=0) it waits for an operator.
    [first] = apply_events(db_conn, [departure], auto_replay_window=0)
    [restock] = apply_events(
        db_conn, [_event(warehouse, product, "arrival", 10, Origin.webhook())], auto_replay_window=0
    )
    [again] = apply_events(db_conn, [departure])  # the same record, e.g. after a lost offset commit

    assert (first.status, first.reason) == ("rejected", "insufficient_stock")
    assert restock.status == "applied"
    assert (again.status, again.reason) == ("rejected", "insufficient_stock")
    assert again.rejected_event_id == first.rejected_event_id
    assert get_stock(db_conn, warehouse, product).quantity == 10
    assert _parked(db_conn, topic) == [(7, "insufficient_stock")]


def test_the_same_payload_at_another_offset_is_decided_afresh(db_conn: psycopg.Connection) -> None:
    warehouse, product, topic = uuid4(), uuid4(), f"redelivery-{uuid4()}"
    departure = _event(warehouse, product, "departure", 5, Origin.kafka(topic, 0, 7))
    [first] = apply_events(db_conn, [departure], auto_replay_window=0)
    apply_events(db_conn, [_event(warehouse, product, "arrival", 10, Origin.webhook())], auto_replay_window=0)
    republished = parse_event(departure.raw, Origin.kafka(topic, 0, 8))

    [again] = apply_events(db_conn, [republished])

    assert first.status == "rejected"
    assert again.status == "applied"
    assert get_stock(db_conn, warehouse, product).quantity == 5


def test_another_record_at_the_coordinates_of_a_parked_one_is_decided_on_its_merits(
    db_conn: psycopg.Connection,
) -> None:
    """A topic deleted and created again restarts its offsets: new records reuse old coordinates."""
    warehouse, product, topic = uuid4(), uuid4(), f"recreated-{uuid4()}"
    bad = [parse_event(b"not json " + bytes([i]), Origin.kafka(topic, 0, 1000 + i)) for i in range(2)]
    assert [o.reason for o in apply_events(db_conn, bad)] == ["invalid", "invalid"]

    arrivals = [
        _event(warehouse, product, "arrival", q, Origin.kafka(topic, 0, 1000 + i))
        for i, q in enumerate((3, 4))
    ]
    outcomes = apply_events(db_conn, arrivals)

    assert [o.status for o in outcomes] == ["applied", "applied"]
    assert get_stock(db_conn, warehouse, product).quantity == 7
    # ... and the very same bad records redelivered are still parked once each.
    assert [o.redelivered for o in apply_events(db_conn, bad)] == [True, True]
    assert _parked(db_conn, topic) == [(1000, "invalid"), (1001, "invalid")]


def test_a_bad_record_at_the_same_coordinates_on_another_cluster_is_parked_again(
    db_conn: psycopg.Connection,
) -> None:
    topic = f"mirrored-{uuid4()}"
    raw = b"{truncated"
    on_a = parse_event(raw, Origin.kafka(topic, 2, 5, cluster="arn:aws:kafka:eu-central-1:1:cluster/a/1"))
    on_b = parse_event(raw, Origin.kafka(topic, 2, 5, cluster="arn:aws:kafka:eu-central-1:1:cluster/b/2"))

    [first] = apply_events(db_conn, [on_a])
    [second] = apply_events(db_conn, [on_b])
    [again] = apply_events(db_conn, [on_a])

    assert first.rejected_event_id != second.rejected_event_id
    assert (again.rejected_event_id, again.redelivered) == (first.rejected_event_id, True)
    assert _parked(db_conn, topic) == [(5, "invalid"), (5, "invalid")]


def test_a_key_makes_another_record(db_conn: psycopg.Connection) -> None:
    topic = f"keyed-{uuid4()}"
    raw = b"[1, 2"
    first = apply_events(db_conn, [parse_event(raw, Origin.kafka(topic, 0, 1, key=b"a"))])
    second = apply_events(db_conn, [parse_event(raw, Origin.kafka(topic, 0, 1, key=b"b"))])
    assert first[0].rejected_event_id != second[0].rejected_event_id
    assert not second[0].redelivered


def _parked(conn: psycopg.Connection, topic: str) -> list[tuple[int, str]]:
    rows = conn.execute(
        "SELECT kafka_offset, reason FROM rejected_events WHERE kafka_topic = %s ORDER BY id", (topic,)
    ).fetchall()
    return [(int(o), str(r)) for o, r in rows]
