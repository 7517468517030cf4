"""PostgreSQL connections: one lazily opened pool per process (a Lambda container or the local app).

Every session starts with the same guards: `statement_timeout`, `lock_timeout`,
`idle_in_transaction_session_timeout` (DB_*_MS) and `TimeZone=UTC`. They travel in the startup
packet (libpq `options=-c ...`), so a new connection costs no extra round trip and carries no
session state a `SET` would leave behind. Behind an RDS Proxy (DB_PROXY_ENDPOINT) neither works:
the proxy refuses `options` ("RDS Proxy currently doesn't support command-line options") and pins
a session for every `SET`, so there the guards must come from the database side (the proxy's
initialization query, or `ALTER ROLE ... SET`); the first connection of a process checks what it
got and warns when that differs. Server-side prepared statements are off there too: the proxy
pins a session that prepares one.

The connection details are read for every new connection, never once per process: from Secrets
Manager (DB_SECRET_ARN, cached by Powertools) or DATABASE_URL. A pooled connection lives at most
DB_POOL_MAX_LIFETIME_SECONDS, and a login refused with cached credentials re-reads the secret at
once and tries again, so a rotated password takes effect without waiting for the cache to expire.
Neither the URL nor the password is ever logged.

Both pools (this synchronous one for writes and lists, `common.adapters.db_async` for the cached
reads' misses) are built from the one factory here, `pool_arguments`, with the connection classes
below: the same connection details (read per connection), the same re-read of the secret on a
refused login, the same session guards and the same RDS Proxy rules. A pool added later takes the
same arguments and cannot miss one of them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

import psycopg
from psycopg import errors
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from common.adapters.config import Settings, get_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")


class LostRace(errors.SerializationFailure):
    """Another transaction created a row this one meant to create: run the work again.

    A serialization failure in kind (SQLSTATE 40001, an OperationalError): one still lost after
    the retries is answered like any other, 503 with Retry-After, never a bare 500.
    """


# Faults worth retrying at once: the transaction lost a race, not a rule. A lock timeout
# (LockNotAvailable) is not one: another transaction has held the row for DB_LOCK_TIMEOUT_MS
# already, and five more waits would hold the request (and its pooled connection) for 10 s or
# more. It propagates instead: a 503 with Retry-After over HTTP, a failed batch on Kafka.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    LostRace,
    errors.SerializationFailure,
    errors.DeadlockDetected,
)

# A login refused with the cached secret forces a fresh read of it, at most this often (a wrong
# password in the secret must not turn into one Secrets Manager call per connection attempt).
SECRET_REFRESH_INTERVAL_SECONDS = 30.0

_pool: ConnectionPool | None = None
_pool_lock = threading.Lock()
_refresh_lock = threading.Lock()
_last_refresh = float("-inf")
_proxy_settings_checked = False


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """A naive UTC wall-clock value read with `AT TIME ZONE 'UTC'`, tagged as UTC.

    Event times are read that way on purpose: loading a timestamptz in a session time zone ahead
    of UTC would turn a valid 9999-12-31T23:59:59Z into year 10000.
    """
    return value.replace(tzinfo=UTC) if value is not None else None


# --- connection details --------------------------------------------------------------------------


def database_url(*, refresh: bool = False) -> str:
    """The connection string: from Secrets Manager when DB_SECRET_ARN is set, else DATABASE_URL.

    DB_PROXY_ENDPOINT, when set, replaces the host. `refresh` bypasses the secret's cache.
    """
    settings = get_settings()
    if settings.db_secret_arn:
        from common.adapters.secrets import database_url_from_secret

        return database_url_from_secret(
            settings.db_secret_arn, host=settings.db_proxy_endpoint, force_fetch=refresh
        )
    if settings.db_proxy_endpoint:
        return make_conninfo(settings.database_url, host=settings.db_proxy_endpoint)
    return settings.database_url


def session_settings(settings: Settings) -> dict[str, str]:
    """The server settings every session of the service runs with (0 = that guard is off)."""
    return {
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "lock_timeout": str(settings.db_lock_timeout_ms),
        "idle_in_transaction_session_timeout": str(settings.db_idle_in_transaction_timeout_ms),
        "TimeZone": "UTC",
    }


def startup_options(settings: Settings, overrides: dict[str, str] | None = None) -> str:
    """The libpq `options` value that sets `session_settings` in the startup packet."""
    merged = {**session_settings(settings), **(overrides or {})}
    return " ".join(f"-c {name}={value}" for name, value in merged.items())


def connection_kwargs(settings: Settings, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments of `psycopg.connect` for a session of the service.

    Through an RDS Proxy: no `options` (refused) and no server-side prepared statements (pinned).
    """
    kwargs: dict[str, Any] = {"connect_timeout": max(1, int(settings.db_pool_timeout_seconds))}
    if settings.db_proxy_endpoint:
        kwargs["prepare_threshold"] = None
    else:
        kwargs["options"] = startup_options(settings, overrides)
    return kwargs


