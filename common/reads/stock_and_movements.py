"""Every read of stock and movements: the response models, single reads through the cache, lists.

The two brief GET endpoints (one stock, one movement) read through the Redis cache and hand out
the cached bytes as the response body, async end to end (a miss queries the event loop's async
pool, `common.adapters.db_async`); the lists are operator tools read straight from PostgreSQL with keyset
pagination (`common.adapters.cursor`).
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

import psycopg
from psycopg import sql

from common.adapters import cache
from common.adapters.cursor import DEFAULT_LIMIT, decode_uuid_key, encode_cursor, page_of
from common.adapters.db import as_utc
from common.adapters.db_async import get_async_pool
from common.reads.models import MovementPage, MovementStatus, MovementView, StockPage, StockView

# Event times are read as UTC wall-clock values and tagged UTC in Python: loading a timestamptz in a
# session time zone ahead of UTC would turn a valid 9999-12-31T23:59:59Z into year 10000.
MOVEMENT_COLUMNS = """
    movement_id, product_id, source_warehouse_id, destination_warehouse_id,
    departed_at AT TIME ZONE 'UTC', arrived_at AT TIME ZONE 'UTC',
    departed_quantity, arrived_quantity, status
"""


def movement_from_row(row: tuple[Any, ...]) -> MovementView:
    mid, product, src, dst, dep_at, arr_at, dep_q, arr_q, status = row
    dep_at, arr_at = as_utc(dep_at), as_utc(arr_at)
    both = dep_at is not None and arr_at is not None
    return MovementView(
        movement_id=mid,
        product_id=product,
        source_warehouse_id=src,
        destination_warehouse_id=dst,
        departed_at=dep_at,
        arrived_at=arr_at,
        departed_quantity=dep_q,
        arrived_quantity=arr_q,
        quantity_difference=arr_q - dep_q if both else None,
        transit_seconds=int((arr_at - dep_at).total_seconds()) if both else None,
        status=status,
    )


STOCK_QUERY = "SELECT quantity, updated_at FROM stock WHERE warehouse_id = %s AND product_id = %s"
MOVEMENT_QUERY = f"SELECT {MOVEMENT_COLUMNS} FROM movements WHERE movement_id = %s AND status IS NOT NULL"


def stock_from_row(warehouse_id: UUID, product_id: UUID, row: tuple[Any, ...] | None) -> StockView:
    """A pair no applied event touched (no row, or a placeholder row) reads as quantity 0."""
    quantity, updated_at = row if row and row[1] is not None else (0, None)
    return StockView(
        warehouse_id=warehouse_id, product_id=product_id, quantity=quantity, updated_at=updated_at
    )


def get_stock(conn: psycopg.Connection, warehouse_id: UUID, product_id: UUID) -> StockView:
    row = conn.execute(STOCK_QUERY, (warehouse_id, product_id)).fetchone()
    return stock_from_row(warehouse_id, product_id, row)


def get_movement(conn: psycopg.Connection, movement_id: UUID) -> MovementView | None:
    """None when no event of the movement has been applied."""
    row = conn.execute(MOVEMENT_QUERY, (movement_id,)).fetchone()
    return movement_from_row(row) if row else None


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


async def read_movement_json(movement_id: UUID) -> bytes | None:
    """The movement as the JSON the API returns, through the cache; None (not cached) when unknown."""

    async def load() -> bytes | None:
        async with (await get_async_pool()).connection() as conn:
            cur = await conn.execute(MOVEMENT_QUERY, (movement_id,))
            row = await cur.fetchone()
        return movement_from_row(row).model_dump_json().encode() if row else None

    return await cache.read_through(cache.movement_name(movement_id), load)


# --- lists ---------------------------------------------------------------------------------------


def list_stock(
    conn: psycopg.Connection, warehouse_id: UUID, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> StockPage:
    """Products of a warehouse that an applied event touched (placeholders excluded)."""
    after = decode_uuid_key("stock", cursor)
    conditions = [sql.SQL("warehouse_id = %(w)s"), sql.SQL("updated_at IS NOT NULL")]
    if after is not None:
        conditions.append(sql.SQL("product_id > %(after)s"))
    query = sql.SQL(
        "SELECT warehouse_id, product_id, quantity, updated_at FROM stock WHERE {} "
        "ORDER BY product_id LIMIT %(n)s"
    ).format(sql.SQL(" AND ").join(conditions))
    rows = conn.execute(query, {"w": warehouse_id, "after": after, "n": limit + 1}).fetchall()
    page, more = page_of(rows, limit)
    items = [StockView(warehouse_id=w, product_id=p, quantity=q, updated_at=u) for w, p, q, u in page]
    return StockPage(items=items, next_cursor=encode_cursor("stock", page[-1][1]) if more else None)


def list_movements(
    conn: psycopg.Connection,
    *,
    status: MovementStatus | None = None,
    warehouse_id: UUID | None = None,
    product_id: UUID | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> MovementPage:
    """Movements matching every filter given; `warehouse_id` matches the source or the destination.

    The warehouse filter is a union of two index range scans (source, destination), each already
    cut to the page size, rather than an OR that would scan and sort every movement of the
    warehouse.
    """
    after = decode_uuid_key("movements", cursor)
    conditions = [sql.SQL("status IS NOT NULL")]
    if status is not None:
        conditions.append(sql.SQL("status = %(status)s"))
    if product_id is not None:
        conditions.append(sql.SQL("product_id = %(p)s"))
    if after is not None:
        conditions.append(sql.SQL("movement_id > %(after)s"))
    columns = sql.SQL(MOVEMENT_COLUMNS)  # type: ignore[arg-type,unused-ignore]  # a constant of this module

    def branch(extra: sql.Composable | None) -> sql.Composed:
        where = sql.SQL(" AND ").join([*conditions, extra] if extra is not None else conditions)
        return sql.SQL("SELECT {} FROM movements WHERE {} ORDER BY movement_id LIMIT %(n)s").format(
            columns, where
        )

    if warehouse_id is None:
        query: sql.Composable = branch(None)
    else:
        query = sql.SQL("SELECT * FROM (({}) UNION ({})) AS m ORDER BY movement_id LIMIT %(n)s").format(
            branch(sql.SQL("source_warehouse_id = %(w)s")),
            branch(sql.SQL("destination_warehouse_id = %(w)s")),
        )
    params = {"status": status, "p": product_id, "after": after, "w": warehouse_id, "n": limit + 1}
    rows = conn.execute(cast(sql.Composed, query), params).fetchall()
    page, more = page_of(rows, limit)
    items = [movement_from_row(row) for row in page]
    return MovementPage(items=items, next_cursor=encode_cursor("movements", page[-1][0]) if more else None)
