"""Group commit: concurrent webhook events share a transaction, yet each is decided as if alone.

Run against the real ledger (PostgreSQL): a crowd of requests with duplicates and conflicts among
themselves, arriving while earlier batches commit, gets exactly the answers applying them one at a
time in arrival order would give; a batch that fails answers nobody as applied.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence

import psycopg
import pytest

from common.adapters import cache, db
from common.adapters.config import get_settings
from common.domain.events import IncomingEvent, Origin, parse_event
from common.domain.outcomes import Outcome
from common.intake.group_commit import GroupCommit
from tests.e2e.support import body, envelope, new_id

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def ledger_settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CACHE_ENABLED", "false")
    get_settings.cache_clear()
    db.close_pool()
    cache.reset()
    yield
    db.close_pool()
    cache.reset()
    get_settings.cache_clear()


def event(kind: str, movement: str, warehouse: str, product: str, quantity: int) -> bytes:
    return body(
        envelope(kind, movement_id=movement, warehouse_id=warehouse, product_id=product, quantity=quantity)
    )


def item(raw: bytes) -> IncomingEvent:
    return parse_event(raw, Origin.webhook())


async def arrive_in_waves(committer: GroupCommit, raws: list[bytes], wave: int) -> list[Outcome]:
    """Submit in arrival order, `wave` at a time with a pause between: later waves queue while
    earlier batches commit."""
    tasks = []
    for start in range(0, len(raws), wave):
        tasks += [asyncio.create_task(committer.submit(item(raw))) for raw in raws[start : start + wave]]
        await asyncio.sleep(0.002)
    return list(await asyncio.gather(*tasks))


def test_a_crowd_with_duplicates_and_conflicts_is_decided_in_arrival_order() -> None:
    warehouse, product = new_id(), new_id()
    raws = [event("arrival", new_id(), warehouse, product, 40)]
    # Per event: the status and reason applying them one at a time gives, and how it moves the stock.
    expected: list[tuple[str, str | None, int]] = [("applied", None, 40)]
    departures: list[bytes] = []
    for n in range(60):
        movement = new_id()
        if n % 5 == 3 and departures:  # an exact redelivery of an earlier departure
            raws.append(departures[-1])
            expected.append(("duplicate", None, 0))
        elif n % 5 == 4 and departures:  # the same half again with another quantity: a conflict
            conflicting = departures[-1].replace(b'"quantity": 1', b'"quantity": 2')
            raws.append(conflicting)
            expected.append(("rejected", "conflict", 0))
        else:
            raws.append(event("departure", movement, warehouse, product, 1))
            departures.append(raws[-1])
            expected.append(("applied", None, -1))
    raws.append(event("departure", new_id(), warehouse, product, 1000))  # more than is left
    expected.append(("rejected", "insufficient_stock", 0))

    committer = GroupCommit()
    outcomes = asyncio.run(arrive_in_waves(committer, raws, wave=7))

    stock = 0
    for index, (outcome, (status, reason, delta)) in enumerate(zip(outcomes, expected, strict=True)):
        stock += delta
        assert (outcome.status, outcome.reason) == (status, reason), f"event {index}: {outcome}"
        if status != "rejected":
            assert outcome.stock == stock, f"event {index} answered the stock of another moment"
        else:
            assert outcome.rejected_event_id is not None
    assert 1 < committer.batches < len(raws), "the requests were not grouped, or all in one batch"
    with psycopg.connect(get_settings().database_url) as conn:
        logged = conn.execute(
            "SELECT count(*), count(DISTINCT (movement_id, event)) FROM movement_events "
            "WHERE warehouse_id = %s AND product_id = %s",
            (warehouse, product),
        ).fetchone()
        quantity = conn.execute(
            "SELECT quantity FROM stock WHERE warehouse_id = %s AND product_id = %s", (warehouse, product)
        ).fetchone()
    applied = sum(1 for status, _, _ in expected if status == "applied")
    assert logged == (applied, applied), "each applied event logged exactly once"
    assert quantity == (stock,)


def test_a_failed_batch_answers_every_request_with_the_error_and_applies_none() -> None:
    """The batch's connection is killed while it waits for a row lock: nothing is committed, every
    request of it gets the error (the webhook's 503), and a retry applies each event once."""
    url = get_settings().database_url
    held = new_id(), new_id()
    raws = [event("arrival", new_id(), *held, 5)] + [
        event("arrival", new_id(), new_id(), new_id(), 1) for _ in range(9)
    ]
    with psycopg.connect(url) as seed:
        seed.execute(
            "INSERT INTO stock (warehouse_id, product_id, quantity, updated_at) VALUES (%s, %s, 1, now())",
            held,
        )
        seed.commit()
    locker = psycopg.connect(url)
    locker.execute("SELECT 1 FROM stock WHERE warehouse_id = %s AND product_id = %s FOR UPDATE", held)

    killed = threading.Event()

    def kill_the_waiting_batch() -> None:
        with psycopg.connect(url, autocommit=True) as admin:
            for _ in range(200):
                row = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                ).fetchone()
                if row:
                    admin.execute("SELECT pg_terminate_backend(%s)", row)
                    killed.set()
                    return
                time.sleep(0.05)

    async def crowd() -> list[Outcome | BaseException]:
        committer = GroupCommit()
        return await asyncio.gather(*(committer.submit(item(raw)) for raw in raws), return_exceptions=True)

    killer = threading.Thread(target=kill_the_waiting_batch)
    killer.start()
    try:
        answers = asyncio.run(crowd())
    finally:
        killer.join(15)
        locker.rollback()
        locker.close()
    assert killed.is_set(), "the batch never waited on the held lock"
    assert all(isinstance(a, psycopg.OperationalError) for a in answers), answers
    movements = [item(raw).envelope.data.movement_id for raw in raws]  # type: ignore[union-attr]
    with psycopg.connect(url) as conn:
        count = conn.execute(
            "SELECT count(*) FROM movement_events WHERE movement_id = ANY(%s)", (movements,)
        ).fetchone()
    assert count == (0,), "a failed batch applied some of its events"

    retried = asyncio.run(crowd())
    assert [a.status for a in retried if isinstance(a, Outcome)] == ["applied"] * len(raws), retried