def _login_refused(exc: psycopg.OperationalError) -> bool:
    """The server asked for a password and refused it (the connection error carries no SQLSTATE)."""
    if exc.sqlstate is not None:
        return exc.sqlstate.startswith("28")
    pgconn = getattr(exc, "pgconn", None)
    return bool(getattr(pgconn, "used_password", False)) and "authentication" in str(exc).lower()


def _credentials_after(exc: psycopg.OperationalError, used: str) -> str | None:
    """Fresh connection details after a refused login, when they differ from those `used`."""
    if not get_settings().db_secret_arn or not _login_refused(exc):
        return None
    global _last_refresh
    with _refresh_lock:
        refresh = time.monotonic() - _last_refresh >= SECRET_REFRESH_INTERVAL_SECONDS
        if refresh:
            _last_refresh = time.monotonic()
        fresh = database_url(refresh=refresh)
    return fresh if fresh != used else None


class RotatingConnection(psycopg.Connection[Any]):
    """A connection whose login, refused with cached credentials, is tried once more with fresh ones.

    Used for the pool (`connection_class`) and for `connect()`, so every new session of the process
    picks up a rotated password on the first refusal.
    """

    @classmethod
    def connect(cls, conninfo: str = "", **kwargs: Any) -> RotatingConnection:
        try:
            return super().connect(conninfo, **kwargs)
        except psycopg.OperationalError as exc:
            fresh = _credentials_after(exc, conninfo)
            if fresh is None:
                raise
            logger.warning("PostgreSQL refused the login; connecting again with the secret read afresh")
            return super().connect(fresh, **kwargs)


class RotatingAsyncConnection(psycopg.AsyncConnection[Any]):
    """`RotatingConnection` for the async pool: a refused login is tried once more with fresh details."""

    @classmethod
    async def connect(cls, conninfo: str = "", **kwargs: Any) -> RotatingAsyncConnection:
        try:
            return await super().connect(conninfo, **kwargs)
        except psycopg.OperationalError as exc:
            # May read Secrets Manager: a blocking call, off the event loop.
            fresh = await asyncio.to_thread(_credentials_after, exc, conninfo)
            if fresh is None:
                raise
            logger.warning("PostgreSQL refused the login; connecting again with the secret read afresh")
            return await super().connect(fresh, **kwargs)


async def database_url_async() -> str:
    """`database_url` off the event loop (it may ask Secrets Manager), for the async pool."""
    return await asyncio.to_thread(database_url)


def connect(
    url: str | None = None, *, session: dict[str, str] | None = None, **kwargs: Any
) -> psycopg.Connection[Any]:
    """A fresh connection outside the pool (migrations, CLIs, tests), with the session guards.

    `session` overrides some of them (e.g. `{"statement_timeout": "0"}` for a long job). A `url`
    given explicitly is used as it is: only the configured details are re-read after a refusal.
    """
    settings = get_settings()
    params = {**connection_kwargs(settings, session), "connect_timeout": 5, **kwargs}
    if url is not None:
        return psycopg.connect(url, **params)
    conn = RotatingConnection.connect(database_url(), **params)
    _check_proxy_session(conn)
    return conn


# --- the pool ------------------------------------------------------------------------------------


def _check_proxy_session(conn: psycopg.Connection[Any]) -> None:
    """Behind an RDS Proxy, warn once per process when the session guards are not the configured ones.

    The app cannot set them there without pinning; the proxy's initialization query or the role's
    defaults must. One read of pg_settings on the first connection, nothing afterwards.
    """
    global _proxy_settings_checked
    settings = get_settings()
    if not settings.db_proxy_endpoint or _proxy_settings_checked:
        return
    _proxy_settings_checked = True
    wanted = session_settings(settings)
    rows = conn.execute(_SESSION_SETTINGS_SQL, (list(wanted),)).fetchall()
    if not conn.autocommit:
        conn.rollback()
    _warn_proxy_session(wanted, rows)


