"""Cache versions never repeat: an expired or evicted version cannot revive an old entry.

The README promises a read never serves a value older than a committed write. With versions
counted per key (INCR), a version key that expired (after 2 x the TTL) or was evicted (Redis
under `allkeys-lru`) restarted at 1 and readers were served the entry cached under the first
version. These tests drop the version key between two writes, as expiry and eviction do.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
import redis

from common.adapters import cache, db
from common.adapters.config import get_settings
from common.adapters.db_async import close_async_pool
from common.domain.events import Origin, parse_event
from common.ledger.use_cases import ingest
from common.reads.stock import read_stock_json
from tests.e2e.support import PROJECT_ROOT, body, envelope, new_id

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_client(redis_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    global _loop
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CACHE_ENABLED", "true")
    get_settings.cache_clear()
    db.close_pool()
    cache.reset()
    client = redis.Redis.from_url(redis_url)
    with asyncio.Runner() as _loop:
        yield client
        _loop.run(close_async_pool())
    client.close()
    db.close_pool()
    cache.reset()
    get_settings.cache_clear()


_loop: asyncio.Runner


def arrive(warehouse: UUID, product: UUID, quantity: int) -> None:
    payload = envelope(
        "arrival",
        movement_id=new_id(),
        warehouse_id=str(warehouse),
        product_id=str(product),
        quantity=quantity,
    )
    ingest([parse_event(body(payload), Origin.webhook())])


def quantity(warehouse: UUID, product: UUID) -> int:
    return int(json.loads(_loop.run(read_stock_json(warehouse, product)))["quantity"])


@pytest.mark.parametrize("how", ["expired", "evicted"])
def test_a_dropped_version_key_never_serves_the_entry_from_before_a_write(
    redis_client: redis.Redis, how: str
) -> None:
    warehouse, product = uuid4(), uuid4()
    version_key = f"ver:{cache.stock_name(warehouse, product)}"
    arrive(warehouse, product, 5)
    assert quantity(warehouse, product) == 5  # now cached under the current version
    assert quantity(warehouse, product) == 5  # served from the cache

    if how == "expired":
        redis_client.pexpire(version_key, 1)
        redis_client.get(version_key)  # an expired key is gone once touched
    else:
        redis_client.delete(version_key)  # what allkeys-lru does to a cold key
    arrive(warehouse, product, 2)

    assert quantity(warehouse, product) == 7


def test_a_dropped_generation_key_is_re_created_with_a_new_token(redis_client: redis.Redis) -> None:
    warehouse, product = uuid4(), uuid4()
    arrive(warehouse, product, 1)
    assert quantity(warehouse, product) == 1
    before = redis_client.get(cache.GENERATION_KEY)
    redis_client.delete(cache.GENERATION_KEY, f"ver:{cache.stock_name(warehouse, product)}")
    arrive(warehouse, product, 1)
    assert quantity(warehouse, product) == 2
    after = redis_client.get(cache.GENERATION_KEY)
    assert before and after and after != before


READER = """
import asyncio, json, sys
from uuid import UUID
from common.adapters.db_async import close_async_pool
from common.reads.stock import read_stock_json

async def main():
    try:
        return await read_stock_json(UUID(sys.argv[1]), UUID(sys.argv[2]))
    finally:
        await close_async_pool()  # an async pool left open can hang the interpreter's exit

print(json.loads(asyncio.run(main()))["quantity"])
"""


def read_in_another_process(warehouse: UUID, product: UUID, database_url: str, redis_url: str) -> int:
    """What another worker or poller process reads: it shares Redis, not this process's memory."""
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "CACHE_ENABLED": "true"}
    command = [sys.executable, "-c", READER, str(warehouse), str(product)]
    done = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
                          check=True)  # fmt: skip
    return int(done.stdout.strip())


def test_a_bump_that_timed_out_once_does_not_let_another_process_serve_the_old_value(
    redis_client: redis.Redis, redis_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse, product = uuid4(), uuid4()
    arrive(warehouse, product, 5)
    assert read_in_another_process(warehouse, product, database_url, redis_url) == 5  # cached there
    assert redis_client.exists(f"val:{cache.stock_name(warehouse, product)}")

    real_bump = cache._bump_script
    failures: list[int] = []

    def times_out_once(**kwargs: object) -> object:
        if not failures:
            failures.append(1)
            raise redis.TimeoutError("Timeout reading from socket")  # Redis slow for a moment
        return real_bump(**kwargs)

    monkeypatch.setattr(cache, "_bump_script", times_out_once)
    arrive(warehouse, product, 7)  # committed and answered: stock 12
    assert failures == [1]

    assert read_in_another_process(warehouse, product, database_url, redis_url) == 12
    assert quantity(warehouse, product) == 12


def test_one_batch_gives_every_key_it_changed_a_version_it_never_had(redis_client: redis.Redis) -> None:
    """A batch's bump sets one fresh token on all its keys: each still changes, and reads follow."""
    warehouse, products = uuid4(), [uuid4(), uuid4()]
    for product in products:
        arrive(warehouse, product, 5)
        assert quantity(warehouse, product) == 5  # cached under the current version
    version_keys = [f"ver:{cache.stock_name(warehouse, product)}" for product in products]
    before = [redis_client.get(key) for key in version_keys]
    items = [
        parse_event(body(envelope("arrival", movement_id=new_id(), warehouse_id=str(warehouse),
                                  product_id=str(product), quantity=2)), Origin.webhook())
        for product in products
    ]  # fmt: skip
    ingest(items)  # one transaction, one bump
    after = [redis_client.get(key) for key in version_keys]
    assert all(new is not None and new != old for old, new in zip(before, after, strict=True))
    assert [quantity(warehouse, product) for product in products] == [7, 7]
