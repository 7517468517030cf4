"""A write while Redis is unreachable must not leave the old stock readable once Redis is back.

Redis is reached through a TCP proxy the test can cut: a network partition, Redis itself keeping
its data (a freeze with SIGSTOP would not do: the bump waits in the socket and runs on resume).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from uuid import uuid4

import pytest

from common.adapters import cache, db
from common.adapters.config import get_settings
from common.adapters.db_async import close_async_pool
from common.domain.events import Origin, parse_event
from common.ledger.use_cases import ingest
from common.reads.stock import read_stock_json
from tests.e2e.support import body, envelope, new_id, start_redis
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_behind_proxy(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpProxy]:
    """The service's cache on a redis-server of this test's own, reached through a cuttable proxy."""
    server = start_redis()
    proxy = TcpProxy(server.port)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{proxy.port}/0")
    monkeypatch.setenv("CACHE_ENABLED", "true")
    get_settings.cache_clear()
    cache.reset()
    db.close_pool()
    global _loop
    try:
        with asyncio.Runner() as _loop:  # the async reads' loop (their client and pool) for the test
            yield proxy
            _loop.run(close_async_pool())
    finally:
        proxy.cut()
        server.stop()
        cache.reset()
        db.close_pool()
        get_settings.cache_clear()


def _arrival(warehouse: object, product: object, quantity: int) -> bytes:
    return body(
        envelope(
            "arrival",
            movement_id=new_id(),
            warehouse_id=str(warehouse),
            product_id=str(product),
            quantity=quantity,
        )
    )


_loop: asyncio.Runner


def _quantity(warehouse: object, product: object) -> int:
    return json.loads(_loop.run(read_stock_json(warehouse, product)))["quantity"]  # type: ignore[arg-type]


def test_a_write_while_redis_is_unreachable_is_not_hidden_by_the_old_cache_entry(
    redis_behind_proxy: TcpProxy,
) -> None:
    warehouse, product = uuid4(), uuid4()
    ingest([parse_event(_arrival(warehouse, product, 5), Origin.webhook())])
    assert _quantity(warehouse, product) == 5  # now cached
    assert _quantity(warehouse, product) == 5

    redis_behind_proxy.cut()
    ingest([parse_event(_arrival(warehouse, product, 2), Origin.webhook())])
    assert _quantity(warehouse, product) == 7  # from PostgreSQL while Redis is out of reach
    redis_behind_proxy.restore()

    # Redis is reachable again, with the entry cached before the write still in it.
    for _ in range(3):
        assert _quantity(warehouse, product) == 7
        time.sleep(0.6)
    ingest([parse_event(_arrival(warehouse, product, 1), Origin.webhook())])
    assert _quantity(warehouse, product) == 8
