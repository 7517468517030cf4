"""Copies of one event racing each other: one applied, the rest duplicates, all answering the true stock."""

from __future__ import annotations

import threading
from uuid import uuid4

import psycopg
import pytest

from common.events import Origin, parse_event
from common.ledger import Outcome, apply_events
from common.views import get_stock
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
                answers.extend(apply_events(conn, [parse_event(raw, Origin.webhook())]))
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
                "arrival", movement_id=new_id(), warehouse_id=str(warehouse), product_id=str(product),
                quantity=3,
            )
        )

        answers, errors = _race(database_url, raw)

        assert not errors
        assert sorted(a.status for a in answers) == ["applied"] + ["duplicate"] * (COPIES - 1)
        assert [a.stock for a in answers] == [3] * COPIES
        with psycopg.connect(database_url) as conn:
            assert get_stock(conn, warehouse, product).quantity == 3
