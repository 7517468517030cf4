"""The service's PostgreSQL sessions: guards from the startup packet, their faults, the proxy mode.

On the real test database: what a pooled session runs with, and that it got it without a SET
(pg_settings.source is `client` for startup options, `session` for SET); a lock or statement
timeout surfacing at once instead of being retried; and, "behind an RDS Proxy" (DB_PROXY_ENDPOINT
pointing at the same server), no startup options, no prepared statements, one warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from common.adapters import db
from common.adapters.config import get_settings
from common.intake import outage

pytestmark = pytest.mark.integration

GUARDS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "TimeZone")


@pytest.fixture
def service(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The service's pool on the test database with distinctive guard values."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "4321")
    monkeypatch.setenv("DB_LOCK_TIMEOUT_MS", "300")
    monkeypatch.setenv("DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", "6789")
    for name in ("DB_SECRET_ARN", "DB_PROXY_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    db.close_pool()
    monkeypatch.setattr(db, "_proxy_settings_checked", False)
    yield database_url
    db.close_pool()
    get_settings.cache_clear()


def guards_of(conn: psycopg.Connection) -> dict[str, tuple[str, str]]:
    rows = conn.execute(
        "SELECT name, setting, source FROM pg_settings WHERE name = ANY(%s)", (list(GUARDS),)
    ).fetchall()
    return {name: (setting, source) for name, setting, source in rows}


def test_pooled_sessions_get_their_guards_from_the_startup_packet(service) -> None:
    with db.get_pool().connection() as conn:
        assert guards_of(conn) == {
            "statement_timeout": ("4321", "client"),
            "lock_timeout": ("300", "client"),
            "idle_in_transaction_session_timeout": ("6789", "client"),
            "TimeZone": ("UTC", "client"),
        }
    with db.connect() as conn:  # the CLIs' connections too
        assert guards_of(conn)["lock_timeout"] == ("300", "client")
    with db.connect(session={"statement_timeout": "0"}) as conn:
        assert guards_of(conn)["statement_timeout"] == ("0", "client")


def test_a_lock_wait_past_its_limit_fails_at_once_and_is_not_retried(service) -> None:
    with psycopg.connect(service) as holder:
        # Any lock wait counts against lock_timeout; an advisory lock needs no table of the test's.
        holder.execute("SELECT pg_advisory_xact_lock(4242)")
        attempts = []

        def work(conn: psycopg.Connection) -> None:
            attempts.append(1)
            conn.execute("SELECT pg_advisory_xact_lock(4242)")

        began = time.monotonic()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            db.run_in_transaction(work)
        assert attempts == [1]
        assert time.monotonic() - began < 1.5  # one 0.3 s wait, not five
        holder.rollback()


def test_a_statement_past_its_limit_is_canceled_by_the_server(service) -> None:
    began = time.monotonic()
    with pytest.raises(psycopg.errors.QueryCanceled):
        db.run_in_transaction(lambda conn: conn.execute("SELECT pg_sleep(10)"))
    assert time.monotonic() - began < 6
    # The connection went back to the pool usable.
    assert db.run_in_transaction(lambda conn: conn.execute("SELECT 1").fetchone()) == (1,)


def test_behind_a_proxy_no_startup_options_no_prepared_statements_and_one_warning(
    service, monkeypatch, caplog
) -> None:
    host = conninfo_to_dict(service)["host"]
    monkeypatch.setenv("DB_PROXY_ENDPOINT", str(host))  # "the proxy" is the same server here
    get_settings.cache_clear()
    caplog.set_level(logging.WARNING, logger="common.adapters.db")

    for _ in range(2):
        with db.get_pool().connection() as conn:
            for _ in range(8):  # psycopg prepares a query on its 5th run unless told not to
                conn.execute("SELECT %s::int + 1", (1,)).fetchone()
            assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)
            assert guards_of(conn)["statement_timeout"][1] != "client"
            conn.rollback()
    warnings = [r.getMessage() for r in caplog.records if "RDS Proxy" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once per process, not per connection
    assert "statement_timeout=" in warnings[0] and "initialization query" in warnings[0]

    db.close_pool()
    monkeypatch.delenv("DB_PROXY_ENDPOINT")
    get_settings.cache_clear()
    with db.get_pool().connection() as conn:  # and directly, psycopg does prepare them
        for _ in range(8):
            conn.execute("SELECT %s::int + 1", (1,)).fetchone()
        prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        assert prepared is not None and prepared[0] >= 1


def test_unreachable_is_told_apart_from_a_query_that_failed() -> None:
    from psycopg_pool import PoolTimeout

    assert outage.is_unreachable(PoolTimeout("no connection"))
    assert outage.is_unreachable(psycopg.OperationalError("connection refused"))
    assert outage.is_unreachable(psycopg.errors.AdminShutdown("terminating connection"))
    assert outage.is_unreachable(psycopg.errors.TooManyConnections("too many clients"))
    assert not outage.is_unreachable(psycopg.errors.LockNotAvailable("lock timeout"))
    assert not outage.is_unreachable(psycopg.errors.QueryCanceled("statement timeout"))
    assert not outage.is_unreachable(ValueError("not a database fault"))


def test_the_async_read_pool_has_the_same_guards_and_proxy_rules(service, monkeypatch) -> None:
    """GET stock's misses (the async pool) run under statement_timeout and lock_timeout, from the
    startup packet (no SET per connection); behind a proxy, neither options nor prepared statements."""
    import asyncio

    from common.adapters.db_async import close_async_pool, forget_async_pools, get_async_pool

    async def session(executions: int) -> tuple[dict[str, tuple[str, str]], int]:
        pool = await get_async_pool()
        async with pool.connection() as conn:
            for _ in range(executions):  # psycopg prepares a query on its 5th run unless told not to
                await (await conn.execute("SELECT %s::int + 1", (1,))).fetchone()
            cursor = await conn.execute(
                "SELECT name, setting, source FROM pg_settings WHERE name = ANY(%s)", (list(GUARDS),)
            )
            guards = {name: (setting, source) for name, setting, source in await cursor.fetchall()}
            prepared = await (await conn.execute("SELECT count(*) FROM pg_prepared_statements")).fetchone()
        await close_async_pool()
        assert prepared is not None
        return guards, int(prepared[0])

    forget_async_pools()
    guards, _ = asyncio.run(session(1))
    assert guards == {
        "statement_timeout": ("4321", "client"),
        "lock_timeout": ("300", "client"),
        "idle_in_transaction_session_timeout": ("6789", "client"),
        "TimeZone": ("UTC", "client"),
    }

    monkeypatch.setenv("DB_PROXY_ENDPOINT", str(conninfo_to_dict(service)["host"]))
    get_settings.cache_clear()
    guards, prepared = asyncio.run(session(8))
    assert prepared == 0
    assert all(source != "client" for _, source in guards.values())
    assert all(source != "session" for _, source in guards.values())  # no SET: it would pin the session
