"""Retention: what the service keeps, for how long, and what happens to the rest.

The policy (`warehouse-stock retention`, run e.g. daily; every rule idempotent):

- Dead letters (`rejected_events`) with no activity (received, replayed) for
  DEAD_LETTER_RETENTION_DAYS: the resolved ones (a replay applied them, or found them applied)
  are deleted; the unresolved ones are never deleted silently. With `--archive DIR` every expired
  dead letter, resolved or not, is first written to DIR as a JSON line (raw payload in base64),
  the file fsync'd, and only then deleted; without it the unresolved ones are counted and kept.
  A dead letter whose copy to DLQ_TOPIC is still pending is kept whatever its state.
- The event log (`movement_events`), only with EVENT_LOG_RETENTION_DAYS set: applied events
  received before then are folded into `stock_opening` (`common.ledger.fold`), so
  `stock = opening + sum of the events kept` still holds. `movements` is never trimmed.
- Monitoring rows (`event_outcome_counts`, `consumer_lag`) older than DEAD_LETTER_RETENTION_DAYS
  are deleted.

Deletes go in batches, each its own short transaction, so a run never holds many locks or a long
transaction. Runs exclude one another with a session advisory lock: a second concurrent run finds
it taken and does nothing. A dry run counts and changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from common.adapters import consumer_lag
from common.adapters.config import Settings
from common.dead_letters import retention as dead_letter_retention
from common.ledger import fold as event_log
from common.ledger import outcome_counts

logger = logging.getLogger(__name__)

# An arbitrary constant naming "retention" among advisory locks (migrations use another).
RETENTION_LOCK_ID = 7_301_448_513
DELETE_BATCH = 1000
# Archived dead letters per transaction (streamed: one payload in memory at a time).
ARCHIVE_BATCH = 200


@dataclass
class DeadLetterReport:
    cutoff: str
    deleted_resolved: int = 0
    # Only with --archive: deleted after they were written to the archive file.
    deleted_unresolved: int = 0
    archived: int = 0
    archive_file: str | None = None
    # Expired but unresolved, kept because no --archive was given.
    kept_unresolved: int = 0
    # Expired but their DLQ copy is still to be published: kept.
    kept_pending_copy: int = 0


@dataclass
class EventLogReport:
    enabled: bool
    cutoff: str | None = None
    folded_events: int = 0
    opening_updates: int = 0


@dataclass
class RetentionReport:
    dry_run: bool
    skipped: str | None = None
    dead_letters: DeadLetterReport | None = None
    event_log: EventLogReport = field(default_factory=lambda: EventLogReport(enabled=False))
    outcome_counts_deleted: int = 0
    consumer_lag_deleted: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run(
    conn: psycopg.Connection,
    settings: Settings,
    *,
    dry_run: bool = False,
    archive_dir: Path | None = None,
    now: datetime | None = None,
) -> RetentionReport:
    """Apply the retention policy on `conn` (autocommit; it takes the retention lock for the run)."""
    if not conn.autocommit:
        raise ValueError("retention needs an autocommit connection (each batch is its own transaction)")
    report = RetentionReport(dry_run=dry_run)
    locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (RETENTION_LOCK_ID,)).fetchone()
    if not locked or not locked[0]:
        report.skipped = "another retention run holds the lock"
        return report
    try:
        moment = now or datetime.now(UTC)
        dl_cutoff = moment - timedelta(days=settings.dead_letter_retention_days)
        report.dead_letters = _dead_letters(conn, dl_cutoff, dry_run, archive_dir)
        if settings.event_log_retention_days is not None:
            cutoff = moment - timedelta(days=settings.event_log_retention_days)
            fold = event_log.fold_before(conn, cutoff, dry_run=dry_run)
            report.event_log = EventLogReport(True, cutoff.isoformat(), fold.events, fold.opening_updates)
        report.outcome_counts_deleted, report.consumer_lag_deleted = _monitoring(conn, dl_cutoff, dry_run)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK_ID,))
    return report


def _dead_letters(
    conn: psycopg.Connection, cutoff: datetime, dry_run: bool, archive_dir: Path | None
) -> DeadLetterReport:
    report = DeadLetterReport(cutoff=cutoff.isoformat())
    counts = dead_letter_retention.retention_counts(conn, cutoff)
    report.kept_pending_copy = counts.pending_copy
    if dry_run:
        report.deleted_resolved = counts.resolved
        if archive_dir is not None:
            report.deleted_unresolved = counts.unresolved
            report.archived = counts.resolved + counts.unresolved
        else:
            report.kept_unresolved = counts.unresolved
        return report
    if archive_dir is None:
        report.deleted_resolved = _until_none_left(
            conn, lambda: dead_letter_retention.delete_expired_resolved(conn, cutoff, limit=DELETE_BATCH)
        )
        report.kept_unresolved = dead_letter_retention.retention_counts(conn, cutoff).unresolved
        return report
    path = _archive_file(archive_dir)
    report.archive_file = str(path)
    with path.open("x", encoding="utf-8") as out:
        _fsync_dir(path.parent)
        while True:
            with conn.transaction():
                ids, resolved = [], 0
                for record in dead_letter_retention.expired_for_archive(conn, cutoff, limit=ARCHIVE_BATCH):
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                    ids.append(int(record["id"]))
                    resolved += record["replay_status"] in dead_letter_retention.RESOLVED_STATUSES
                # On disk before the rows go: a crash now leaves rows archived twice, never lost.
                out.flush()
                os.fsync(out.fileno())
                dead_letter_retention.delete_ids(conn, ids)
            report.archived += len(ids)
            report.deleted_resolved += resolved
            report.deleted_unresolved += len(ids) - resolved
            if len(ids) < ARCHIVE_BATCH:
                break
    if report.archived == 0:
        path.unlink()
        report.archive_file = None
    return report


def _monitoring(conn: psycopg.Connection, cutoff: datetime, dry_run: bool) -> tuple[int, int]:
    if dry_run:
        row = conn.execute(
            "SELECT count(*) FROM event_outcome_counts WHERE minute < %(c)s", {"c": cutoff}
        ).fetchone()
        assert row is not None
        return int(row[0]), consumer_lag.count_older_than(conn, cutoff)
    counts = _until_none_left(conn, lambda: outcome_counts.delete_before(conn, cutoff, limit=DELETE_BATCH))
    return counts, consumer_lag.delete_older_than(conn, cutoff)


def _until_none_left(conn: psycopg.Connection, delete_batch: Callable[[], int]) -> int:
    """Run a batched delete, one transaction per batch, until a batch deletes nothing; the total."""
    total = 0
    while True:
        with conn.transaction():
            deleted = delete_batch()
        if deleted == 0:
            return total
        total += deleted


def _archive_file(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return directory / f"rejected-events-{stamp}.jsonl"


def _fsync_dir(directory: Path) -> None:
    """Make the new file's directory entry durable too (POSIX; a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
