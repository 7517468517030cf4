"""A write during a Redis freeze must not leave the old stock readable once Redis answers again."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from uuid import uuid4

import pytest

from common import cache, db
from common.config import get_settings
from common.events import EVENT_TYPE, Origin, parse_event
from common.service import ingest
from common.views import read_stock_json
from tests.e2e.support import RedisProcess, start_redis

pytestmark = pytest.mark.integration


@pytest.fixture
def private_redis(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisProcess]:
    """The service's cache pointed at a redis-server of this test's own, which it may freeze."""
    server = start_redis()
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("CACHE_ENABLED", "true")
    get_settings.cache_clear()
    cache.reset()
    db.close_pool()
    try:
        yield server
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
        server.stop()
        cache.reset()
        db.close_pool()
        get_settings.cache_clear()


def _arrival(warehouse: object, product: object, quantity: int) -> bytes:
    return json.dumps(
        {
            "id": str(uuid4()),
            "source": "WH-1",
            "specversion": "1.0",
            "type": EVENT_TYPE,
            "data": {
                "movement_id": str(uuid4()),
                "warehouse_id": str(warehouse),
                "product_id": str(product),
                "event": "arrival",
                "quantity": quantity,
                "timestamp": "2025-02-18T12:00:00Z",
            },
        }
    ).encode()


def _quantity(warehouse: object, product: object) -> int:
    return json.loads(read_stock_json(warehouse, product))["quantity"]  # type: ignore[arg-type]


def test_a_write_while_redis_is_frozen_is_not_hidden_by_the_old_cache_entry(
    private_redis: RedisProcess,
) -> None:
    warehouse, product = uuid4(), uuid4()
    ingest([parse_event(_arrival(warehouse, product, 5), Origin.webhook())])
    assert _quantity(warehouse, product) == 5  # now cached
    assert _quantity(warehouse, product) == 5

    os.kill(private_redis.process.pid, signal.SIGSTOP)  # frozen: connections hang, nothing is lost
    try:
        ingest([parse_event(_arrival(warehouse, product, 2), Origin.webhook())])
        assert _quantity(warehouse, product) == 7  # from PostgreSQL while Redis does not answer
    finally:
        os.kill(private_redis.process.pid, signal.SIGCONT)

    # Redis answers again with the entry cached before the write still in it.
    for _ in range(3):
        assert _quantity(warehouse, product) == 7
    ingest([parse_event(_arrival(warehouse, product, 1), Origin.webhook())])
    assert _quantity(warehouse, product) == 8
