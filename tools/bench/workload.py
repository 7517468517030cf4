"""Benchmark workloads: realistic streams of movement envelopes, generated before anything is timed.

A stream is what a warehouse network would send: restocks (arrivals of new movements), transfers
(a departure of part of the stock on hand, later the arrival of the same movement elsewhere) and
exact redeliveries of earlier events. Every event is feasible in stream order (no departure
exceeds the stock on hand), so the expected ledger state is known without running the ledger:
the benchmarks check the database against it instead of trusting the throughput alone.

Keys (warehouses, products, movements) come from a seeded RNG mixed with a fresh nonce, so every
run writes rows no earlier run wrote.
"""

from __future__ import annotations

import base64
import os
import random
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

StockKey = tuple[str, str]

_TEMPLATE = (
    '{{"id": "{id}", "source": "{source}", "specversion": "1.0", '
    '"type": "ru.retail.warehouses.movement", "datacontenttype": "application/json", '
    '"dataschema": "ru.retail.warehouses.movement.v1.0", "time": {time_ms}, '
    '"subject": "{source}:{subject}", "destination": "ru.retail.warehouses", '
    '"data": {{"movement_id": "{movement_id}", "warehouse_id": "{warehouse_id}", '
    '"timestamp": "{timestamp}", "event": "{event}", "product_id": "{product_id}", '
    '"quantity": {quantity}}}}}'
)

BASE_TIME = datetime(2025, 2, 18, 8, 0, tzinfo=UTC)


@dataclass
class Workload:
    """The events in order, with what applying them must leave behind."""

    values: list[bytes] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)  # Kafka key: the stock key, so order per key holds
    kinds: list[str] = field(default_factory=list)  # arrival / departure / duplicate
    stock: dict[StockKey, int] = field(default_factory=dict)
    movements: set[str] = field(default_factory=set)

    @property
    def applied(self) -> int:
        return sum(1 for k in self.kinds if k != "duplicate")

    @property
    def duplicates(self) -> int:
        return self.kinds.count("duplicate")

    @property
    def warehouses(self) -> list[str]:
        return sorted({w for w, _ in self.stock})

    def mix(self) -> str:
        n = len(self.kinds) or 1
        arrivals = self.kinds.count("arrival")
        departures = self.kinds.count("departure")
        return (
            f"{100 * arrivals / n:.0f}% arrivals, {100 * departures / n:.0f}% departures, "
            f"{100 * self.duplicates / n:.0f}% exact duplicates"
        )


def _uuid(rng: random.Random, salt: int = 0) -> str:
    return str(UUID(int=rng.getrandbits(128) ^ salt, version=4))


