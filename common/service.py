"""Entry points the handlers call: one function per use case, transaction and cache handled here."""

from __future__ import annotations

from collections.abc import Sequence

from common import cache
from common.db import run_in_transaction
from common.events import IncomingEvent
from common.ledger import Outcome, apply_events
from common.replay import ReplayResult, replay_rejected


def ingest(items: Sequence[IncomingEvent]) -> list[Outcome]:
    """Apply a batch in one transaction (lost races retried), then invalidate the cached reads.

    Database faults propagate: the webhook answers 503, the Kafka path fails the batch so it is
    redelivered, and a redelivered batch changes nothing twice.
    """
    outcomes = run_in_transaction(lambda conn: apply_events(conn, items))
    _invalidate(outcomes)
    return outcomes


def replay(*, ids: list[int] | None = None, reason: str | None = None) -> list[ReplayResult]:
    """Re-apply dead letters (see common.replay), then invalidate the cached reads."""
    results, outcomes = run_in_transaction(lambda conn: replay_rejected(conn, ids=ids, reason=reason))
    _invalidate(outcomes)
    return results


def _invalidate(outcomes: list[Outcome]) -> None:
    """Bump the cache versions of everything the committed outcomes changed."""
    names: set[str] = set()
    for outcome in outcomes:
        if outcome.status == "applied" and outcome.event is not None:
            names.add(cache.stock_name(outcome.event.warehouse_id, outcome.event.product_id))
            names.add(cache.movement_name(outcome.event.movement_id))
    cache.invalidate(sorted(names))
