"""A row lock held elsewhere costs the requests that need that row a quick 503, and nobody else a thing.

`psql` (another client, as an operator's open transaction would be) locks a stock row and keeps
its transaction open. The real app, started with a 1 s DB_LOCK_TIMEOUT_MS and a pool of 4, is
sent as many writes for that row as it has connections: each gives up after the lock timeout and
answers 503 with Retry-After, giving its connection back, so writes for other rows and /health,
sent meanwhile, are answered as usual. Once the lock is gone the same write is applied.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import WEBHOOK, AppProcess, body, envelope, new_id, start_app

LOCK_TIMEOUT_MS = 1000
POOL = 4


@pytest.fixture(scope="module")
def lock_app(app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    log = Path(tmp_path_factory.mktemp("lock-app")) / "uvicorn.log"
    env = {**app_env, "DB_LOCK_TIMEOUT_MS": str(LOCK_TIMEOUT_MS), "DB_POOL_MAX": str(POOL),
           "DB_POOL_TIMEOUT_SECONDS": "3"}  # fmt: skip
    process = start_app(env, log)
    yield process
    process.stop()


class RowLock:
    """`psql` holding `SELECT ... FOR UPDATE` on one stock row in an open transaction."""

    def __init__(self, database_url: str, warehouse: str, product: str) -> None:
        psql = shutil.which("psql")
        if psql is None:
            pytest.skip("psql is not installed")
        self.process = subprocess.Popen(
            [psql, database_url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(
            "BEGIN;\n"
            f"SELECT quantity FROM stock WHERE warehouse_id = '{warehouse}' AND product_id = '{product}' "
            "FOR UPDATE;\n\\echo locked\n"
        )
        self.process.stdin.flush()
        lines = []
        while (line := self.process.stdout.readline()) and line.strip() != "locked":
            lines.append(line)
        assert line.strip() == "locked", lines
        assert lines == ["5\n"], lines  # the row exists and is now locked

    def release(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("ROLLBACK;\n\\q\n")
            self.process.stdin.flush()
            self.process.wait(timeout=10)


def arrival(warehouse: str, product: str, quantity: int, movement: str | None = None) -> bytes:
    return body(envelope("arrival", movement_id=movement or new_id(), warehouse_id=warehouse,
                         product_id=product, quantity=quantity))  # fmt: skip


def timed_post(client: httpx.Client, content: bytes) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = client.post(WEBHOOK, content=content)
    return response, time.monotonic() - began


def test_a_locked_row_is_a_quick_503_and_the_pool_keeps_serving_everyone_else(
    lock_app: AppProcess, database_url: str
) -> None:
    w, p = new_id(), new_id()
    with httpx.Client(base_url=lock_app.url, timeout=60) as client:
        assert client.post(WEBHOOK, content=arrival(w, p, 5)).status_code == 200
        lock = RowLock(database_url, w, p)
        try:
            blocked = [arrival(w, p, 1) for _ in range(POOL)]  # one per pooled connection
            others = [arrival(new_id(), new_id(), 2) for _ in range(POOL)]
            with ThreadPoolExecutor(2 * POOL + 1) as pool:
                waiting = [pool.submit(timed_post, client, raw) for raw in blocked]
                time.sleep(0.3)  # the blocked writes now hold every connection, waiting on the lock
                served = [pool.submit(timed_post, client, raw) for raw in others]
                health = pool.submit(client.get, "/health")
                blocked_answers = [f.result() for f in waiting]
                other_answers = [f.result() for f in served]
                assert health.result().status_code == 200

            for response, seconds in blocked_answers:
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == "1"
                assert response.json()["detail"] == "the data is locked by another transaction, retry shortly"
                # About one lock timeout (plus a wait for a connection under load), never "until the
                # lock goes away", which would be 60 s here.
                assert seconds < LOCK_TIMEOUT_MS / 1000 + 4, seconds
            for response, _ in other_answers:
                assert response.status_code == 200, response.text
                assert response.json()["status"] == "applied"
        finally:
            lock.release()

        movement = new_id()
        retried = client.post(WEBHOOK, content=arrival(w, p, 1, movement))
        assert retried.status_code == 200 and retried.json()["stock"] == 6
    assert "Traceback" not in lock_app.log()
