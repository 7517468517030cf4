"""Every read of stock: one pair through the cache, a warehouse's stock (now or as of a past time,
optionally of the products whose id starts with some digits), its totals and each product's last
movements, and one product across every warehouse and in transit.

The cached single read hands out the cached bytes as the response body, async end to end (a miss
queries the event loop's async pool, `common.adapters.db_async`). The lists are read straight
from PostgreSQL with keyset pagination (`common.adapters.cursor`); the API and the console call the
same function for the same list, so they answer the same rows.

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
from typing import Any, Literal
from uuid import UUID

import psycopg
from pydantic import BaseModel

from common.adapters import cache
from common.adapters.cursor import DEFAULT_LIMIT, decode_uuid_key, encode_cursor, page_of
from common.adapters.db_async import get_async_pool
from common.reads.models import (
    ProductInTransit,
    ProductStock,
    ProductWarehouseStock,
    StockPage,
    StockView,
)
from common.reads.warehouses import codes_for

LAST_MOVEMENTS = 3
# Most in-transit movements a product's answer lists (all are counted and summed).
PRODUCT_IN_TRANSIT_LIMIT = 100

STOCK_QUERY = "SELECT quantity, updated_at FROM stock WHERE warehouse_id = %s AND product_id = %s"


def stock_from_row(warehouse_id: UUID, product_id: UUID, row: tuple[Any, ...] | None) -> StockView:
    """A pair no applied event touched (no row, or a placeholder row) reads as quantity 0."""
    quantity, updated_at = row if row and row[1] is not None else (0, None)
    return StockView(
        warehouse_id=warehouse_id, product_id=product_id, quantity=quantity, updated_at=updated_at
    )


def get_stock(conn: psycopg.Connection, warehouse_id: UUID, product_id: UUID) -> StockView:
    row = conn.execute(STOCK_QUERY, (warehouse_id, product_id)).fetchone()
    return stock_from_row(warehouse_id, product_id, row)


async def read_stock_json(warehouse_id: UUID, product_id: UUID) -> bytes:
    """The stock as the JSON the API returns, through the cache: served as-is on a hit."""

    async def load() -> bytes:
        async with (await get_async_pool()).connection() as conn:
            cur = await conn.execute(STOCK_QUERY, (warehouse_id, product_id))
            row = await cur.fetchone()
        return stock_from_row(warehouse_id, product_id, row).model_dump_json().encode()

    body = await cache.read_through(cache.stock_name(warehouse_id, product_id), load)
    assert body is not None  # load() never returns None
    return body


# --- a warehouse's stock: the one list the API and the console page both read --------------------


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


_NOW = """
    SELECT product_id, quantity, updated_at FROM stock
    WHERE warehouse_id = %(w)s AND updated_at IS NOT NULL
      AND (%(after)s::uuid IS NULL OR product_id > %(after)s::uuid)
      AND (%(low)s::uuid IS NULL OR product_id BETWEEN %(low)s::uuid AND %(high)s::uuid)
    ORDER BY product_id
    LIMIT %(n)s
"""

_AS_OF = """
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
    SELECT product_id, coalesce(o.quantity, 0) + coalesce(k.quantity, 0), greatest(k.last_at, o.last_at)
    FROM kept k FULL JOIN opening o USING (product_id)
    ORDER BY product_id
    LIMIT %(n)s
"""


def warehouse_stock(
    conn: psycopg.Connection,
    warehouse_id: UUID,
    *,
    as_of: datetime | None = None,
    product_range: tuple[UUID, UUID] | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> StockPage:
    """A warehouse's stock by product id: products an applied event touched (placeholders
    excluded), optionally only those in `product_range`; with `as_of`, as it was then (see the
    module doc: a product appears once an event of it was applied at or before `as_of`,
    `updated_at` is the `received_at` of the last of them). A naive `as_of` is UTC. Either way
    pages continue with the same cursor kind.
    """
    after = decode_uuid_key("stock", cursor)
    low, high = product_range or (None, None)
    params: dict[str, Any] = {"w": warehouse_id, "after": after, "low": low, "high": high, "n": limit + 1}
    if as_of is None:
        query = _NOW
    else:
        as_of = as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=UTC)
        folded = conn.execute(
            "SELECT max(folded_until) FROM stock_opening WHERE warehouse_id = %s", (warehouse_id,)
        ).fetchone()
        if folded and folded[0] is not None and as_of < folded[0]:
            raise BeforeRetainedLog(folded[0])
        query, params["t"] = _AS_OF, as_of
    page, more = page_of(conn.execute(query, params).fetchall(), limit)
    items = [StockView(warehouse_id=warehouse_id, product_id=p, quantity=q, updated_at=u) for p, q, u in page]
    return StockPage(
        items=items,
        next_cursor=encode_cursor("stock", page[-1][0]) if more else None,
        warehouse_codes=codes_for(conn, [warehouse_id]),
    )


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


class LastMovement(BaseModel):
    movement_id: UUID
    event: Literal["arrival", "departure"]
    quantity: int
    occurred_at: datetime
    received_at: datetime
    other_warehouse_id: UUID | None  # where it went (departure) or came from (arrival), once known


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


# --- one product everywhere --------------------------------------------------------------------


def nowhere(product_id: UUID) -> ProductStock:
    """A product no applied event named, as the API answers it: nothing anywhere, total 0."""
    return ProductStock(
        product_id=product_id, warehouses=[], on_hand=0, in_transit=[], in_transit_movements=0,
        in_transit_units=0, total=0,
    )  # fmt: skip


def product_stock(
    conn: psycopg.Connection, product_id: UUID, *, in_transit_limit: int = PRODUCT_IN_TRANSIT_LIMIT
) -> ProductStock | None:
    """The product on hand in each warehouse and in transit (departed, not arrived); None when no
    applied event ever named it."""
    held = conn.execute(
        """
        SELECT warehouse_id, quantity, updated_at FROM stock
        WHERE product_id = %s AND updated_at IS NOT NULL
        """,
        (product_id,),
    ).fetchall()
    moving = conn.execute(
        """
        SELECT movement_id, source_warehouse_id, departed_quantity, departed_at,
               count(*) OVER (), coalesce(sum(departed_quantity) OVER (), 0)::bigint
        FROM movements
        WHERE product_id = %s AND status = 'in_transit'
        ORDER BY departed_at, movement_id
        LIMIT %s
        """,
        (product_id, in_transit_limit),
    ).fetchall()
    if not held and not moving:
        return None
    codes = codes_for(conn, [w for w, _, _ in held] + [m[1] for m in moving])
    warehouses = sorted(
        (
            ProductWarehouseStock(warehouse_id=w, warehouse_code=codes.get(w), quantity=q, updated_at=u)
            for w, q, u in held
        ),
        key=lambda s: (s.warehouse_code is None, s.warehouse_code or "", str(s.warehouse_id)),
    )
    in_transit = [
        ProductInTransit(
            movement_id=mid,
            source_warehouse_id=src,
            source_warehouse_code=codes.get(src) if src else None,
            quantity=q,
            departed_at=at,
        )
        for mid, src, q, at, _, _ in moving
    ]
    count, units = (moving[0][4], moving[0][5]) if moving else (0, 0)
    on_hand = sum(s.quantity for s in warehouses)
    return ProductStock(
        product_id=product_id,
        warehouses=warehouses,
        on_hand=on_hand,
        in_transit=in_transit,
        in_transit_movements=count,
        in_transit_units=units,
        total=on_hand + units,
    )
