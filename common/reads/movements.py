"""Every read of movements: one through the cache, the one list (by filter, or the stuck ones in
transit oldest first), and one movement in full with its events.

The API (`GET /api/v1/movements`) and the console's movements page call `list_movements` with the
same filters and get the same rows. By default the list is ordered by movement id; asked for the
movements in transit longer than some time (`older_than`), it reads a partial index of movements in
transit by departure time (migration 0003), oldest first, continued by a cursor on
(departed_at, movement_id).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Literal, cast
from uuid import UUID

import psycopg
from psycopg import sql
from pydantic import BaseModel, Field

from common.adapters import cache
from common.adapters.cursor import (
    DEFAULT_LIMIT,
    BadCursor,
    decode_cursor,
    decode_uuid_key,
    encode_cursor,
    page_of,
)
from common.adapters.db import as_utc
from common.adapters.db_async import get_async_pool
from common.dead_letters.store import refused_count
from common.reads.models import MovementPage, MovementStatus, MovementView, WarehouseCodes
from common.reads.warehouses import codes_for

# Event times are read as UTC wall-clock values and tagged UTC in Python: loading a timestamptz in a
# session time zone ahead of UTC would turn a valid 9999-12-31T23:59:59Z into year 10000.
MOVEMENT_COLUMNS = """
    movement_id, product_id, source_warehouse_id, destination_warehouse_id,
    departed_at AT TIME ZONE 'UTC', arrived_at AT TIME ZONE 'UTC',
    departed_quantity, arrived_quantity, status
"""
MOVEMENT_QUERY = f"SELECT {MOVEMENT_COLUMNS} FROM movements WHERE movement_id = %s AND status IS NOT NULL"


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


def get_movement(conn: psycopg.Connection, movement_id: UUID) -> MovementView | None:
    """None when no event of the movement has been applied."""
    row = conn.execute(MOVEMENT_QUERY, (movement_id,)).fetchone()
    return movement_from_row(row) if row else None


async def read_movement_json(movement_id: UUID) -> bytes | None:
    """The movement as the JSON the API returns, through the cache; None (not cached) when unknown."""

    async def load() -> bytes | None:
        async with (await get_async_pool()).connection() as conn:
            cur = await conn.execute(MOVEMENT_QUERY, (movement_id,))
            row = await cur.fetchone()
        return movement_from_row(row).model_dump_json().encode() if row else None

    return await cache.read_through(cache.movement_name(movement_id), load)


DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90`, `90s`, `15m`, `2h`, `3d`; ValueError otherwise."""
    match = DURATION.match(text)
    if not match:
        raise ValueError("must be a whole number of seconds, or a number followed by s, m, h or d (e.g. 2h)")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > 100 * 365 * 86400:
        raise ValueError("must be at most 100 years")
    return timedelta(seconds=seconds)


def movement_codes(conn: psycopg.Connection, items: list[MovementView]) -> WarehouseCodes:
    return codes_for(conn, [w for m in items for w in (m.source_warehouse_id, m.destination_warehouse_id)])


