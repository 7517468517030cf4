"""Events per minute by origin and outcome (`event_outcome_counts`): written with every batch.

Duplicates leave no other trace in the database, and in AWS nobody scrapes the processes'
Prometheus counters, so the console's chart reads these rows. Each transaction adds to the row of
its own shard (its backend pid modulo SHARDS), so concurrent batches never queue on one counter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import psycopg

from common.domain.events import IncomingEvent
from common.domain.outcomes import Outcome

SHARDS = 8


def record(conn: psycopg.Connection, items: Sequence[IncomingEvent], outcomes: Sequence[Outcome]) -> None:
    """Add this batch's outcomes to the current minute (one statement)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for item, outcome in zip(items, outcomes, strict=True):
        status, reason = outcome.counted_as
        counts[(item.origin.kind, status, reason or "")] += 1
    if not counts:
        return
    keys = sorted(counts)  # a fixed order: two transactions on one shard cannot deadlock
    conn.execute(
        """
        INSERT INTO event_outcome_counts (minute, origin, outcome, reason, shard, events)
        SELECT date_trunc('minute', now()), o, s, r, pg_backend_pid() %% %b, n
        FROM unnest(%b::text[], %b::text[], %b::text[], %b::int8[]) AS v(o, s, r, n)
        ON CONFLICT (minute, origin, outcome, reason, shard)
        DO UPDATE SET events = event_outcome_counts.events + EXCLUDED.events
        """,
        (SHARDS, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [counts[k] for k in keys]),
    )


def per_minute(conn: psycopg.Connection, since: datetime) -> list[tuple[datetime, str, str, str, int]]:
    """(minute, origin, outcome, reason, events) from `since` on, shards summed, oldest first."""
    rows = conn.execute(
        """
        SELECT minute, origin, outcome, reason, sum(events)::bigint
        FROM event_outcome_counts
        WHERE minute >= date_trunc('minute', %s::timestamptz)
        GROUP BY minute, origin, outcome, reason
        ORDER BY minute, origin, outcome, reason
        """,
        (since,),
    ).fetchall()
    return [(m, o, s, r, int(n)) for m, o, s, r, n in rows]


def delete_before(conn: psycopg.Connection, cutoff: datetime, *, limit: int) -> int:
    """Delete up to `limit` rows of minutes before `cutoff` (retention; by the primary key's prefix)."""
    return conn.execute(
        """
        DELETE FROM event_outcome_counts
        WHERE (minute, origin, outcome, reason, shard) IN (
            SELECT minute, origin, outcome, reason, shard FROM event_outcome_counts
            WHERE minute < %s ORDER BY minute LIMIT %s
        )
        """,
        (cutoff, limit),
    ).rowcount