async def _check_proxy_session_async(conn: psycopg.AsyncConnection[Any]) -> None:
    """`_check_proxy_session` for the async pool (the same one warning per process)."""
    global _proxy_settings_checked
    settings = get_settings()
    if not settings.db_proxy_endpoint or _proxy_settings_checked:
        return
    _proxy_settings_checked = True
    wanted = session_settings(settings)
    rows = await (await conn.execute(_SESSION_SETTINGS_SQL, (list(wanted),))).fetchall()
    if not conn.autocommit:
        await conn.rollback()
    _warn_proxy_session(wanted, rows)


_SESSION_SETTINGS_SQL = "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)"


def _warn_proxy_session(wanted: dict[str, str], rows: list[tuple[Any, ...]]) -> None:
    got = {str(name): str(value) for name, value in rows}
    wrong = {name: got.get(name) for name, value in wanted.items() if got.get(name) != value}
    if wrong:
        logger.warning(
            "through the RDS Proxy the session runs with %s instead of %s: set them in the proxy's "
            "initialization query (or ALTER ROLE ... SET); the app cannot without pinning sessions",
            ", ".join(f"{name}={value}" for name, value in wrong.items()),
            ", ".join(f"{name}={wanted[name]}" for name in wrong),
        )


def get_pool() -> ConnectionPool:
    """The process-wide pool, opened on first use so importing a handler costs no I/O."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                settings = get_settings()
                _pool = ConnectionPool(
                    # A callable: the details are read for each new connection (rotation).
                    database_url,
                    connection_class=RotatingConnection,
                    check=ConnectionPool.check_connection,
                    configure=_check_proxy_session if settings.db_proxy_endpoint else None,
                    open=True,
                    name="warehouse",
                    **pool_arguments(settings),
                )
    return _pool


def pool_arguments(settings: Settings) -> dict[str, Any]:
    """What every pool of the service shares: sizes, lifetime, wait, and each connection's kwargs
    (`connection_kwargs`: the session guards in the startup packet, or the RDS Proxy rules)."""
    return {
        "min_size": 1,
        "max_size": settings.db_pool_max,
        "kwargs": connection_kwargs(settings),
        # A pooled connection is replaced after this long, so it picks up rotated credentials.
        "max_lifetime": settings.db_pool_max_lifetime_seconds,
        # How long a caller waits for a connection: during an outage this is how long an HTTP
        # request takes to get its 503.
        "timeout": settings.db_pool_timeout_seconds,
    }


def open_async_pool(name: str) -> AsyncConnectionPool:
    """An async pool with the synchronous pool's connection factory (not opened yet).

    The details are read per connection (off the loop), a refused login re-reads the secret, and
    the session guards and RDS Proxy rules are those of `pool_arguments`.
    """
    settings = get_settings()
    return AsyncConnectionPool(
        database_url_async,
        connection_class=RotatingAsyncConnection,
        check=AsyncConnectionPool.check_connection,
        configure=_check_proxy_session_async if settings.db_proxy_endpoint else None,
        open=False,
        name=name,
        **pool_arguments(settings),
    )


def close_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.close()
            _pool = None


# How many times a transaction that lost a race is run again (the only retry loop for races).
TRANSACTION_ATTEMPTS = 5


def run_in_transaction(
    work: Callable[[psycopg.Connection], T],
    *,
    attempts: int = TRANSACTION_ATTEMPTS,
    pool: ConnectionPool | None = None,
    conn: psycopg.Connection | None = None,
) -> T:
    """Run `work` in one transaction, again from scratch (bounded) when it lost a race.

    On `conn` when given (tests, CLIs), else on a connection of the pool. Anything else (including
    PostgreSQL being unreachable, a lock wait past DB_LOCK_TIMEOUT_MS, a statement past
    DB_STATEMENT_TIMEOUT_MS) propagates to the caller, which decides whether that is a 503 (HTTP)
    or a failed batch the event source mapping will retry (Kafka).
    """
    for attempt in range(1, attempts + 1):
        try:
            if conn is not None:
                with conn.transaction():
                    return work(conn)
            with (pool or get_pool()).connection() as pooled, pooled.transaction():
                return work(pooled)
        except RETRYABLE_ERRORS as exc:
            if attempt == attempts:
                raise
            delay = min(0.01 * 2**attempt, 0.5)
            logger.info("transaction retry %d/%d after %s: %s", attempt, attempts, type(exc).__name__, exc)
            time.sleep(delay)
    raise AssertionError("unreachable")
