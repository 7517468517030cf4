"""apply_events throughput: one batch of 10,000 valid events in one call, median of 5 runs.

    .venv/bin/python -m tools.bench.focused.ledger [--database-url URL] [--runs 5] [--events 10000]

Scenarios (fresh keys every run, tables emptied before each run; every outcome must be
`applied` or the run fails):

- arrivals-new:  10,000 arrivals over 1,000 (warehouse, product) pairs no row exists for yet;
- arrivals-warm: the same shape on 1,000 pairs that already have a stock row (locked and updated);
- mixed:         40 % arrivals stocking source pairs, 30 % departures from them, 30 % arrivals
                 completing those movements at other pairs: both halves of 3,000 movements.

Only `apply_events` and its commit are timed (payloads are parsed beforehand; the parse rate is
printed separately). Uses its own database (LEDGER_DATABASE_URL, default `ledger_dev`), created
and migrated when missing, whose ledger tables it empties. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from uuid import UUID, uuid4

import psycopg
from psycopg import sql

from common.adapters.db import connect
from common.adapters.migrate import DATA_TABLES, migrate
from common.domain.events import IncomingEvent, Origin, parse_event
from common.ledger.apply import apply_events

DEFAULT_URL = "postgresql://warehouse:warehouse@127.0.0.1:5432/ledger_dev"
TABLES = DATA_TABLES
WAREHOUSES, PRODUCTS = 50, 20  # 1,000 pairs

Raw = list[bytes]


def payload(movement: UUID, event: str, warehouse: UUID, product: UUID, quantity: int, second: int) -> bytes:
    return json.dumps(
        {
            "id": str(uuid4()),
            "source": "bench",
            "specversion": "1.0",
            "type": "ru.retail.warehouses.movement",
            "data": {
                "movement_id": str(movement),
                "warehouse_id": str(warehouse),
                "product_id": str(product),
                "event": event,
                "quantity": quantity,
                "timestamp": f"2025-02-18T12:{second // 60 % 60:02d}:{second % 60:02d}Z",
            },
        }
    ).encode()


def pairs() -> list[tuple[UUID, UUID]]:
    warehouses = [uuid4() for _ in range(WAREHOUSES)]
    products = [uuid4() for _ in range(PRODUCTS)]
    return [(w, p) for w in warehouses for p in products]


def arrivals(n: int, keys: list[tuple[UUID, UUID]]) -> Raw:
    return [payload(uuid4(), "arrival", *keys[i % len(keys)], 1 + i % 7, i) for i in range(n)]


def mixed(n: int, keys: list[tuple[UUID, UUID]]) -> Raw:
    movements = n * 3 // 10
    raw: Raw = []
    for i in range(movements):
        source = keys[i % len(keys)]
        target = (keys[(i * 7 + 1) % len(keys)][0], source[1])
        movement = uuid4()
        raw.append(payload(uuid4(), "arrival", *source, 10, i))  # stock for the departure
        raw.append(payload(movement, "departure", *source, 4, i))
        raw.append(payload(movement, "arrival", *target, 4, i + 3600))
    raw += arrivals(n - len(raw), keys)
    return raw


def empty(conn: psycopg.Connection) -> None:
    conn.execute(
        sql.SQL("TRUNCATE {} RESTART IDENTITY").format(sql.SQL(", ").join(map(sql.Identifier, TABLES)))
    )


def run_once(
    conn: psycopg.Connection, build: Callable[[list[tuple[UUID, UUID]]], Raw], warm: bool
) -> tuple[float, float, int]:
    """(seconds in apply_events, seconds parsing, events) for one fresh batch."""
    empty(conn)
    keys = pairs()
    if warm:  # give every pair a stock row first (not timed)
        warmup = [parse_event(r, Origin.webhook()) for r in arrivals(len(keys), keys)]
        assert all(o.status == "applied" for o in apply_events(conn, warmup))
    raw = build_for(build, keys)
    started = time.perf_counter()
    items: list[IncomingEvent] = [parse_event(r, Origin.webhook()) for r in raw]
    parsed = time.perf_counter() - started
    assert all(item.is_valid for item in items)

    started = time.perf_counter()
    outcomes = apply_events(conn, items)  # autocommit connection: commits before returning
    applied = time.perf_counter() - started

    bad = [o for o in outcomes if o.status != "applied"]
    assert not bad, f"{len(bad)} events not applied, first: {bad[0]}"
    row = conn.execute("SELECT count(*) FROM movement_events").fetchone()
    assert row is not None and row[0] == len(items) + (len(keys) if warm else 0)
    return applied, parsed, len(items)


def build_for(build: Callable[..., Raw], keys: list[tuple[UUID, UUID]]) -> Raw:
    return build(keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=os.environ.get("LEDGER_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args(argv)

    name = str(psycopg.conninfo.conninfo_to_dict(args.database_url)["dbname"])
    with psycopg.connect(
        psycopg.conninfo.make_conninfo(args.database_url, dbname="postgres"), autocommit=True
    ) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with connect(args.database_url) as conn:
        migrate(conn)

    n = args.events
    scenarios: list[tuple[str, Callable[[list[tuple[UUID, UUID]]], Raw], bool]] = [
        ("arrivals-new", lambda keys: arrivals(n, keys), False),
        ("arrivals-warm", lambda keys: arrivals(n, keys), True),
        ("mixed", lambda keys: mixed(n, keys), False),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"apply_events, one batch of {n:,} events, {args.runs} runs, database {name}, load {load:.1f}")
    print(
        f"{'scenario':<14} {'median ev/s':>12} {'min ev/s':>10} {'max ev/s':>10}"
        f" {'median s':>9} {'parse ev/s':>11}"
    )
    with connect(args.database_url, autocommit=True) as conn:
        for label, build, warm in scenarios:
            rates, seconds, parse_rates = [], [], []
            for _ in range(args.runs):
                applied, parsed, count = run_once(conn, build, warm)
                rates.append(count / applied)
                seconds.append(applied)
                parse_rates.append(count / parsed)
            print(
                f"{label:<14} {statistics.median(rates):>12,.0f} {min(rates):>10,.0f} {max(rates):>10,.0f}"
                f" {statistics.median(seconds):>9.3f} {statistics.median(parse_rates):>11,.0f}"
            )
        empty(conn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
