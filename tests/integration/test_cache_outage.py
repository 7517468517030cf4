"""A write while Redis is unreachable must not leave the old stock readable once Redis is back.

Redis is reached through a TCP proxy the test can cut: a network partition, Redis itself keeping
its data (a freeze with SIGSTOP would not do: the bump waits in the socket and runs on resume).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from uuid import uuid4

import pytest

from common import cache, db
from common.config import get_settings
from common.db_async import close_async_pool
from common.events import Origin, parse_event
from common.reads import read_stock_json
from common.service import ingest
from tests.e2e.support import body, envelope, free_port, new_id, start_redis

pytestmark = pytest.mark.integration


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to a target port until cut; cut = every connection dropped and
    new ones refused, as in a network partition."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()


@pytest.fixture
def redis_behind_proxy(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CuttableProxy]:
    """The service's cache on a redis-server of this test's own, reached through a cuttable proxy."""
    server = start_redis()
    proxy = CuttableProxy(server.port)
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
            "arrival", movement_id=new_id(), warehouse_id=str(warehouse), product_id=str(product),
            quantity=quantity,
        )
    )


_loop: asyncio.Runner


def _quantity(warehouse: object, product: object) -> int:
    return json.loads(_loop.run(read_stock_json(warehouse, product)))["quantity"]  # type: ignore[arg-type]


def test_a_write_while_redis_is_unreachable_is_not_hidden_by_the_old_cache_entry(
    redis_behind_proxy: CuttableProxy,
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
