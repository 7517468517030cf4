"""The local pollers' reports and the operator's commands to them; the one owner of their SQL.

`consumer_lag`: what each poller last saw of its partitions (lag, and a pause on a batch it could
not decode); `poller_status`: each poller process's state and its last finished loop;
`poller_commands`: resume/skip requests for a paused partition (migration 0005).

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
    paused_offset: int | None = None
    paused_reason: str | None = None
    paused_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Reported:
    group_id: str
    topic: str
    partition: int
    lag: int
    reported_at: datetime
    paused_offset: int | None = None
    paused_reason: str | None = None
    paused_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class PollerReport:
    consumer: str
    group_id: str
    state: str
    last_loop_age_seconds: float
    reported_at: datetime


@dataclass(frozen=True, slots=True)
class Command:
    id: int
    topic: str
    partition: int
    action: str


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
                                  lag, consumer, reported_at, paused_offset, paused_reason, paused_since)
        SELECT %s, t, p, c, e, l, %s, now(), po, pr, ps
        FROM unnest(%s::text[], %s::int4[], %s::int8[], %s::int8[], %s::int8[], %s::int8[], %s::text[],
                    %s::timestamptz[]) AS v(t, p, c, e, l, po, pr, ps)
        ON CONFLICT (group_id, topic, partition) DO UPDATE SET
            committed_offset = EXCLUDED.committed_offset, end_offset = EXCLUDED.end_offset,
            lag = EXCLUDED.lag, consumer = EXCLUDED.consumer, reported_at = EXCLUDED.reported_at,
            paused_offset = EXCLUDED.paused_offset, paused_reason = EXCLUDED.paused_reason,
            paused_since = EXCLUDED.paused_since
        """,
        (
            group_id,
            consumer,
            [r.topic for r in rows],
            [r.partition for r in rows],
            [r.committed_offset for r in rows],
            [r.end_offset for r in rows],
            [r.lag for r in rows],
            [r.paused_offset for r in rows],
            [r.paused_reason for r in rows],
            [r.paused_since for r in rows],
        ),
    )


def report_poller(
    conn: psycopg.Connection, consumer: str, group_id: str, state: str, last_loop_at: datetime
) -> None:
    """This poller process's state and the end of its last loop iteration."""
    conn.execute(
        """
        INSERT INTO poller_status (consumer, group_id, state, last_loop_at, reported_at)
        VALUES (%s, %s, %s, %s, now())
        ON CONFLICT (consumer) DO UPDATE SET group_id = EXCLUDED.group_id, state = EXCLUDED.state,
            last_loop_at = EXCLUDED.last_loop_at, reported_at = EXCLUDED.reported_at
        """,
        (consumer, group_id, state, last_loop_at),
    )


def forget_poller(conn: psycopg.Connection, consumer: str) -> None:
    """A poller that stopped cleanly: it is no longer one of the pollers /ready reports."""
    conn.execute("DELETE FROM poller_status WHERE consumer = %s", (consumer,))


def pollers(conn: psycopg.Connection, max_age_seconds: int) -> list[PollerReport]:
    """Every poller that reported within `max_age_seconds`, with the age of its last finished loop."""
    rows = conn.execute(
        """
        SELECT consumer, group_id, state, extract(epoch FROM now() - last_loop_at)::float8, reported_at
        FROM poller_status WHERE reported_at > now() - make_interval(secs => %s) ORDER BY consumer
        """,
        (max_age_seconds,),
    ).fetchall()
    return [PollerReport(c, g, st, max(0.0, float(age)), at) for c, g, st, age, at in rows]


def request(conn: psycopg.Connection, group_id: str, topic: str, partition: int, action: str) -> int:
    """An operator's resume/skip for a paused partition; its id. Carried out by the poller holding it."""
    row = conn.execute(
        "INSERT INTO poller_commands (group_id, topic, partition, action) "
        "VALUES (%s, %s, %s, %s) RETURNING id",
        (group_id, topic, partition, action),
    ).fetchone()
    assert row is not None
    return int(row[0])


def pending(conn: psycopg.Connection, group_id: str) -> list[Command]:
    """Commands not carried out yet, oldest first."""
    rows = conn.execute(
        """
        SELECT id, topic, partition, action FROM poller_commands
        WHERE group_id = %s AND done_at IS NULL ORDER BY id
        """,
        (group_id,),
    ).fetchall()
    return [Command(*row) for row in rows]


def done(conn: psycopg.Connection, command_id: int, consumer: str, outcome: str) -> None:
    conn.execute(
        "UPDATE poller_commands SET done_at = now(), done_by = %s, outcome = %s WHERE id = %s",
        (consumer, outcome, command_id),
    )


def command(conn: psycopg.Connection, command_id: int) -> tuple[str | None, str | None]:
    """(done_at as text or None, outcome) of one command; (None, None) when there is no such id."""
    row = conn.execute(
        "SELECT done_at::text, outcome FROM poller_commands WHERE id = %s", (command_id,)
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def fresh(conn: psycopg.Connection, max_age_seconds: int) -> list[Reported]:
    """Every partition reported within `max_age_seconds`, by group, topic, partition."""
    rows = conn.execute(
        """
        SELECT group_id, topic, partition, lag, reported_at, paused_offset, paused_reason, paused_since
        FROM consumer_lag
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


def request_if_paused(
    conn: psycopg.Connection, group_id: str, topic: str, partition: int, action: str, max_age_seconds: int
) -> tuple[int | None, Reported | None]:
    """(command id, the pause) when a fresh report says the partition is paused; (None, None) if not.

    The one door for both the CLI and the HTTP operator route: a command for a partition nobody
    reports paused would wait forever, so it is refused instead.
    """
    for row in fresh(conn, max_age_seconds):
        if (row.group_id, row.topic, row.partition) == (
            group_id,
            topic,
            partition,
        ) and row.paused_offset is not None:
            return request(conn, group_id, topic, partition, action), row
    return None, None
