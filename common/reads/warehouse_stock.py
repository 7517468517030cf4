"""A warehouse's stock for the console: now (searchable by product id), as of a past time, and
each product's last movements.

Stock as of T comes from the event log: for (warehouse, product), the opening balance retention
folded old events into (none without EVENT_LOG_RETENTION_DAYS) plus the quantities of its arrivals
minus those of its departures among the events whose `received_at` (the start of the transaction
that applied them) is at or before T. A T before the fold is refused: no longer known. An index of
the log by warehouse, product and `received_at`, including event and quantity (migration 0003),
makes it an index-only scan.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import psycopg
from pydantic import BaseModel

from common.adapters.cursor import DEFAULT_LIMIT, BadCursor, decode_cursor, encode_cursor
from common.reads.models import StockPage, StockView

LAST_MOVEMENTS = 3


def _stock_cursor(cursor: str | None) -> UUID | None:
    if cursor is None:
        return None
    try:
        return UUID(decode_cursor("stock", cursor))
    except ValueError:
        raise BadCursor("not a cursor returned by this list") from None


def stock_as_of(
    conn: psycopg.Connection,
    warehouse_id: UUID,
    as_of: datetime,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    product_range: tuple[UUID, UUID] | None = None,
) -> StockPage:
    """The warehouse's stock as of `as_of`, from the event log, by product id (see the module doc).

    A product appears once an event of it was applied at or before `as_of`; `updated_at` is the
    `received_at` of the last of them. Pages continue like `list_stock` (the same cursor kind).
    A naive `as_of` is UTC.
    """
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    folded = conn.execute(
        "SELECT max(folded_until) FROM stock_opening WHERE warehouse_id = %s", (warehouse_id,)
    ).fetchone()
    if folded and folded[0] is not None and as_of < folded[0]:
        raise BeforeRetainedLog(folded[0])
    after = _stock_cursor(cursor)
    low, high = product_range or (None, None)
    rows = conn.execute(
        """
        WITH kept AS (
            SELECT product_id,
                   sum(CASE WHEN event = 'arrival' THEN quantity ELSE -quantity END)::bigint AS quantity,
                   max(received_at) AS last_at
            FROM movement_events
            WHERE warehouse_id = %(w)s AND received_at <= %(t)s
              AND (%(after)s::uuid IS NULL OR product_id > %(after)s::uuid)
              AND (%(low)s::uuid IS NULL OR product_id BETWEEN %(low)s::uuid AND %(high)s::uuid)
            GROUP BY product_id
        ), opening AS (
            SELECT product_id, quantity, folded_until AS last_at
            FROM stock_opening
            WHERE warehouse_id = %(w)s
              AND (%(after)s::uuid IS NULL OR product_id > %(after)s::uuid)
              AND (%(low)s::uuid IS NULL OR product_id BETWEEN %(low)s::uuid AND %(high)s::uuid)
        )
        SELECT product_id, coalesce(o.quantity, 0) + coalesce(k.quantity, 0),
               greatest(k.last_at, o.last_at)
        FROM kept k FULL JOIN opening o USING (product_id)
        ORDER BY product_id
        LIMIT %(n)s
        """,
        {"w": warehouse_id, "t": as_of, "after": after, "low": low, "high": high, "n": limit + 1},
    ).fetchall()
    page, more = rows[:limit], len(rows) > limit
    items = [StockView(warehouse_id=warehouse_id, product_id=p, quantity=q, updated_at=u) for p, q, u in page]
    return StockPage(items=items, next_cursor=encode_cursor("stock", page[-1][0]) if more else None)


class BeforeRetainedLog(ValueError):
    """`as_of` is before the events retention folded into the opening balance: not known any more."""

    def __init__(self, folded_until: datetime) -> None:
        super().__init__(
            f"before {folded_until.isoformat()}, when older events were folded into an opening balance "
            "(EVENT_LOG_RETENTION_DAYS): the stock at that time is no longer known"
        )


HEX = re.compile(r"^[0-9a-f]{1,32}$")


def product_prefix_range(text: str) -> tuple[UUID, UUID] | None:
    """The ids starting with `text` (hex digits, hyphens ignored) as an inclusive UUID range.

    An index range scan instead of a LIKE on the id's text, which no index serves. None when
    `text` is empty; ValueError when it is not hexadecimal.
    """
    digits = text.strip().lower().replace("-", "")
    if not digits:
        return None
    if not HEX.match(digits):
        raise ValueError("a product id, or its first hexadecimal digits")
    return UUID(digits.ljust(32, "0")), UUID(digits.ljust(32, "f"))


class LastMovement(BaseModel):
    movement_id: UUID
    event: Literal["arrival", "departure"]
    quantity: int
    occurred_at: datetime
    received_at: datetime
    other_warehouse_id: UUID | None  # where it went (departure) or came from (arrival), once known


class WarehouseTotals(BaseModel):
    products: int
    units: int
    updated_at: datetime | None


def warehouse_totals(conn: psycopg.Connection, warehouse_id: UUID) -> WarehouseTotals:
    row = conn.execute(
        """
        SELECT count(*), coalesce(sum(quantity), 0)::bigint, max(updated_at) FROM stock
        WHERE warehouse_id = %s AND updated_at IS NOT NULL
        """,
        (warehouse_id,),
    ).fetchone()
    assert row is not None
    return WarehouseTotals(products=row[0], units=row[1], updated_at=row[2])


def warehouse_stock(
    conn: psycopg.Connection,
    warehouse_id: UUID,
    *,
    product_range: tuple[UUID, UUID] | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> StockPage:
    """The current stock of a warehouse, optionally of the products in `product_range`."""
    after = _stock_cursor(cursor)
    low, high = product_range or (None, None)
    rows = conn.execute(
        """
        SELECT product_id, quantity, updated_at FROM stock
        WHERE warehouse_id = %(w)s AND updated_at IS NOT NULL
          AND (%(after)s::uuid IS NULL OR product_id > %(after)s::uuid)
          AND (%(low)s::uuid IS NULL OR product_id BETWEEN %(low)s::uuid AND %(high)s::uuid)
        ORDER BY product_id
        LIMIT %(n)s
        """,
        {"w": warehouse_id, "after": after, "low": low, "high": high, "n": limit + 1},
    ).fetchall()
    page, more = rows[:limit], len(rows) > limit
    items = [StockView(warehouse_id=warehouse_id, product_id=p, quantity=q, updated_at=u) for p, q, u in page]
    return StockPage(items=items, next_cursor=encode_cursor("stock", page[-1][0]) if more else None)


def last_movements(
    conn: psycopg.Connection,
    warehouse_id: UUID,
    product_ids: list[UUID],
    *,
    per_product: int = LAST_MOVEMENTS,
) -> dict[UUID, list[LastMovement]]:
    """The latest `per_product` events of each product in this warehouse, newest first."""
    if not product_ids:
        return {}
    rows = conn.execute(
        """
        SELECT p.product_id, e.movement_id, e.event, e.quantity, e.occurred_at, e.received_at,
               CASE WHEN e.event = 'departure' THEN m.destination_warehouse_id
                    ELSE m.source_warehouse_id END
        FROM unnest(%(p)s::uuid[]) AS p(product_id)
        CROSS JOIN LATERAL (
            SELECT movement_id, event, quantity, occurred_at, received_at FROM movement_events
            WHERE warehouse_id = %(w)s AND product_id = p.product_id
            ORDER BY received_at DESC, id DESC
            LIMIT %(n)s
        ) e
        LEFT JOIN movements m ON m.movement_id = e.movement_id
        """,
        {"p": product_ids, "w": warehouse_id, "n": per_product},
    ).fetchall()
    found: dict[UUID, list[LastMovement]] = {p: [] for p in product_ids}
    for product, mid, event, quantity, occurred, received, other in rows:
        found[product].append(
            LastMovement(
                movement_id=mid,
                event=event,
                quantity=quantity,
                occurred_at=occurred,
                received_at=received,
                other_warehouse_id=other,
            )
        )
    return found


class WarehouseRow(BaseModel):
    warehouse_id: UUID
    products: int
    units: int
    updated_at: datetime | None


def warehouses(conn: psycopg.Connection, *, limit: int = 500) -> list[WarehouseRow]:
    """Every warehouse with stock rows, most recently updated first."""
    rows = conn.execute(
        """
        SELECT warehouse_id, count(*), sum(quantity)::bigint, max(updated_at) FROM stock
        WHERE updated_at IS NOT NULL
        GROUP BY warehouse_id
        ORDER BY max(updated_at) DESC, warehouse_id
        LIMIT %s
        """,
        (limit,),
    ).fetchall()
    return [WarehouseRow(warehouse_id=w, products=n, units=u, updated_at=at) for w, n, u, at in rows]
