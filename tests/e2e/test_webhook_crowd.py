"""The webhook under a crowd: requests share transactions (group commit), answers stay each its own."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.e2e.support import WEBHOOK, AppProcess, body, envelope, free_port, new_id, start_app

CROWD = 48


def test_a_crowd_of_copies_and_conflicting_versions_applies_each_half_once(
    app: AppProcess, database_url: str
) -> None:
    """48 requests at once over 12 movements: per movement two exact copies of one arrival and two
    copies of a conflicting version. Whatever order they land in, each movement is applied once (one
    200 `applied`, its copies `duplicate`, the other version 409 conflict), and the stock is the
    sum of what was applied."""
    warehouse, product = new_id(), new_id()
    requests: list[bytes] = []
    for n in range(CROWD // 4):
        movement = new_id()
        one = body(
            envelope("arrival", movement_id=movement, warehouse_id=warehouse, product_id=product, quantity=3)
        )
        other = body(
            envelope("arrival", movement_id=movement, warehouse_id=warehouse, product_id=product, quantity=4)
        )
        requests += [one, other, one, other] if n % 2 else [other, one, other, one]
    with httpx.Client(base_url=app.url, timeout=60) as client, ThreadPoolExecutor(CROWD) as pool:
        answers = list(pool.map(lambda raw: client.post(WEBHOOK, content=raw), requests))

    by_movement: dict[str, list[httpx.Response]] = {}
    for raw, answer in zip(requests, answers, strict=True):
        by_movement.setdefault(raw.split(b'"movement_id": "')[1][:36].decode(), []).append(answer)
    applied_total = 0
    for movement, group in by_movement.items():
        statuses = sorted((a.status_code, a.json()["status"]) for a in group)
        assert statuses == [(200, "applied"), (200, "duplicate"), (409, "rejected"), (409, "rejected")], (
            movement
        )
        winner = next(a.json() for a in group if a.json()["status"] == "applied")
        assert all(
            a.json()["reason"] == "conflict" and a.json()["rejected_event_id"]
            for a in group
            if a.status_code == 409
        )
        applied_total += winner["quantity"]
    with psycopg.connect(database_url) as conn:
        logged = conn.execute(
            "SELECT count(*), coalesce(sum(quantity), 0) FROM movement_events WHERE warehouse_id = %s",
            (warehouse,),
        ).fetchone()
        stock = conn.execute("SELECT quantity FROM stock WHERE warehouse_id = %s", (warehouse,)).fetchone()
    assert logged == (CROWD // 4, applied_total)
    assert stock == (applied_total,)
    final = max(a.json()["stock"] for a in answers if a.status_code == 200)
    assert final == applied_total, "the last answer's stock is the stock after every applied event"


@pytest.fixture(scope="module")
def app_without_postgres(
    app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppProcess]:
    dead = f"postgresql://warehouse:warehouse@127.0.0.1:{free_port()}/nowhere"
    log = Path(tmp_path_factory.mktemp("group-no-postgres")) / "uvicorn.log"
    process = start_app({**app_env, "DATABASE_URL": dead, "DB_POOL_TIMEOUT_SECONDS": "1"}, log)
    yield process
    process.stop()


def test_every_queued_request_is_503_while_postgres_is_down(app_without_postgres: AppProcess) -> None:
    raws = [
        body(
            envelope("arrival", movement_id=new_id(), warehouse_id=new_id(), product_id=new_id(), quantity=1)
        )
        for _ in range(24)
    ]
    with (
        httpx.Client(base_url=app_without_postgres.url, timeout=60) as client,
        ThreadPoolExecutor(24) as pool,
    ):
        answers = list(pool.map(lambda raw: client.post(WEBHOOK, content=raw), raws))
    assert [a.status_code for a in answers] == [503] * len(raws), [
        a.text for a in answers if a.status_code != 503
    ]
    assert all(int(a.headers["retry-after"]) > 0 for a in answers)
    assert all(a.json()["request_id"] == a.headers["x-request-id"] for a in answers)
    assert "Traceback" not in app_without_postgres.log()
