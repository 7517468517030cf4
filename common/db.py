"""PostgreSQL connections: one lazily opened pool per process (a Lambda container or the local app)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar, overload

import psycopg
from psycopg import errors
from psycopg_pool import ConnectionPool

from common.config import get_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")


class LostRace(Exception):
    """Another transaction created a row this one meant to create: run the work again."""


# Faults worth retrying: the transaction lost a race, not a rule.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    LostRace,
    errors.SerializationFailure,
    errors.DeadlockDetected,
    errors.LockNotAvailable,
)

_pool: ConnectionPool | None = None
_pool_lock = threading.Lock()


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


def database_url() -> str:
    """The connection string: from Secrets Manager when DB_SECRET_ARN is set, else DATABASE_URL."""
    settings = get_settings()
    if settings.db_secret_arn:
        from common.secrets import database_url_from_secret

        return database_url_from_secret(settings.db_secret_arn)
    return settings.database_url


def _configure(conn: psycopg.Connection) -> None:
    """Sessions in UTC, so every time the service hands out reads as UTC whatever the server's zone."""
    conn.execute("SET TIME ZONE 'UTC'")
    if not conn.autocommit:
        conn.commit()


def connect(url: str | None = None, **kwargs: object) -> psycopg.Connection:
    """A fresh connection outside the pool (migrations, tests, CLI)."""
    conn = psycopg.connect(url or database_url(), connect_timeout=5, **kwargs)  # type: ignore[arg-type]
    _configure(conn)
    return conn


def get_pool() -> ConnectionPool:
    """The process-wide pool, opened on first use so importing a handler costs no I/O."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                settings = get_settings()
                _pool = ConnectionPool(
                    database_url(),
                    min_size=1,
                    max_size=settings.db_pool_max,
                    kwargs={"connect_timeout": max(1, int(settings.db_pool_timeout_seconds))},
                    check=ConnectionPool.check_connection,
                    configure=_configure,
                    open=True,
                    # How long a caller waits for a connection: during an outage this is
                    # how long an HTTP request takes to get its 503.
                    timeout=settings.db_pool_timeout_seconds,
                    name="warehouse",
                )
    return _pool


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
    PostgreSQL being unreachable) propagates to the caller, which decides whether that is a 503
    (HTTP) or a failed batch the event source mapping will retry (Kafka).
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