def test_a_row_held_by_another_transaction_fails_only_its_own_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lock timeout names one member's row, not the database: the others of its batch are
    applied (each alone), and only the request for the held row gets the error (the webhook's 503)."""
    monkeypatch.setenv("DB_LOCK_TIMEOUT_MS", "300")
    get_settings.cache_clear()
    db.close_pool()
    url = get_settings().database_url
    held = new_id(), new_id()
    blocked = event("arrival", new_id(), *held, 5)
    others = [event("arrival", new_id(), new_id(), new_id(), 1) for _ in range(9)]
    with psycopg.connect(url) as seed:
        seed.execute(
            "INSERT INTO stock (warehouse_id, product_id, quantity, updated_at) VALUES (%s, %s, 1, now())",
            held,
        )
        seed.commit()

    async def crowd() -> tuple[GroupCommit, list[Outcome | BaseException]]:
        committer = GroupCommit()
        raws = [others[0], blocked, *others[1:]]  # submitted together: one batch
        answers = await asyncio.gather(*(committer.submit(item(raw)) for raw in raws), return_exceptions=True)
        return committer, answers

    with psycopg.connect(url) as locker:
        locker.execute("SELECT 1 FROM stock WHERE warehouse_id = %s AND product_id = %s FOR UPDATE", held)
        committer, answers = asyncio.run(crowd())
        locker.rollback()
    assert isinstance(answers[1], psycopg.errors.LockNotAvailable), answers[1]
    assert [a.status for a in answers if isinstance(a, Outcome)] == ["applied"] * 9, answers
    assert committer.batches == 9, "the failed batch was split: each of the others alone"
    with psycopg.connect(url) as conn:
        quantity = conn.execute(
            "SELECT quantity FROM stock WHERE warehouse_id = %s AND product_id = %s", held
        ).fetchone()
    assert quantity == (1,), "the held row's event was not applied"


def test_a_held_row_delays_only_its_own_requests(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another session holds one stock row: the request for it waits out DB_LOCK_TIMEOUT_MS, and the
    requests for other rows that arrive meanwhile are answered while it still waits."""
    monkeypatch.setenv("DB_LOCK_TIMEOUT_MS", "8000")
    get_settings.cache_clear()
    db.close_pool()
    warehouse, product = new_id(), new_id()
    committer = GroupCommit()

    async def scenario(holder: psycopg.Connection) -> None:
        first = await committer.submit(item(event("arrival", new_id(), warehouse, product, 1)))
        assert first.status.value == "applied"
        holder.execute(
            "SELECT 1 FROM stock WHERE warehouse_id = %s AND product_id = %s FOR UPDATE", (warehouse, product)
        )
        held = asyncio.create_task(committer.submit(item(event("arrival", new_id(), warehouse, product, 1))))
        await asyncio.sleep(0.5)  # its group is waiting on the lock now
        others = [
            asyncio.create_task(committer.submit(item(event("arrival", new_id(), new_id(), new_id(), 2))))
            for _ in range(5)
        ]
        done, _ = await asyncio.wait(others, timeout=6)  # well inside the 8 s lock wait
        assert len(done) == 5, "requests for other rows waited behind the held one"
        assert not held.done()
        assert {task.result().status.value for task in others} == {"applied"}
        holder.rollback()  # released: the held request goes through too
        assert (await held).status.value == "applied"

    with psycopg.connect(database_url) as holder:
        asyncio.run(scenario(holder))


def test_a_statement_timeout_in_a_large_group_is_not_fanned_out_into_single_transactions() -> None:
    """A group of 40 whose transaction hit DB_STATEMENT_TIMEOUT_MS: each member gets that error
    (503 over HTTP), and no 40 more transactions are run against a database already too slow."""
    calls: list[int] = []

    def timed_out(items: Sequence[IncomingEvent]) -> list[Outcome]:
        calls.append(len(items))
        raise psycopg.errors.QueryCanceled("canceling statement due to statement timeout")

    committer = GroupCommit(ingest=timed_out)

    async def crowd() -> list[BaseException | Outcome]:
        raws = [event("arrival", new_id(), new_id(), new_id(), 1) for _ in range(40)]
        blocker = asyncio.create_task(committer.submit(item(raws[0])))  # the rest queue behind it
        await asyncio.sleep(0)
        rest = [asyncio.create_task(committer.submit(item(raw))) for raw in raws[1:]]
        return list(await asyncio.gather(blocker, *rest, return_exceptions=True))

    answers = asyncio.run(crowd())
    assert all(isinstance(a, psycopg.errors.QueryCanceled) for a in answers)
    assert calls == [1, 39], calls


def test_a_race_still_lost_after_the_retries_is_a_503_with_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The documented answer to "lost races beyond the retries": 503 Retry-After, not a 500."""
    from starlette.testclient import TestClient

    from common.ledger import use_cases
    from functions.http.app import make_app
    from functions.webhook.routes import router

    attempts: list[int] = []

    def always_raced(conn: psycopg.Connection, items: object, **kwargs: object) -> object:
        attempts.append(1)
        raise db.LostRace("a stock row this batch creates was created concurrently")

    monkeypatch.setattr(use_cases, "apply_batch", always_raced)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # the retries' pauses
    client = TestClient(make_app([router], lambda_mode=True), raise_server_exceptions=False)
    raw = event("arrival", new_id(), new_id(), new_id(), 1)
    answer = client.post("/api/v1/kafka/webhook", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"]
    assert len(attempts) == db.TRANSACTION_ATTEMPTS
