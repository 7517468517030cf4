"""The console's summary and dead-letter queries: what the overview and the dead-letter page read.

Each is one or two statements served by an index (migration 0003). Times are PostgreSQL's
(`now()`), the clock `received_at` is written with, so "the last hour" agrees with the event log.
The other reports: common/reads/losses.py (losses and transit per route), common/reads/warehouse_stock.py
(stock as of a past time, the warehouse page), common/reads/movement_reports.py (stuck movements, one
movement). This module and common/dead_letters/store.py are the ones that read `rejected_events`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg

from common.adapters import consumer_lag
from common.adapters.cursor import BadCursor, decode_cursor, encode_cursor
from common.dead_letters.views import raw_text
from common.domain.outcomes import Reason, Status
from common.ledger import outcome_counts
from common.reads.summary_models import (
    DeadLetterCount,
    DeadLetterPage,
    DeadLetterRow,
    InTransitHead,
    MinuteCount,
    Outcome,
    PartitionLag,
    PollerLag,
    Summary,
)

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


def dead_letter_counts(conn: psycopg.Connection) -> list[DeadLetterCount]:
    """Every reason, zeros included; unresolved = never replayed, or replayed and refused again."""
    rows = conn.execute(
        """
        SELECT reason, count(*),
               count(*) FILTER (WHERE replay_status IS NULL OR replay_status = 'rejected')
        FROM rejected_events GROUP BY reason
        """
    ).fetchall()
    found = {reason: (total, unresolved) for reason, total, unresolved in rows}
    counts = [(reason, *found.get(reason, (0, 0))) for reason in REASONS]
    return [
        DeadLetterCount(reason=reason, total=total, unresolved=unresolved)  # type: ignore[arg-type]
        for reason, total, unresolved in counts
    ]


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
    )


def dead_letters(
    conn: psycopg.Connection,
    *,
    reason: str | None = None,
    unresolved: bool = False,
    movement_id: UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> DeadLetterPage:
    """Dead letters newest first (what an operator looks at): of one reason, unresolved, of a movement."""
    before: int | None = None
    if cursor is not None:
        key = decode_cursor("dead_letters", cursor)  # type: ignore[arg-type]
        if not key.isascii() or not key.isdigit() or len(key) > 18:
            raise BadCursor("not a cursor returned by this list")
        before = int(key)
    rows = conn.execute(
        """
        SELECT id, reason, detail, movement_id, event, origin, kafka_topic, kafka_partition,
               kafka_offset, received_at, replayed_at, replay_status, replay_detail, raw_payload
        FROM rejected_events
        WHERE (%(reason)s::text IS NULL OR reason = %(reason)s::text)
          AND (NOT %(unresolved)s OR replay_status IS NULL OR replay_status = 'rejected')
          AND (%(movement)s::uuid IS NULL OR movement_id = %(movement)s::uuid)
          AND (%(before)s::bigint IS NULL OR id < %(before)s::bigint)
        ORDER BY id DESC
        LIMIT %(n)s
        """,
        {
            "reason": reason,
            "unresolved": unresolved,
            "movement": movement_id,
            "before": before,
            "n": limit + 1,
        },
    ).fetchall()
    page, more = rows[:limit], len(rows) > limit
    items = []
    for (rid, why, detail, mid, event, origin, topic, partition, offset, received, replayed,
         status, replay_detail, raw) in page:  # fmt: skip
        text, encoding = raw_text(bytes(raw))
        items.append(
            DeadLetterRow(
                id=rid,
                reason=why,
                detail=detail,
                movement_id=mid,
                event=event,
                origin=origin,
                source=f"{topic}/{partition}@{offset}" if topic is not None else origin,
                received_at=received,
                replayed_at=replayed,
                replay_status=status,
                replay_detail=replay_detail,
                raw_payload=text,
                raw_payload_encoding=encoding,
            )
        )
    next_cursor = encode_cursor("dead_letters", page[-1][0]) if more else None  # type: ignore[arg-type]
    return DeadLetterPage(items=items, next_cursor=next_cursor)


def refused_count(conn: psycopg.Connection, movement_id: UUID) -> int:
    """How many events of this movement were refused (the list itself is an operator route)."""
    row = conn.execute(
        "SELECT count(*) FROM rejected_events WHERE movement_id = %s", (movement_id,)
    ).fetchone()
    return int(row[0]) if row else 0
