"""The dead-letter store's retention statements (`warehouse-stock retention`, `common.operations.retention`).

Split from `common.dead_letters.store`, which holds every other statement on `rejected_events`, so that
each module keeps to one job. A dead letter is expired when nothing happened to it (received,
replayed) since the cutoff and no copy of it waits for DLQ_TOPIC (deleting the row would cascade
to its outbox entry and lose that copy); resolved when a replay applied it or found it applied,
an operator resolved it, or it was a webhook refusal answered to its caller (migration 0007).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

RESOLVED_STATUSES = ("applied", "duplicate")
_EXPIRED = """
    received_at < %(cutoff)s AND coalesce(replayed_at, received_at) < %(cutoff)s
    AND coalesce(resolved_at, received_at) < %(cutoff)s
    AND NOT EXISTS (SELECT 1 FROM dead_letter_outbox o WHERE o.rejected_event_id = r.id)
"""
# Resolved: a replay applied it (or found it applied), an operator resolved it, or a webhook caller
# was answered. What operators decided stays in dead_letter_audit, which retention never touches.
_RESOLVED = "(replay_status IN ('applied', 'duplicate') OR resolved_at IS NOT NULL)"


def is_resolved(record: dict[str, Any]) -> bool:
    """An archived record, as `_RESOLVED` decides in SQL."""
    return record["replay_status"] in RESOLVED_STATUSES or record["resolved_at"] is not None


@dataclass(frozen=True)
class RetentionCounts:
    """Dead letters older than a cutoff: resolved (deletable), unresolved (archive first), and
    those waiting for their DLQ copy (kept whatever their state)."""

    resolved: int
    unresolved: int
    pending_copy: int


def retention_counts(conn: psycopg.Connection, cutoff: datetime) -> RetentionCounts:
    row = conn.execute(
        f"""
        SELECT count(*) FILTER (WHERE {_RESOLVED} AND NOT pending),
               count(*) FILTER (WHERE ({_RESOLVED}) IS NOT TRUE AND NOT pending),
               count(*) FILTER (WHERE pending)
        FROM (
            SELECT r.replay_status, r.resolved_at,
                   EXISTS (SELECT 1 FROM dead_letter_outbox o WHERE o.rejected_event_id = r.id) AS pending
            FROM rejected_events r
            WHERE received_at < %(cutoff)s AND coalesce(replayed_at, received_at) < %(cutoff)s
              AND coalesce(resolved_at, received_at) < %(cutoff)s
        ) AS old
        """,
        {"cutoff": cutoff},
    ).fetchone()
    assert row is not None
    return RetentionCounts(int(row[0]), int(row[1]), int(row[2]))


def delete_expired_resolved(conn: psycopg.Connection, cutoff: datetime, *, limit: int) -> int:
    """Delete up to `limit` expired resolved dead letters (one statement; skips rows a replay holds)."""
    return conn.execute(
        f"""
        DELETE FROM rejected_events WHERE id IN (
            SELECT id FROM rejected_events r
            WHERE {_RESOLVED} AND {_EXPIRED}
            ORDER BY received_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
        )
        """,
        {"cutoff": cutoff, "limit": limit},
    ).rowcount


ARCHIVE_COLUMNS = (
    "id", "reason", "detail", "origin", "movement_id", "event", "warehouse_id", "product_id",
    "kafka_cluster", "kafka_topic", "kafka_partition", "kafka_offset", "received_at",
    "replayed_at", "replay_status", "replay_detail", "resolved_at", "resolved_by", "resolution",
    "resolution_note",
)  # fmt: skip


def expired_for_archive(
    conn: psycopg.Connection, cutoff: datetime, *, limit: int
) -> Iterator[dict[str, Any]]:
    """Up to `limit` expired dead letters, resolved or not, locked for this transaction, each as
    a JSON-ready dict with `raw_payload_base64`. Streamed (a server-side cursor): one payload in
    memory at a time, however large the batch."""
    columns = ", ".join(ARCHIVE_COLUMNS)
    with conn.cursor(name="retention_archive") as cur:
        cur.execute(
            f"""
            SELECT {columns}, raw_payload FROM rejected_events r
            WHERE {_EXPIRED}
            ORDER BY received_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
            """,
            {"cutoff": cutoff, "limit": limit},
        )
        for row in cur:
            record: dict[str, Any] = {}
            for name, value in zip(ARCHIVE_COLUMNS, row[:-1], strict=True):
                record[name] = (
                    value.isoformat()
                    if isinstance(value, datetime)
                    else (str(value) if isinstance(value, UUID) else value)
                )
            record["raw_payload_base64"] = base64.b64encode(bytes(row[-1])).decode("ascii")
            yield record


def delete_ids(conn: psycopg.Connection, ids: Sequence[int]) -> int:
    if not ids:
        return 0
    return conn.execute("DELETE FROM rejected_events WHERE id = ANY(%s)", (list(ids),)).rowcount
