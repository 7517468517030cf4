"""apply_events from many threads at once, each on its own connection: no lost update, no stock
below zero, no deadlock."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from common.adapters.db import LostRace, run_in_transaction
from common.domain.events import IncomingEvent
from common.domain.outcomes import Outcome
from common.ledger.apply import apply_events
from common.reads.movements import get_movement
from common.reads.stock import get_stock

pytestmark = pytest.mark.integration

Make = Callable[..., IncomingEvent]
Connect = Callable[[], psycopg.Connection]

WAREHOUSE = UUID("25718666-6af6-4281-b5a6-3016e36fa557")
PRODUCT = UUID("4705204f-498f-4f96-b4ba-df17fb56bf55")


def test_departures_racing_for_the_last_units_never_oversell(
    ledger_conn: psycopg.Connection, ledger_connect: Connect, ledger_make_event: Make
) -> None:
    threads, departures = 8, 200
    [seeded] = apply_events(ledger_conn, [ledger_make_event(uuid4(), "arrival", WAREHOUSE, PRODUCT, 100)])
    assert seeded.status == "applied"
    work = [ledger_make_event(uuid4(), "departure", WAREHOUSE, PRODUCT, 1) for _ in range(departures)]
    connections = [ledger_connect() for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    done = threading.Event()

    def worker(index: int) -> list[Outcome]:
        conn = connections[index]
        start.wait()
        outcomes = []
        for item in work[index::threads]:
            outcomes += apply_events(conn, [item])  # one call, one transaction, committed
        return outcomes

    def watch() -> int:
        """The lowest stock any reader saw while the workers ran."""
        conn = ledger_connect()
        start.wait()
        lowest = 100
        while not done.is_set():
            row = conn.execute(
                "SELECT quantity FROM stock WHERE warehouse_id = %s AND product_id = %s", (WAREHOUSE, PRODUCT)
            ).fetchone()
            assert row is not None
            lowest = min(lowest, row[0])
        return lowest

    with ThreadPoolExecutor(threads + 1) as pool:
        watcher = pool.submit(watch)
        futures = [pool.submit(worker, i) for i in range(threads)]
        outcomes = [o for f in futures for o in f.result(timeout=120)]
        done.set()
        lowest = watcher.result(timeout=30)

    counted = Counter((o.status, o.reason) for o in outcomes)
    assert counted == {("applied", None): 100, ("rejected", "insufficient_stock"): 100}
    # Each applied departure saw its own stock: 99, 98, ..., 0 exactly once, never a lost update.
    assert sorted(o.stock for o in outcomes if o.status == "applied" and o.stock is not None) == list(
        range(100)
    )
    assert all(o.stock == 0 for o in outcomes if o.status == "rejected")
    assert get_stock(ledger_conn, WAREHOUSE, PRODUCT).quantity == 0
    assert lowest >= 0
    logged = ledger_conn.execute("SELECT count(*) FROM movement_events WHERE event = 'departure'").fetchone()
    parked = ledger_conn.execute("SELECT reason, count(*) FROM rejected_events GROUP BY reason").fetchall()
    assert logged == (100,)
    assert parked == [("insufficient_stock", 100)]


@dataclass(frozen=True)
class Planned:
    movement: UUID
    kind: str
    warehouse: UUID
    product: UUID
    quantity: int


def test_batches_over_shared_keys_in_any_order_neither_deadlock_nor_lose_updates(
    ledger_conn: psycopg.Connection, ledger_database_url: str, ledger_make_event: Make
) -> None:
    """Several threads apply batches that touch the same stock rows and movements in different
    orders, some keys existing, some created on the fly, with the same events sent by several
    threads. Every departure is covered by the seeded stock, so the end state does not depend on
    the order: it must equal the model whatever the interleaving."""
    rng = random.Random(20250218)
    threads, batches_per_thread, batch_size = 6, 8, 6
    warehouses = [uuid4() for _ in range(3)]
    products = [uuid4() for _ in range(2)]
    keys = [(w, p) for w in warehouses for p in products]
    seeded = keys[::2]  # half the keys exist before the race, the other half are created by it
    apply_events(ledger_conn, [ledger_make_event(uuid4(), "arrival", w, p, 1000) for w, p in seeded])

    plans: list[list[Planned]] = [[] for _ in range(threads)]
    for thread_plan in plans:
        while len(thread_plan) < batches_per_thread * batch_size:
            movement = uuid4()
            source = rng.choice(seeded)
            target = (rng.choice(warehouses), source[1])
            quantity = rng.randint(1, 3)
            shape = rng.choice(["arrival", "departure", "movement"])
            if shape == "arrival":
                thread_plan.append(Planned(movement, "arrival", *rng.choice(keys), rng.randint(1, 9)))
            elif shape == "departure":
                thread_plan.append(Planned(movement, "departure", *source, quantity))
            else:  # both halves, each sent by a different thread
                other = rng.choice(plans)
                thread_plan.append(Planned(movement, "departure", *source, quantity))
                other.append(Planned(movement, "arrival", *target, quantity))
    unique = {p for plan in plans for p in plan}
    for thread_plan in plans:  # the same events from other threads: exactly one copy may apply
        thread_plan += rng.sample(sorted(unique, key=str), 6)
        rng.shuffle(thread_plan)

    expected: dict[tuple[UUID, UUID], int] = defaultdict(int, dict.fromkeys(seeded, 1000))
    for p in unique:
        expected[(p.warehouse, p.product)] += p.quantity if p.kind == "arrival" else -p.quantity

    items = [
        [ledger_make_event(p.movement, p.kind, p.warehouse, p.product, p.quantity) for p in plan]
        for plan in plans
    ]
    deadlocks: list[BaseException] = []
    lost_races: list[BaseException] = []
    start = threading.Barrier(threads)

    def worker(index: int, pool: ConnectionPool) -> list[Outcome]:
        mine = items[index]
        start.wait()
        outcomes: list[Outcome] = []
        for at in range(0, len(mine), batch_size):
            batch = mine[at : at + batch_size]

            def work(conn: psycopg.Connection, batch: list[IncomingEvent] = batch) -> list[Outcome]:
                try:
                    return apply_events(conn, batch)
                except psycopg.errors.DeadlockDetected as exc:
                    deadlocks.append(exc)
                    raise
                except LostRace as exc:
                    lost_races.append(exc)
                    raise

            outcomes += run_in_transaction(work, pool=pool, attempts=8)
        return outcomes

    with (
        ConnectionPool(
            ledger_database_url,
            min_size=threads,
            max_size=threads,
            kwargs={"options": "-c synchronous_commit=off"},
            timeout=30,
            open=True,
        ) as pool,
        ThreadPoolExecutor(threads) as executor,
    ):
        futures = [executor.submit(worker, i, pool) for i in range(threads)]
        outcomes = [o for f in futures for o in f.result(timeout=120)]

    assert deadlocks == []
    counted = Counter(o.status for o in outcomes)
    assert counted == {"applied": len(unique), "duplicate": sum(map(len, plans)) - len(unique)}
    for warehouse, product in keys:
        assert get_stock(ledger_conn, warehouse, product).quantity == expected[(warehouse, product)]
    halves: dict[UUID, set[str]] = defaultdict(set)
    for p in unique:
        halves[p.movement].add(p.kind)
    for movement, kinds in halves.items():
        view = get_movement(ledger_conn, movement)
        assert view is not None
        assert (
            view.status
            == {
                frozenset({"departure", "arrival"}): "delivered",
                frozenset({"departure"}): "in_transit",
                frozenset({"arrival"}): "arrival_only",
            }[frozenset(kinds)]
        )
    row = ledger_conn.execute(
        "SELECT count(*), count(DISTINCT (movement_id, event)) FROM movement_events"
    ).fetchone()
    assert row == (len(unique) + len(seeded), len(unique) + len(seeded))
