"""An async PostgreSQL pool for the cached reads' misses, so a GET never leaves the event loop.

Writes keep the synchronous pool of `common.adapters.db` (a transaction runs in a thread, see
`common.intake.group_commit`). An async pool belongs to the event loop that opened it, so there is one per
loop: a uvicorn worker has one loop, Mangum keeps one per Lambda container, a test client makes
its own. Opened on the first miss, never at import. Its faults are those of the synchronous pool
(`psycopg.OperationalError`, `PoolTimeout` included): the HTTP layer answers them 503. Its
connections come from the synchronous pool's factory (`common.adapters.db.open_async_pool`).
"""

from __future__ import annotations

import asyncio
import weakref

from psycopg_pool import AsyncConnectionPool

from common.adapters.db import open_async_pool

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[AsyncConnectionPool]] = (
    weakref.WeakKeyDictionary()
)


async def _open() -> AsyncConnectionPool:
    # The synchronous pool's factory: rotation, session guards (statement_timeout, lock_timeout,
    # UTC in the startup packet, no SET per connection) and the RDS Proxy rules.
    pool = open_async_pool("warehouse-reads")
    await pool.open(wait=False)
    return pool


async def get_async_pool() -> AsyncConnectionPool:
    """This event loop's pool, opened on first use (concurrent first callers share one)."""
    loop = asyncio.get_running_loop()
    opening = _pools.get(loop)
    if opening is None or (opening.done() and opening.exception() is not None):
        opening = _pools[loop] = loop.create_task(_open())
    return await asyncio.shield(opening)


async def close_async_pool() -> None:
    """Close this loop's pool (the local app's shutdown)."""
    opening = _pools.pop(asyncio.get_running_loop(), None)
    if opening is not None and opening.done() and opening.exception() is None:
        await opening.result().close()


def forget_async_pools() -> None:
    """Drop every loop's pool without closing it (tests that change DATABASE_URL)."""
    _pools.clear()
