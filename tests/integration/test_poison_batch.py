"""No input can make a batch fail on every delivery (a stuck Kafka partition).

Validation refuses every value PostgreSQL cannot store that we know of (NUL, lone surrogates,
out-of-range times and numbers: see tests/corpus). These tests prove the second line: should a
value still slip through, `service.ingest` isolates the record the database refuses and parks it
as invalid with a safe detail, and the rest of the batch is applied.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import psycopg
import pytest

from common.domain.events import Envelope, IncomingEvent, Origin, parse_event
from common.ledger import use_cases as service
from common.reads.stock import get_stock
from tests.e2e.support import body, envelope, new_id

pytestmark = pytest.mark.integration


def _arrival(warehouse: str, product: str, quantity: int, origin: Origin) -> IncomingEvent:
    payload = envelope(
        "arrival", movement_id=new_id(), warehouse_id=warehouse, product_id=product, quantity=quantity
    )
    return parse_event(body(payload), origin)


def _slipped_through(item: IncomingEvent, envelope_id: str) -> IncomingEvent:
    """`item` as if validation had accepted an envelope id PostgreSQL refuses."""
    assert item.envelope is not None
    bad = Envelope.model_construct(**{**dict(item.envelope), "id": envelope_id})
    return IncomingEvent(item.raw, item.origin, envelope=bad)


@pytest.mark.parametrize("poison", ["NUL \x00 inside", "lone \ud800 surrogate"], ids=["nul", "surrogate"])
def test_a_record_the_database_refuses_is_parked_and_the_batch_applied(clean_db: str, poison: str) -> None:
    warehouse, product, topic = str(uuid4()), str(uuid4()), f"poison-{uuid4()}"
    good_1 = _arrival(warehouse, product, 2, Origin.kafka(topic, 0, 1))
    bad = _slipped_through(_arrival(warehouse, product, 100, Origin.kafka(topic, 0, 2)), poison)
    good_2 = _arrival(warehouse, product, 3, Origin.kafka(topic, 0, 3))

    outcomes = service.ingest([good_1, bad, good_2])
    again = service.ingest([good_1, bad, good_2])  # the same batch redelivered

    assert [(o.status, o.reason) for o in outcomes] == [
        ("applied", None),
        ("rejected", "invalid"),
        ("applied", None),
    ]
    assert outcomes[1].detail and "refused by the database" in outcomes[1].detail
    assert [o.status for o in again] == ["duplicate", "rejected", "duplicate"]
    assert again[1].rejected_event_id == outcomes[1].rejected_event_id
    with psycopg.connect(clean_db) as conn:
        assert get_stock(conn, UUID(warehouse), UUID(product)).quantity == 5
        rows = conn.execute("SELECT kafka_offset, reason, detail FROM rejected_events").fetchall()
    assert [(offset, reason) for offset, reason, _ in rows] == [(2, "invalid")]
    assert "\x00" not in rows[0][2]
