"""Copies of one event racing each other: one applied, the rest duplicates, all answering the true stock."""

from __future__ import annotations

import threading
import time
from uuid import uuid4

import psycopg
import pytest

from common.adapters.db import run_in_transaction
from common.domain.events import Origin, parse_event
from common.domain.outcomes import Outcome
from common.ledger.apply import apply_events
from common.reads.stock import get_stock
from tests.e2e.support import body, envelope, new_id

pytestmark = pytest.mark.integration

COPIES = 5
TRIALS = 20


def _race(database_url: str, raw: bytes) -> tuple[list[Outcome], list[BaseException]]:
    """Deliver COPIES copies of `raw` at once, each on its own connection."""
    start = threading.Barrier(COPIES)
    answers: list[Outcome] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                start.wait()
                item = parse_event(raw, Origin.webhook())
                answers.extend(run_in_transaction(lambda c: apply_events(c, [item]), conn=conn))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(COPIES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers, errors


def test_racing_copies_of_an_arrival_on_a_new_pair_answer_the_stock_it_made(database_url: str) -> None:
    for _ in range(TRIALS):
        warehouse, product = uuid4(), uuid4()
        raw = body(
            envelope(
                "arrival",
                movement_id=new_id(),
                warehouse_id=str(warehouse),
                product_id=str(product),
                quantity=3,
            )
        )

        answers, errors = _race(database_url, raw)

        assert not errors
        assert sorted(a.status for a in answers) == ["applied"] + ["duplicate"] * (COPIES - 1)
        assert [a.stock for a in answers] == [3] * COPIES
        with psycopg.connect(database_url) as conn:
            assert get_stock(conn, warehouse, product).quantity == 3


def test_a_copy_of_a_new_departure_waiting_on_the_first_answers_duplicate(database_url: str) -> None:
    """The second copy cannot see the first copy's uncommitted movement row and waits on the stock
    row; once the first commits, it reads the stock the first took. It must still answer
    `duplicate` with that stock, not refuse the departure for insufficient stock (409)."""
    warehouse, product = uuid4(), uuid4()
    seed = envelope(
        "arrival", movement_id=new_id(), warehouse_id=str(warehouse), product_id=str(product), quantity=4
    )
    raw = body(
        envelope(
            "departure",
            movement_id=new_id(),
            warehouse_id=str(warehouse),
            product_id=str(product),
            quantity=3,
        )
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        apply_events(conn, [parse_event(body(seed), Origin.webhook())])

    answers: list[Outcome] = []
    with psycopg.connect(database_url) as first, psycopg.connect(database_url, autocommit=True) as second:
        with first.transaction():
            [applied] = apply_events(first, [parse_event(raw, Origin.webhook())])
            item = parse_event(raw, Origin.webhook())
            copy = threading.Thread(
                target=lambda: answers.extend(
                    run_in_transaction(lambda c: apply_events(c, [item]), conn=second)
                )
            )
            copy.start()
            _wait_until_blocked(database_url, second.info.backend_pid)
        copy.join(30)  # the first copy committed when its transaction block ended

    assert (applied.status, applied.stock) == ("applied", 1)
    assert [(a.status, a.stock) for a in answers] == [("duplicate", 1)]
    with psycopg.connect(database_url) as conn:
        assert get_stock(conn, warehouse, product).quantity == 1
        parked = conn.execute("SELECT count(*) FROM rejected_events WHERE warehouse_id = %s", (warehouse,))
        assert parked.fetchone() == (0,)


def _wait_until_blocked(database_url: str, backend_pid: int, seconds: float = 10) -> None:
    """Until that backend waits for a lock another transaction holds."""
    deadline = time.monotonic() + seconds
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT cardinality(pg_blocking_pids(%s))", (backend_pid,)).fetchone()
            if row and row[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the second copy never waited on the first")


def test_an_arrival_racing_a_departure_that_starts_waiting_on_a_new_stock_applies_it(
    database_url: str,
) -> None:
    """A Kafka departure refused on a (warehouse, product) with no stock row yet, while the first
    arrival for it is being applied elsewhere: neither transaction can see the other's rows. The
    departure's placeholder stock row makes the arrival's insert conflict, so the arrival runs
    again, finds the departure waiting, and applies it: it is never left parked with stock there."""
    warehouse, product, topic = uuid4(), uuid4(), f"race-{uuid4()}"
    departure = body(
        envelope(
            "departure",
            movement_id=new_id(),
            warehouse_id=str(warehouse),
            product_id=str(product),
            quantity=3,
        )
    )
    arrival = body(
        envelope(
            "arrival", movement_id=new_id(), warehouse_id=str(warehouse), product_id=str(product), quantity=5
        )
    )
    answers: list[Outcome] = []
    with psycopg.connect(database_url) as first, psycopg.connect(database_url, autocommit=True) as second:
        with first.transaction():
            [refused] = apply_events(first, [parse_event(departure, Origin.kafka(topic, 1, 0))])
            item = parse_event(arrival, Origin.kafka(topic, 0, 0))
            racing = threading.Thread(
                target=lambda: answers.extend(
                    run_in_transaction(lambda c: apply_events(c, [item]), conn=second)
                )
            )
            racing.start()
            blocked = _blocked_within(database_url, second.info.backend_pid, seconds=2)
        racing.join(30)

    assert (refused.status, refused.reason) == ("rejected", "insufficient_stock")
    assert blocked, "the arrival did not wait for the departure's placeholder"
    assert [a.status for a in answers] == ["applied"]
    with psycopg.connect(database_url) as conn:
        assert get_stock(conn, warehouse, product).quantity == 2
        [(status,)] = conn.execute(
            "SELECT replay_status FROM rejected_events WHERE warehouse_id = %s", (warehouse,)
        ).fetchall()
    assert status == "applied"


def _blocked_within(database_url: str, backend_pid: int, seconds: float) -> bool:
    try:
        _wait_until_blocked(database_url, backend_pid, seconds)
    except AssertionError:
        return False
    return True
