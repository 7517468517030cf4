"""The console benchmark's data (tools/bench/focused/console.py): a week of a 20-warehouse network, applied
through the ledger into the benchmark's own database.

Restocks, transfers between warehouses (10 % of them losing a few units on the way, 3 % never
arriving: stuck in transit), 5 % exact redeliveries, and refused events (departures beyond the
stock, conflicting halves, invalid payloads) that become dead letters.
"""

from __future__ import annotations

import heapq
import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from common.domain.events import Origin, parse_event
from common.ledger.apply import apply_events
from tools.bench.harness import ROOT

BATCH = 2000
TOPIC = "bench-console"
WEEK = timedelta(days=7)


def envelope(movement: str, warehouse: str, product: str, event: str, quantity: int, at: datetime) -> bytes:
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "source": f"WH-{warehouse[:4]}",
            "specversion": "1.0",
            "type": "ru.retail.warehouses.movement",
            "datacontenttype": "application/json",
            "time": int(at.timestamp() * 1000),
            "subject": f"WH-{warehouse[:4]}:{event.upper()}",
            "destination": "ru.retail.warehouses",
            "data": {
                "movement_id": movement,
                "warehouse_id": warehouse,
                "timestamp": at.isoformat().replace("+00:00", "Z"),
                "event": event,
                "product_id": product,
                "quantity": quantity,
            },
        }
    ).encode()


@dataclass
class Stream:
    payloads: list[bytes]
    expected_applied: int
    start: datetime


def generate(applied_target: int, seed: int) -> Stream:
    """A week of events in time order, every departure feasible except the deliberate refusals."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - WEEK
    warehouses = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(20)]
    products = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(500)]
    stock: dict[tuple[str, str], int] = {}
    pending: list[tuple[datetime, int, bytes]] = []  # arrivals due later: (time, tiebreak, payload)
    payloads: list[bytes] = []
    applied = 0
    step = WEEK / (applied_target * 0.66)  # about 1.56 applied events per step: ends near now
    at = start
    tiebreak = 0

    def emit(payload: bytes, *, counts: bool = True) -> None:
        nonlocal applied
        payloads.append(payload)
        if counts:
            applied += 1
        if rng.random() < 0.05:  # an exact redelivery
            payloads.append(payload)

    while applied < applied_target:
        at += step * rng.uniform(0.5, 1.5)
        while pending and pending[0][0] <= at:
            _, _, payload = heapq.heappop(pending)
            emit(payload)
        roll = rng.random()
        warehouse, product = rng.choice(warehouses), rng.choice(products)
        key = (warehouse, product)
        if roll < 0.3 or stock.get(key, 0) < 2:
            quantity = rng.randint(20, 200)
            stock[key] = stock.get(key, 0) + quantity
            emit(envelope(str(uuid.uuid4()), warehouse, product, "arrival", quantity, at))
        elif roll < 0.99:
            quantity = rng.randint(1, max(1, stock[key] // 2))
            stock[key] -= quantity
            movement = str(uuid.uuid4())
            emit(envelope(movement, warehouse, product, "departure", quantity, at))
            if rng.random() < 0.97:  # 3 % never arrive: stuck in transit
                destination = rng.choice([w for w in warehouses if w != warehouse])
                lost = rng.randint(1, min(3, quantity)) if rng.random() < 0.1 else 0
                transit = timedelta(seconds=min(3 * 86400, rng.lognormvariate(8.5, 0.8)))
                due = at + transit
                stock[(destination, product)] = stock.get((destination, product), 0) + quantity - lost
                if due < now and quantity - lost > 0:
                    tiebreak += 1
                    payload = envelope(movement, destination, product, "arrival", quantity - lost, due)
                    heapq.heappush(pending, (due, tiebreak, payload))
        elif roll < 0.996:  # refused: more than on hand
            emit(envelope(str(uuid.uuid4()), warehouse, product, "departure", 10**8, at), counts=False)
        elif roll < 0.998:  # refused: the other half of an applied movement names another product
            emit(envelope(str(uuid.uuid4()), warehouse, product, "arrival", 5, at))
            payloads.append(payloads[-1].replace(product.encode(), rng.choice(products).encode()))
        else:  # refused: invalid
            payloads.append(b'{"id": "x", "data": {"quantity": -1}}')
        if at >= now:
            break
    while pending and applied < applied_target * 1.02:  # arrivals due before now
        emit(heapq.heappop(pending)[2])
    return Stream(payloads=payloads, expected_applied=applied, start=start)


CONSOLE_INDEXES = (
    "movements_in_transit_idx",
    "movements_routes_idx",
    "movement_events_history_idx",
    "rejected_events_movement_idx",
)


def migration_0003() -> str:
    return (ROOT / "common" / "migrations" / "0003_console.sql").read_text()


def seed(url: str, stream: Stream, *, without_console_indexes: bool = False) -> dict[str, float]:
    """Apply the stream through the ledger; returns the outcomes and the ledger's seconds."""
    outcomes: dict[str, float] = {"applied": 0, "duplicate": 0, "rejected": 0}
    with psycopg.connect(url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        if without_console_indexes:  # what-if: the write cost of migration 0003
            conn.execute("DROP INDEX " + ", ".join(CONSOLE_INDEXES))
            conn.commit()
        began = time.perf_counter()
        for first in range(0, len(stream.payloads), BATCH):
            chunk = stream.payloads[first : first + BATCH]
            items = [
                parse_event(raw, Origin.kafka(TOPIC, 0, first + i, cluster="bench"))
                for i, raw in enumerate(chunk)
            ]
            with conn.transaction():
                for outcome in apply_events(conn, items):
                    outcomes[outcome.status] += 1
        outcomes["ledger_seconds"] = time.perf_counter() - began
        if without_console_indexes:
            conn.execute(migration_0003())  # the indexes back, for the pages
            conn.commit()
        with conn.transaction():
            # As if the week had been ingested as it happened.
            conn.execute("UPDATE movement_events SET received_at = occurred_at + interval '2 seconds'")
            conn.execute(
                """
                UPDATE stock s SET updated_at = e.last
                FROM (SELECT warehouse_id, product_id, max(received_at) AS last
                      FROM movement_events GROUP BY 1, 2) e
                WHERE s.warehouse_id = e.warehouse_id AND s.product_id = e.product_id
                """
            )
            conn.execute(
                """
                UPDATE rejected_events
                   SET received_at = %s + (now() - %s) * (id::float8 / (SELECT max(id) FROM rejected_events))
                """,
                (stream.start, stream.start),
            )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return outcomes