def generate(
    count: int,
    *,
    seed: int | None = None,
    warehouses: int = 20,
    products: int = 250,
    duplicate_ratio: float = 0.08,
    departure_ratio: float = 0.30,
    salt: int | None = None,
) -> Workload:
    """`count` events: restocks and transfer arrivals, departures of part of the stock, duplicates.

    20 warehouses x 250 products gives 5,000 stock keys, so a batch of 1,000 touches many keys
    once and some several times, as a busy network would. The seed decides the shape of the
    stream (kinds, quantities, which keys repeat); `salt` only changes the ids, so two calls with
    one seed and different salts give the same stream over disjoint keys.
    """
    rng = random.Random(seed if seed is not None else int.from_bytes(os.urandom(8), "big"))
    salt = salt if salt is not None else int.from_bytes(os.urandom(16), "big")
    wh_ids = [_uuid(rng, salt) for _ in range(warehouses)]
    product_ids = [_uuid(rng, salt) for _ in range(products)]
    sources = {w: f"WH-{i + 1:04d}" for i, w in enumerate(wh_ids)}
    work = Workload()
    stocked: list[StockKey] = []  # keys with stock > 0 (may hold stale entries, checked on use)
    in_transit: list[tuple[str, str, int, str]] = []  # movement, product, quantity, source warehouse
    base_ms = int(BASE_TIME.timestamp() * 1000)

    def emit(kind: str, movement: str, warehouse: str, product: str, quantity: int, i: int) -> None:
        at = BASE_TIME + timedelta(seconds=i)
        value = _TEMPLATE.format(
            id=_uuid(rng, salt),
            source=sources[warehouse],
            time_ms=base_ms + i * 1000,
            subject=kind.upper(),
            movement_id=movement,
            warehouse_id=warehouse,
            timestamp=at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            event=kind,
            product_id=product,
            quantity=quantity,
        ).encode()
        work.values.append(value)
        work.keys.append(f"{warehouse}:{product}".encode())
        work.kinds.append(kind)
        work.movements.add(movement)

    for i in range(count):
        r = rng.random()
        if r < duplicate_ratio and work.values:
            j = rng.randrange(len(work.values))
            work.values.append(work.values[j])
            work.keys.append(work.keys[j])
            work.kinds.append("duplicate")
            continue
        if r < duplicate_ratio + departure_ratio and stocked:
            idx = rng.randrange(len(stocked))
            key = stocked[idx]
            on_hand = work.stock.get(key, 0)
            if on_hand > 0:
                quantity = rng.randint(1, max(1, on_hand // 2))
                movement = _uuid(rng, salt)
                emit("departure", movement, key[0], key[1], quantity, i)
                work.stock[key] = on_hand - quantity
                if work.stock[key] == 0:
                    stocked[idx] = stocked[-1]
                    stocked.pop()
                in_transit.append((movement, key[1], quantity, key[0]))
                continue
            stocked[idx] = stocked[-1]
            stocked.pop()
        if in_transit and rng.random() < 0.5:
            # The arrival half of an earlier transfer, elsewhere, sometimes a little short.
            movement, product, quantity, source = in_transit.pop(rng.randrange(len(in_transit)))
            warehouse = rng.choice([w for w in wh_ids[:8] if w != source])
            quantity = max(1, quantity - (1 if rng.random() < 0.1 else 0))
        else:
            movement = _uuid(rng, salt)
            warehouse, product = rng.choice(wh_ids), rng.choice(product_ids)
            quantity = rng.randint(10, 200)
        emit("arrival", movement, warehouse, product, quantity, i)
        key = (warehouse, product)
        if work.stock.get(key, 0) == 0:
            stocked.append(key)
        work.stock[key] = work.stock.get(key, 0) + quantity
    return work


def partition_of(key: bytes, partitions: int) -> int:
    """A stable key-to-partition map (records of one stock key stay in one partition, in order)."""
    return zlib.crc32(key) % partitions


def msk_events(
    work: Workload, *, topic: str, batch_size: int = 1000, partitions: int = 3
) -> list[dict[str, Any]]:
    """The workload as the Lambda MSK events a mapping would deliver, `batch_size` records each.

    Records keep per-partition offsets and increasing timestamps, exactly as a poll of a keyed
    topic would return them.
    """
    events: list[dict[str, Any]] = []
    offsets = [0] * partitions
    base_ms = int(BASE_TIME.timestamp() * 1000)
    for start in range(0, len(work.values), batch_size):
        records: dict[str, list[dict[str, Any]]] = {}
        for i in range(start, min(start + batch_size, len(work.values))):
            p = partition_of(work.keys[i], partitions)
            records.setdefault(f"{topic}-{p}", []).append(
                {
                    "topic": topic,
                    "partition": p,
                    "offset": offsets[p],
                    "timestamp": base_ms + i,
                    "timestampType": "CREATE_TIME",
                    "key": base64.b64encode(work.keys[i]).decode(),
                    "value": base64.b64encode(work.values[i]).decode(),
                    "headers": [],
                }
            )
            offsets[p] += 1
        events.append(
            {
                "eventSource": "aws:kafka",
                "eventSourceArn": "arn:aws:kafka:local:000000000000:cluster/bench/0",
                "bootstrapServers": "127.0.0.1:9092",
                "records": records,
            }
        )
    return events
