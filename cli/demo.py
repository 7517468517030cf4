"""`warehouse-stock demo`: publish a realistic day of movements to Kafka, so the console has
something to show (`make demo`).

Six warehouses with codes (`source` "WH-0117", `subject` "WH-0117:ARRIVAL"), a few dozen products,
supplier deliveries, transfers between warehouses (some delivered short: a loss on the route, a
few still in transit), and a handful of bad records (not JSON, a missing field, a conflicting
copy, a departure of more than is on hand), keyed by warehouse id as producers should. The ids
come from `--seed` and the day, so running it twice the same day publishes the same records
(the second run is all duplicates), and another day adds a new day's movements to the same
warehouses. `--print` writes the records as JSON lines instead of publishing (for kcat).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from common.adapters.config import get_settings
from common.adapters.kafka_settings import producer_config

EVENT_TYPE = "ru.retail.warehouses.movement"
WAREHOUSE_CODES = ("WH-0117", "WH-3322", "WH-4410", "WH-5501", "WH-6020", "WH-7788")
PRODUCTS = 40
TRANSFERS = 120
IN_TRANSIT = 9


@dataclass(frozen=True)
class Record:
    key: bytes
    value: bytes
    what: str  # good | invalid | conflict | insufficient_stock


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo",
        help="publish a realistic day of movements to Kafka (warehouses with codes, losses, bad records)",
        description=(
            "Publish one day of movements of six warehouses to KAFKA_TOPIC (supplier deliveries, "
            "transfers, some delivered short, some still in transit, a few bad records). The same seed "
            "and day publish the same records: a second run is all duplicates."
        ),
    )
    parser.add_argument("--seed", type=int, default=23, help="which warehouses and products (default 23)")
    parser.add_argument(
        "--day", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default today, UTC)"
    )
    parser.add_argument(
        "--print", dest="print_only", action="store_true", help="JSON lines on stdout, no Kafka"
    )
    parser.add_argument("--json", action="store_true", help="the summary as one JSON object")
    parser.set_defaults(run=run)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def envelope(code: str, event: str, movement: str, warehouse: str, product: str, quantity: int,
             at: datetime, rng: random.Random) -> dict[str, Any]:  # fmt: skip
    """One half of a movement as the brief's producers publish it."""
    return {
        "id": _uuid(rng),
        "source": code,
        "specversion": "1.0",
        "type": EVENT_TYPE,
        "datacontenttype": "application/json",
        "dataschema": "ru.retail.warehouses.movement.v1.0",
        "time": int(at.timestamp() * 1000),
        "subject": f"{code}:{event.upper()}",
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


def day_of_records(seed: int, day: date, *, now: datetime | None = None) -> list[Record]:
    """The day's records in publishing order (event time order, bad ones in between)."""
    fixed = random.Random(seed)
    warehouses = {code: _uuid(fixed) for code in WAREHOUSE_CODES}
    products = [_uuid(fixed) for _ in range(PRODUCTS)]
    rng = random.Random(f"{seed}:{day.isoformat()}")
    start = datetime.combine(day, time(6, 0), tzinfo=UTC)
    end = min(
        datetime.combine(day, time(22, 0), tzinfo=UTC), (now or datetime.now(UTC)) - timedelta(minutes=5)
    )
    if end <= start:  # early in the day: the day before's hours
        start, end = start - timedelta(days=1), end
    span = (end - start).total_seconds()

    def at(fraction: float) -> datetime:
        return (start + timedelta(seconds=span * fraction)).replace(microsecond=0)

    events: list[tuple[datetime, str, dict[str, Any]]] = []
    stock: dict[tuple[str, str], int] = {}
    # the morning's supplier deliveries: every warehouse receives most products (arrival only)
    for code, warehouse in warehouses.items():
        for product in rng.sample(products, k=PRODUCTS * 3 // 4):
            quantity = rng.choice((50, 100, 120, 200, 500))
            when = at(rng.uniform(0.0, 0.15))
            events.append(
                (when, "good", envelope(code, "arrival", _uuid(rng), warehouse, product, quantity, when, rng))
            )
            stock[(warehouse, product)] = stock.get((warehouse, product), 0) + quantity
    # transfers: a departure, then (unless still in transit) the arrival, sometimes short
    codes = list(warehouses)
    held = sorted(stock)
    for n in range(TRANSFERS):
        src_warehouse, product = rng.choice(held)
        src = next(c for c, w in warehouses.items() if w == src_warehouse)
        dst = rng.choice([c for c in codes if c != src])
        quantity = min(stock[(src_warehouse, product)], rng.choice((5, 10, 12, 20, 24, 40)))
        if quantity <= 0:
            continue
        stock[(src_warehouse, product)] -= quantity
        movement = _uuid(rng)
        left = at(rng.uniform(0.2, 0.9))
        events.append(
            (left, "good", envelope(src, "departure", movement, src_warehouse, product, quantity, left, rng))
        )
        if n < IN_TRANSIT:
            continue
        arrived = min(left + timedelta(minutes=rng.randint(40, 300)), end)
        lost = rng.choice((1, 2, 3)) if rng.random() < 0.12 else 0
        events.append((arrived, "good", envelope(dst, "arrival", movement, warehouses[dst], product,
                                                 quantity - lost, arrived, rng)))  # fmt: skip
    events.sort(key=lambda e: e[0])
    records = [
        Record(e["data"]["warehouse_id"].encode(), json.dumps(e).encode(), what) for _, what, e in events
    ]
    # the bad ones
    w, code = warehouses["WH-4410"], "WH-4410"
    first = json.loads(records[len(records) // 2].value)
    conflicting = {
        **first,
        "id": _uuid(rng),
        "data": {**first["data"], "quantity": first["data"]["quantity"] + 7},
    }
    missing = envelope(code, "arrival", _uuid(rng), w, products[0], 10, at(0.5), rng)
    del missing["data"]["quantity"]
    too_much = envelope(code, "departure", _uuid(rng), w, products[1], 1_000_000, at(0.6), rng)
    bad = [
        Record(w.encode(), b'{"id": "not json', "invalid"),
        Record(w.encode(), json.dumps(missing).encode(), "invalid"),
        Record(first["data"]["warehouse_id"].encode(), json.dumps(conflicting).encode(), "conflict"),
        Record(w.encode(), json.dumps(too_much).encode(), "insufficient_stock"),
    ]
    for i, record in enumerate(bad):
        records.insert(len(records) * (i + 1) // (len(bad) + 1), record)
    return records


def run(args: argparse.Namespace) -> int:
    records = day_of_records(args.seed, args.day or datetime.now(UTC).date())
    summary: dict[str, Any] = {"records": len(records), "warehouses": len(WAREHOUSE_CODES)}
    for record in records:
        summary[record.what] = summary.get(record.what, 0) + 1
    if args.print_only:
        for record in records:
            sys.stdout.write(record.value.decode() + "\n")
        return 0
    settings = get_settings()
    summary["topic"] = settings.kafka_topic
    _publish(settings, records)
    if args.json:
        print(json.dumps(summary))
    else:
        good = summary.get("good", 0)
        print(f"demo: published {len(records)} records to {settings.kafka_topic} ({good} good, "
              f"{len(records) - good} bad); open the console at /ui/")  # fmt: skip
    return 0


def _publish(settings: Any, records: list[Record]) -> None:
    from kafka import KafkaProducer  # noqa: PLC0415 - only this command needs a producer

    producer = KafkaProducer(**producer_config(settings, "warehouse-stock-demo", max_block_ms=10_000))
    try:
        futures = [producer.send(settings.kafka_topic, key=r.key, value=r.value) for r in records]
        producer.flush(timeout=60)
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close(timeout=5)
