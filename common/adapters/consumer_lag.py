"""The `consumer_lag` table: what each local poller last saw of its partitions; its one owner.

Written by the pollers (functions/local_app/poller/lag.py), read by the console's summary
(common/reads/summary.py), trimmed by retention (common/operations/retention.py). It sits with
the adapters, beside the metrics it mirrors, because both the intake (the writer) and the reads
(a reader) use it and those two layers may not import each other. In AWS the event source
mapping reports OffsetLag to CloudWatch instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

# The upsert is best effort: it waits at most this long for a lock or the statement.
WRITE_LIMIT_MS = 500


@dataclass(frozen=True, slots=True)
class PartitionReport:
    """One poller's view of one partition at its last lag interval."""

    topic: str
    partition: int
    committed_offset: int | None
    end_offset: int
    lag: int


@dataclass(frozen=True, slots=True)
class Reported:
    group_id: str
    topic: str
    partition: int
    lag: int
    reported_at: datetime


def upsert(conn: psycopg.Connection, group_id: str, consumer: str, rows: list[PartitionReport]) -> None:
    """One row per (group, topic, partition), the latest report winning; bounded in time."""
    # Bounded: a locked or slow table must not hold a poller's loop (the pool sets no limits).
    conn.execute(
        "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
        (f"{WRITE_LIMIT_MS}ms", f"{WRITE_LIMIT_MS}ms"),
    )
    conn.execute(
        """
        INSERT INTO consumer_lag (group_id, topic, partition, committed_offset, end_offset,
                                  lag, consumer, reported_at)
        SELECT %s, t, p, c, e, l, %s, now()
        FROM unnest(%s::text[], %s::int4[], %s::int8[], %s::int8[], %s::int8[])
             AS v(t, p, c, e, l)
        ON CONFLICT (group_id, topic, partition) DO UPDATE SET
            committed_offset = EXCLUDED.committed_offset, end_offset = EXCLUDED.end_offset,
            lag = EXCLUDED.lag, consumer = EXCLUDED.consumer, reported_at = EXCLUDED.reported_at
        """,
        (
            group_id,
            consumer,
            [r.topic for r in rows],
            [r.partition for r in rows],
            [r.committed_offset for r in rows],
            [r.end_offset for r in rows],
            [r.lag for r in rows],
        ),
    )


def fresh(conn: psycopg.Connection, max_age_seconds: int) -> list[Reported]:
    """Every partition reported within `max_age_seconds`, by group, topic, partition."""
    rows = conn.execute(
        """
        SELECT group_id, topic, partition, lag, reported_at FROM consumer_lag
        WHERE reported_at > now() - make_interval(secs => %s)
        ORDER BY group_id, topic, partition
        """,
        (max_age_seconds,),
    ).fetchall()
    return [Reported(*row) for row in rows]


def count_older_than(conn: psycopg.Connection, cutoff: datetime) -> int:
    row = conn.execute("SELECT count(*) FROM consumer_lag WHERE reported_at < %s", (cutoff,)).fetchone()
    assert row is not None
    return int(row[0])


def delete_older_than(conn: psycopg.Connection, cutoff: datetime) -> int:
    """A handful of rows (one per partition): one statement."""
    return conn.execute("DELETE FROM consumer_lag WHERE reported_at < %s", (cutoff,)).rowcount
