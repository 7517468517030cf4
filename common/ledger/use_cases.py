"""The use cases the handlers call: one function each; transactions and cache handled here.

Each runs in one transaction (`common.adapters.db.run_in_transaction`, the only retry loop for lost races)
and, once it committed, bumps the cache versions of what it changed and publishes any dead-letter
copies it queued. Database faults propagate: the webhook answers 503, the Kafka path fails the
batch so it is redelivered, and a redelivered batch changes nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from common.adapters import cache
from common.adapters.db import get_pool, run_in_transaction
from common.dead_letters import outbox
from common.dead_letters import store as dead_letters
from common.domain.events import IncomingEvent
from common.domain.outcomes import Outcome, Reason, Status, field_error
from common.ledger.apply import Applied, apply_batch

logger = logging.getLogger(__name__)

MAX_REPLAY_BATCH = 10_000


def ingest(items: Sequence[IncomingEvent]) -> list[Outcome]:
    """Apply a batch in one transaction, then invalidate the cached reads it changed.

    A value PostgreSQL refuses (a `DataError`: text it cannot hold, a number out of range) would
    fail the batch on every delivery and stall its Kafka partition. Validation refuses every such
    value it knows of; should one slip through, the batch is applied again one record per
    transaction, and the record the database refuses is parked as invalid with a safe detail.
    """
    try:
        batches = [run_in_transaction(lambda conn: apply_batch(conn, items))]
    except (psycopg.DataError, UnicodeEncodeError) as exc:
        logger.warning("a batch of %d was refused by the database (%s); isolating it", len(items), exc)
        batches = [_ingest_alone(item) for item in items]
    _after_commit(batches)
    return [outcome for batch in batches for outcome in batch.outcomes]


def _ingest_alone(item: IncomingEvent) -> Applied:
    try:
        return run_in_transaction(lambda conn: apply_batch(conn, [item]))
    except (psycopg.DataError, UnicodeEncodeError) as exc:
        refused = IncomingEvent(
            item.raw,
            item.origin,
            errors=[field_error("body", f"refused by the database: {type(exc).__name__}: {exc}", "database")],
        )
        return run_in_transaction(lambda conn: apply_batch(conn, [refused]))


@dataclass(frozen=True)
class ReplayResult:
    """What an operator's replay did to one dead letter."""

    rejected_event_id: int
    status: Status
    reason: Reason | None
    detail: str | None


def replay(
    *, ids: list[int] | None = None, reason: Reason | None = None, by: str | None = None
) -> list[ReplayResult]:
    """Re-apply dead letters through the ledger's rules, in one transaction; record each outcome.

    Named by id, a dead letter is replayed whatever its state (again is harmless: `duplicate`); by
    reason, every one not yet applied, oldest first. The dead letter stays, annotated.
    """
    if ids is None and reason is None:
        raise ValueError("name the dead letters to replay: ids or a reason")

    def work(conn: psycopg.Connection) -> tuple[list[ReplayResult], Applied]:
        letters = dead_letters.select_for_replay(conn, ids=ids, reason=reason, limit=MAX_REPLAY_BATCH)
        applied = apply_batch(conn, [letter.item for letter in letters], park_rejected=False)
        pairs = [(letter.id, outcome) for letter, outcome in zip(letters, applied.outcomes, strict=True)]
        dead_letters.record_replays(conn, pairs, auto=False)
        if by is not None:  # an operator named: audited in the same transaction (issue 23)
            dead_letters.audit_replays(conn, pairs, by=by)
        return [ReplayResult(rid, o.status, o.reason, o.detail) for rid, o in pairs], applied

    results, applied = run_in_transaction(work)
    _after_commit([applied])
    return results


def _after_commit(batches: Sequence[Applied]) -> None:
    """Bump the cache versions of everything the committed batches changed; publish DLQ copies."""
    events = [outcome.event for batch in batches for outcome in batch.changed if outcome.event is not None]
    cache.invalidate(cache.changed_names([(e.warehouse_id, e.product_id, e.movement_id) for e in events]))
    parked = any(o.status is Status.REJECTED and not o.redelivered for b in batches for o in b.outcomes)
    if outbox.drain_due(parked=parked):
        outbox.drain(get_pool().connection)