def list_movements(
    conn: psycopg.Connection,
    *,
    status: MovementStatus | None = None,
    warehouse_id: UUID | None = None,
    product_id: UUID | None = None,
    older_than: timedelta | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> MovementPage:
    """Movements matching every filter given; `warehouse_id` matches the source or the destination.

    With `older_than` (the stuck ones): movements in transit whose departure is more than that
    ago, oldest departure first; `status` must then be None or in_transit (ValueError otherwise).
    Else by movement id; the warehouse filter is then a union of two index range scans (source,
    destination), each already cut to the page size, rather than an OR that would scan and sort
    every movement of the warehouse.
    """
    if older_than is not None:
        if status not in (None, "in_transit"):
            raise ValueError("older_than applies to movements in transit only")
        page = _stuck(conn, older_than, warehouse_id, product_id, limit, cursor)
    else:
        page = _by_id(conn, status, warehouse_id, product_id, limit, cursor)
    page.warehouse_codes = movement_codes(conn, page.items)
    return page


def _by_id(
    conn: psycopg.Connection,
    status: MovementStatus | None,
    warehouse_id: UUID | None,
    product_id: UUID | None,
    limit: int,
    cursor: str | None,
) -> MovementPage:
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


def _stuck(
    conn: psycopg.Connection,
    older_than: timedelta,
    warehouse_id: UUID | None,
    product_id: UUID | None,
    limit: int,
    cursor: str | None,
) -> MovementPage:
    after_at: datetime | None = None
    after_id: UUID | None = None
    if cursor is not None:
        stamp, _, mid = decode_cursor("transit", cursor).partition("|")
        try:
            after_at, after_id = datetime.fromisoformat(stamp), UUID(mid)
        except ValueError:
            raise BadCursor("not a cursor returned by this list") from None
    rows = conn.execute(
        f"""
        SELECT {MOVEMENT_COLUMNS}, departed_at FROM movements
        WHERE status = 'in_transit' AND departed_at < now() - %(age)s
          AND (%(w)s::uuid IS NULL OR source_warehouse_id = %(w)s::uuid
               OR destination_warehouse_id = %(w)s::uuid)
          AND (%(p)s::uuid IS NULL OR product_id = %(p)s::uuid)
          AND (%(at)s::timestamptz IS NULL
               OR (departed_at, movement_id) > (%(at)s::timestamptz, %(id)s::uuid))
        ORDER BY departed_at, movement_id
        LIMIT %(n)s
        """,  # noqa: S608 - MOVEMENT_COLUMNS is a constant
        {
            "age": older_than,
            "w": warehouse_id,
            "p": product_id,
            "at": after_at,
            "id": after_id,
            "n": limit + 1,
        },
    ).fetchall()
    page, more = page_of(rows, limit)
    next_cursor = None
    if more:
        last = page[-1]
        next_cursor = encode_cursor("transit", f"{last[-1].isoformat()}|{last[0]}")
    return MovementPage(items=[movement_from_row(row[:-1]) for row in page], next_cursor=next_cursor)


def in_transit_totals(
    conn: psycopg.Connection,
    *,
    warehouse_id: UUID | None = None,
    product_id: UUID | None = None,
    older_than: timedelta | None = None,
) -> tuple[int, int]:
    """(movements, units departed) of the movements `list_movements(status="in_transit", ...)` lists
    with the same filters, every page together."""
    row = conn.execute(
        """
        SELECT count(*), coalesce(sum(departed_quantity), 0)::bigint FROM movements
        WHERE status = 'in_transit' AND departed_at < now() - %(age)s
          AND (%(w)s::uuid IS NULL OR source_warehouse_id = %(w)s::uuid
               OR destination_warehouse_id = %(w)s::uuid)
          AND (%(p)s::uuid IS NULL OR product_id = %(p)s::uuid)
        """,
        {"age": older_than or timedelta(0), "w": warehouse_id, "p": product_id},
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


class LoggedEvent(BaseModel):
    """One applied event of a movement, as the event log keeps it."""

    event: Literal["arrival", "departure"]
    warehouse_id: UUID
    quantity: int
    occurred_at: datetime
    received_at: datetime
    envelope_id: str
    origin: str
    kafka: str | None


class MovementDetail(BaseModel):
    movement: MovementView
    events: list[LoggedEvent]
    dead_letters: int = Field(description="Refused events of this movement (the list is an operator route).")
    warehouse_codes: WarehouseCodes = Field(default_factory=dict)


def movement_detail(conn: psycopg.Connection, movement_id: UUID) -> MovementDetail | None:
    """Both halves, the events they came from, and how many events of it were refused."""
    row = conn.execute(MOVEMENT_QUERY, (movement_id,)).fetchone()
    if row is None:
        return None
    events = [
        LoggedEvent(
            event=event,
            warehouse_id=w,
            quantity=q,
            occurred_at=occurred,
            received_at=received,
            envelope_id=envelope_id,
            origin=origin,
            kafka=f"{topic}/{partition}@{offset}" if topic is not None else None,
        )
        for event, w, q, occurred, received, envelope_id, origin, topic, partition, offset in conn.execute(
            """
            SELECT event, warehouse_id, quantity, occurred_at, received_at, envelope_id, origin,
                   kafka_topic, kafka_partition, kafka_offset
            FROM movement_events WHERE movement_id = %s ORDER BY event DESC
            """,
            (movement_id,),
        )
    ]
    movement = movement_from_row(row)
    return MovementDetail(
        movement=movement,
        events=events,
        dead_letters=refused_count(conn, movement_id),
        warehouse_codes=movement_codes(conn, [movement]),
    )


def locate(conn: psycopg.Connection, some_id: UUID) -> Literal["movement", "warehouse"] | None:
    """Whether an id names a movement or a warehouse with stock (kept for the console's /ui/go;
    `common.reads.search.search` finds products, codes and prefixes too)."""
    row = conn.execute(
        """
        SELECT EXISTS (SELECT 1 FROM movements WHERE movement_id = %(id)s AND status IS NOT NULL),
               EXISTS (SELECT 1 FROM stock WHERE warehouse_id = %(id)s)
        """,
        {"id": some_id},
    ).fetchone()
    assert row is not None
    if row[0]:
        return "movement"
    return "warehouse" if row[1] else None
