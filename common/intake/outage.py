"""Riding out a PostgreSQL outage inside one invocation of the Kafka ingest function (Lambda only).

Why: the event source mapping retries a failed batch at most KafkaMaxRetryAttempts (10000) times,
with pauses AWS does not document. A batch that fails fast (DB_POOL_TIMEOUT_SECONDS, 3 s) uses
those retries up within hours of an outage; one that first waits for PostgreSQL for
INGEST_DB_WAIT_SECONDS (60 s) makes 10000 retries span about a week, the topic's default
retention. The wait never runs into the function's timeout: it stops RESERVE_SECONDS before the
invocation's end, leaving time to apply the batch once PostgreSQL answers.

Only "unreachable" faults are waited for (`is_unreachable`): a lock or statement timeout
means PostgreSQL answered, and the batch fails at once to be retried. Re-running a batch is safe:
applied events come back as duplicates, a parked record is parked once.

The local poller calls the same handler outside Lambda and has its own backoff: no wait there.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import psycopg
from psycopg_pool import PoolTimeout

from common.adapters import db
from common.adapters.config import get_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Left of the invocation after the wait: enough to apply a batch once PostgreSQL answers.
RESERVE_SECONDS = 20.0
# SQLSTATEs that mean "PostgreSQL cannot serve us right now" (besides connection failures, which
# carry none): admin/crash shutdown, cannot connect now, too many connections.
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def is_unreachable(exc: BaseException) -> bool:
    """Whether `exc` means PostgreSQL cannot be reached right now (an outage, not a failed query).

    A lock or statement timeout is not: the database answered, the work did not fit its limits.
    """
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        return state is None or state.startswith("08") or state in _UNAVAILABLE_STATES
    return False


def wait_until_reachable(seconds: float, *, first_delay: float = 0.5, max_delay: float = 8.0) -> bool:
    """Try a fresh connection with growing pauses until one answers, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    delay = first_delay
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            with db.connect(connect_timeout=max(1, min(5, int(remaining)))) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError as exc:
            logger.info("PostgreSQL still unreachable (%s); next try in %.1f s", type(exc).__name__, delay)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, max_delay)


def wait_budget_seconds(context: Any) -> float:
    """How long this invocation may wait for PostgreSQL: 0 outside Lambda, else INGEST_DB_WAIT_SECONDS
    capped at the remaining time minus RESERVE_SECONDS."""
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return 0.0
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is None:
        return 0.0
    remaining = float(remaining_ms()) / 1000.0 - RESERVE_SECONDS
    return max(0.0, min(get_settings().ingest_db_wait_seconds, remaining))


def ride_out(work: Callable[[], T], budget_seconds: float) -> T:
    """Run `work`; while it fails because PostgreSQL is unreachable, wait for it and run it again,
    for at most `budget_seconds` in all. Any other fault, or the budget spent, raises the fault."""
    deadline = time.monotonic() + budget_seconds
    while True:
        try:
            return work()
        except Exception as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not is_unreachable(exc):
                raise
            logger.warning(
                "PostgreSQL unreachable (%s); waiting up to %.0f s before failing the batch",
                type(exc).__name__,
                remaining,
            )
            if not wait_until_reachable(remaining):
                raise
            db.close_pool()  # its connections died with the outage: start afresh
            logger.info("PostgreSQL answers again; applying the batch again")


def oldest_record_age_seconds(event: Mapping[str, Any], now: float | None = None) -> float | None:
    """Age of the oldest record of a Lambda Kafka event, by the records' own timestamps (ms)."""
    stamps = []
    for chunk in (event.get("records") or {}).values():
        for record in chunk or ():
            try:
                stamps.append(int(record["timestamp"]))
            except (KeyError, TypeError, ValueError):
                continue
    if not stamps:
        return None
    return max(0.0, (time.time() if now is None else now) - min(stamps) / 1000.0)
