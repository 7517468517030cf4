"""What an operator does about dead letters (issue 23): resolve with a note, one or by filter, and
replay by filter; every action audited (`dead_letter_audit`, kept after retention).

A bulk action is bounded (MAX_BULK per call: run it again for more) and names its dead letters
first, oldest first, then acts on exactly those: a dead letter parked meanwhile is not swept up
by a filter the operator chose before it existed. A bulk replay leaves conflicts out: the rule
that refused a conflict refuses it again, so the operator resolves it instead (the one-letter view
shows the applied version beside the refused one).
"""

from __future__ import annotations

import psycopg

from common.adapters.db import run_in_transaction
from common.dead_letters import store
from common.ledger.use_cases import ReplayResult, replay

MAX_BULK = 1000


def resolve(ids: list[int], *, by: str, note: str) -> list[int]:
    """Resolve these dead letters (the unresolved among them); the ids resolved now."""
    return run_in_transaction(lambda conn: store.resolve(conn, ids, by=by, note=note))


def resolve_matching(which: store.Filter, *, by: str, note: str, limit: int = MAX_BULK) -> list[int]:
    """Resolve the unresolved dead letters `which` names, oldest first, at most `limit`."""

    def work(conn: psycopg.Connection) -> list[int]:
        ids = store.matching_ids(conn, which, limit=limit)
        return store.resolve(conn, ids, by=by, note=note)

    return run_in_transaction(work)


def replay_matching(which: store.Filter, *, by: str, limit: int = MAX_BULK) -> list[ReplayResult]:
    """Replay the unresolved, replayable dead letters `which` names, oldest first, at most `limit`."""
    ids = run_in_transaction(lambda conn: store.matching_ids(conn, which, limit=limit, replayable=True))
    return replay(ids=ids, by=by) if ids else []
