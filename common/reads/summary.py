"""The summary (GET /api/v1/stats/summary, the console's overview): counts, events per minute by
outcome, dead letters by reason, the pollers' lag.

Each is one or two statements served by an index (migration 0003). Times are PostgreSQL's
(`now()`), the clock `received_at` is written with, so "the last hour" agrees with the event log.
The other reads: common/reads/stock.py, movements.py, losses.py, warehouses.py, search.py; the
dead letters are listed and counted by their owner, common/dead_letters/store.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from common.adapters import consumer_lag
from common.dead_letters.store import dead_letter_counts
from common.domain.outcomes import Reason, Status
from common.ledger import outcome_counts
from common.reads.models import (
    InTransitHead,
    MinuteCount,
    Outcome,
    PartitionLag,
    PollerLag,
    Summary,
)
from common.reads.warehouses import codes_for

OUTCOMES: tuple[Outcome, ...] = tuple(s.value for s in Status)
REASONS: tuple[str, ...] = tuple(r.value for r in Reason)
SERIES_MINUTES = 60
# A poller's report older than this is not news: the poller stopped, or runs elsewhere.
LAG_FRESH_SECONDS = 120


def _now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    now: datetime = row[0]
    return now


def events_per_minute(
    conn: psycopg.Connection, *, now: datetime | None = None, minutes: int = SERIES_MINUTES
) -> list[MinuteCount]:
    """The last `minutes` minutes up to the current one, oldest first, zero-filled."""
    now = now or _now(conn)
    last = now.astimezone(UTC).replace(second=0, microsecond=0)
    first = last - timedelta(minutes=minutes - 1)
    counts: dict[datetime, dict[str, int]] = {}
    for minute, _origin, outcome, _reason, events in outcome_counts.per_minute(conn, first):
        per_outcome = counts.setdefault(minute.astimezone(UTC), {})
        per_outcome[outcome] = per_outcome.get(outcome, 0) + events
    series = []
    for i in range(minutes):
        minute = first + timedelta(minutes=i)
        got = counts.get(minute, {})
        series.append(
            MinuteCount(
                minute=minute,
                applied=got.get("applied", 0),
                duplicate=got.get("duplicate", 0),
                rejected=got.get("rejected", 0),
            )
        )
    return series


def poller_lag(conn: psycopg.Connection, *, in_lambda: bool = False) -> PollerLag:
    """The local pollers' latest reports, when fresh; in AWS, also where to look instead."""
    partitions = [
        PartitionLag(
            group_id=r.group_id,
            topic=r.topic,
            partition=r.partition,
            lag=r.lag,
            reported_at=r.reported_at,
            paused_offset=r.paused_offset,
            paused_reason=r.paused_reason,
            paused_since=r.paused_since,
        )
        for r in consumer_lag.fresh(conn, LAG_FRESH_SECONDS)
    ]
    total = sum(p.lag for p in partitions) if partitions else None
    if in_lambda:  # the mapping's own figure is the one that counts there, pollers or not
        note: str | None = (
            "in AWS the Kafka event source mapping reports its lag to CloudWatch: "
            "metric OffsetLag (namespace AWS/Lambda) of the ingest function"
        )
    else:
        note = None if partitions else f"no poller reported in the last {LAG_FRESH_SECONDS} s"
    return PollerLag(total=total, partitions=partitions, note=note)


def summary(conn: psycopg.Connection, *, in_lambda: bool = False) -> Summary:
    now = _now(conn)
    row = conn.execute(
        """
        SELECT (SELECT count(DISTINCT warehouse_id) FROM stock WHERE updated_at IS NOT NULL),
               (SELECT count(DISTINCT product_id) FROM stock WHERE updated_at IS NOT NULL),
               (SELECT count(*) FROM movements WHERE status = 'in_transit')
        """
    ).fetchone()
    assert row is not None
    warehouses, products, in_transit = row
    oldest = conn.execute(
        """
        SELECT movement_id, source_warehouse_id, departed_at FROM movements
        WHERE status = 'in_transit' ORDER BY departed_at, movement_id LIMIT 1
        """
    ).fetchone()
    series = events_per_minute(conn, now=now)
    return Summary(
        generated_at=now,
        warehouses=warehouses,
        products=products,
        movements_in_transit=in_transit,
        oldest_in_transit=InTransitHead(
            movement_id=oldest[0],
            source_warehouse_id=oldest[1],
            departed_at=oldest[2],
            age_seconds=max(0, int((now - oldest[2]).total_seconds())),
        )
        if oldest
        else None,
        events_last_hour={o: sum(getattr(m, o) for m in series) for o in OUTCOMES},
        events_per_minute=series,
        dead_letters=dead_letter_counts(conn),
        poller_lag=poller_lag(conn, in_lambda=in_lambda),
        warehouse_codes=codes_for(conn, [oldest[1]] if oldest else []),
    )
