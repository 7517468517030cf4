"""`warehouse-stock demo`'s day of records (issue 23) is what it promises once applied: six
warehouses known by their codes, goods in transit, a loss on a route, and exactly its bad records
refused, each for its reason; published twice, the second copy changes nothing."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime

import psycopg
import pytest

from cli.demo import IN_TRANSIT, WAREHOUSE_CODES, day_of_records
from common.domain.events import Origin, parse_event
from common.ledger.apply import apply_events
from common.reads.losses import routes_report
from common.reads.warehouses import codes_for

pytestmark = pytest.mark.integration


def test_a_demo_day_applies_as_described(database_url: str) -> None:
    seed = random.randrange(10**9)  # new warehouses and products for this run of the suite
    day = date(2025, 2, 18)
    records = day_of_records(seed, day, now=datetime(2025, 2, 19, tzinfo=UTC))
    expected = {
        what: sum(r.what == what for r in records) for what in ("invalid", "conflict", "insufficient_stock")
    }
    assert expected == {"invalid": 2, "conflict": 1, "insufficient_stock": 1}
    topic = "demo-" + uuid.uuid4().hex
    items = [parse_event(r.value, Origin.kafka(topic, 0, i, key=r.key)) for i, r in enumerate(records)]
    with psycopg.connect(database_url) as conn:
        outcomes = []
        for start in range(0, len(items), 200):
            outcomes += apply_events(conn, items[start : start + 200], auto_replay_window=0)
        conn.commit()
        refused: dict[str, int] = {}
        for record, outcome in zip(records, outcomes, strict=True):
            if outcome.status == "rejected":
                refused[record.what] = refused.get(record.what, 0) + 1
                assert outcome.reason == (record.what if record.what != "invalid" else "invalid")
            else:
                assert record.what == "good", (record.what, outcome)
        assert refused == expected

        warehouses = {parse_event(r.value, Origin.webhook()).envelope.data.warehouse_id  # type: ignore[union-attr]
                      for r in records if r.what == "good"}  # fmt: skip
        assert sorted(codes_for(conn, warehouses).values()) == sorted(WAREHOUSE_CODES)
        in_transit = conn.execute(
            "SELECT count(*) FROM movements WHERE status = 'in_transit' AND source_warehouse_id = ANY(%s)",
            (list(warehouses),),
        ).fetchone()
        assert in_transit is not None and in_transit[0] == IN_TRANSIT
        report = routes_report(
            conn, since=datetime(2025, 2, 18, tzinfo=UTC), until=datetime(2025, 2, 19, tzinfo=UTC), limit=1000
        )
        ours = [r for r in report.items if r.source_warehouse_id in warehouses]
        assert ours and any(r.units_lost > 0 for r in ours)

        again = apply_events(
            conn,
            [
                parse_event(r.value, Origin.kafka(topic, 1, i, key=r.key))
                for i, r in enumerate(records)
                if r.what == "good"
            ][:100],
        )
        conn.commit()
        assert {o.status for o in again} == {"duplicate"}
