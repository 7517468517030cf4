"""An async PostgreSQL pool for the cached reads' misses, so a GET never leaves the event loop.

Writes keep the synchronous pool of `common.adapters.db` (a transaction runs in a thread, see
`common.intake.group_commit`). An async pool belongs to the event loop that opened it, so there is one per
loop: a uvicorn worker has one loop, Mangum keeps one per Lambda container, a test client makes
its own. Opened on the first miss, never at import. Its faults are those of the synchronous pool
(`psycopg.OperationalError`, `PoolTimeout` included): the HTTP layer answers them 503.
"""

from __future__ import annotations

import asyncio
import weakref

import psycopg
from psycopg_pool import AsyncConnectionPool

from common.adapters.config import get_settings
from common.adapters.db import database_url

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[AsyncConnectionPool]] = (
    weakref.WeakKeyDictionary()
)


async def _configure(conn: psycopg.AsyncConnection) -> None:
    """Sessions in UTC, like the synchronous pool's (`common.adapters.db._configure`)."""
    await conn.execute("SET TIME ZONE 'UTC'")
    if not conn.autocommit:
        await conn.commit()


async def _open() -> AsyncConnectionPool:
    settings = get_settings()
    # database_url() may ask Secrets Manager (DB_SECRET_ARN): a blocking call, once per loop.
    url = await asyncio.to_thread(database_url)
    pool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=settings.db_pool_max,
        kwargs={"connect_timeout": max(1, int(settings.db_pool_timeout_seconds))},
        check=AsyncConnectionPool.check_connection,
        configure=_configure,
        open=False,
        timeout=settings.db_pool_timeout_seconds,
        max_lifetime=settings.db_pool_max_lifetime_seconds,
        name="warehouse-reads",
    )
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
