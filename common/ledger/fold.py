"""The event log's retention: applied events older than a cutoff folded into `stock_opening`.

`movement_events` holds every applied event; with EVENT_LOG_RETENTION_DAYS set it would otherwise
grow without limit. A fold removes the events received before the cutoff and adds their net
effect (arrivals minus departures) to the opening balance of their (warehouse, product), in the
same transaction, so `stock = opening + sum of the events kept` holds at every moment
(migration 0004 documents the table). `movements` is not touched: it is what recognises an old
event delivered again as a duplicate.

The walk goes by primary key in ranges of `batch` ids, each range one short transaction: ids grow
with arrival, so the old events are a prefix and each range is an index range scan, never a scan
of the whole table (and no index on received_at burdens the hot path). The walk stops at the
first range holding newer events and no older one; an old event stored far after newer ones (a
backfill with old timestamps) would be left in the log, which only costs space.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

DEFAULT_BATCH = 5000


@dataclass(frozen=True)
class Fold:
    """What a fold did (or, dry, would do): events folded, and opening balances written (a pair whose
    events span several ranges of ids is written, and counted, once per range)."""

    events: int
    opening_updates: int


_FOLD_RANGE = """
WITH gone AS (
    DELETE FROM movement_events
    WHERE id >= %(low)s AND id < %(high)s AND received_at < %(cutoff)s
    RETURNING warehouse_id, product_id,
              CASE WHEN event = 'arrival' THEN quantity ELSE -quantity END AS delta
), sums AS (
    SELECT warehouse_id, product_id, sum(delta)::bigint AS delta, count(*) AS n
    FROM gone GROUP BY warehouse_id, product_id
), folded AS (
    INSERT INTO stock_opening AS o (warehouse_id, product_id, quantity, folded_until, folded_events)
    SELECT warehouse_id, product_id, delta, %(cutoff)s, n FROM sums
    ORDER BY warehouse_id, product_id
    ON CONFLICT (warehouse_id, product_id) DO UPDATE SET
        quantity = o.quantity + EXCLUDED.quantity,
        folded_until = greatest(o.folded_until, EXCLUDED.folded_until),
        folded_events = o.folded_events + EXCLUDED.folded_events,
        updated_at = now()
    RETURNING 1
)
SELECT (SELECT coalesce(sum(n), 0) FROM sums)::bigint, (SELECT count(*) FROM folded)
"""

_COUNT_RANGE = """
SELECT count(*), count(DISTINCT (warehouse_id, product_id))
FROM movement_events
WHERE id >= %(low)s AND id < %(high)s AND received_at < %(cutoff)s
"""

_RANGE_HAS_NEWER = """
SELECT EXISTS (
    SELECT 1 FROM movement_events WHERE id >= %(low)s AND id < %(high)s AND received_at >= %(cutoff)s
)
"""


def fold_before(
    conn: psycopg.Connection, cutoff: datetime, *, dry_run: bool = False, batch: int = DEFAULT_BATCH
) -> Fold:
    """Fold every applied event received before `cutoff` into `stock_opening` (`conn` in autocommit;
    each range of ids is its own transaction). Dry: count them, change nothing.

    The walk ends at the first range with newer events and no older one (arrival order and id
    order agree to within seconds, so a range at the boundary may hold both), or at the last id.
    """
    row = conn.execute("SELECT min(id), max(id) FROM movement_events").fetchone()
    if row is None or row[0] is None:
        return Fold(0, 0)
    low: int | None = int(row[0])
    last = int(row[1])
    events = updates = 0
    while low is not None and low <= last:
        params = {"low": low, "high": low + batch, "cutoff": cutoff}
        with conn.transaction():
            counted = conn.execute(_COUNT_RANGE if dry_run else _FOLD_RANGE, params).fetchone()
            assert counted is not None
            newer = conn.execute(_RANGE_HAS_NEWER, params).fetchone()
        events += int(counted[0])
        updates += int(counted[1])
        if newer is not None and newer[0] and int(counted[0]) == 0:
            break
        # The next id that exists: gaps in the sequence cost one index lookup, not a walk.
        following = conn.execute(
            "SELECT min(id) FROM movement_events WHERE id >= %s", (low + batch,)
        ).fetchone()
        low = int(following[0]) if following and following[0] is not None else None
    return Fold(events, updates)


def opening_balance(conn: psycopg.Connection, warehouse_id: object, product_id: object) -> int:
    """The folded part of a pair's stock (0 when nothing was folded)."""
    row = conn.execute(
        "SELECT quantity FROM stock_opening WHERE warehouse_id = %s AND product_id = %s",
        (warehouse_id, product_id),
    ).fetchone()
    return int(row[0]) if row else 0
