"""Movements for the console: the stuck ones (in transit longer than some time) and one in full.

The in-transit list reads a partial index of movements in transit by departure time (migration
0003), oldest first, continued by a keyset cursor on (departed_at, movement_id).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

import psycopg
from pydantic import BaseModel, Field

from common.adapters.cursor import DEFAULT_LIMIT, BadCursor, decode_cursor, encode_cursor
from common.reads import summary as reports
from common.reads.models import MovementPage, MovementView
from common.reads.stock_and_movements import MOVEMENT_COLUMNS, movement_from_row

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


def in_transit(
    conn: psycopg.Connection,
    *,
    older_than: timedelta = timedelta(0),
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> MovementPage:
    """Movements in transit whose departure is more than `older_than` ago, oldest first."""
    after_at: datetime | None = None
    after_id: UUID | None = None
    if cursor is not None:
        key = decode_cursor("transit", cursor)
        stamp, _, mid = key.partition("|")
        try:
            after_at, after_id = datetime.fromisoformat(stamp), UUID(mid)
        except ValueError:
            raise BadCursor("not a cursor returned by this list") from None
    rows = conn.execute(
        f"""
        SELECT {MOVEMENT_COLUMNS}, departed_at FROM movements
        WHERE status = 'in_transit' AND departed_at < now() - %(age)s
          AND (%(at)s::timestamptz IS NULL
               OR (departed_at, movement_id) > (%(at)s::timestamptz, %(id)s::uuid))
        ORDER BY departed_at, movement_id
        LIMIT %(n)s
        """,  # noqa: S608 - MOVEMENT_COLUMNS is a constant
        {"age": older_than, "at": after_at, "id": after_id, "n": limit + 1},
    ).fetchall()
    page, more = rows[:limit], len(rows) > limit
    next_cursor = None
    if more:
        last = page[-1]
        next_cursor = encode_cursor("transit", f"{last[-1].isoformat()}|{last[0]}")
    return MovementPage(items=[movement_from_row(row[:-1]) for row in page], next_cursor=next_cursor)


def locate(conn: psycopg.Connection, some_id: UUID) -> Literal["movement", "warehouse"] | None:
    """Whether an id names a movement or a warehouse with stock (the console's search box)."""
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


def movement_detail(conn: psycopg.Connection, movement_id: UUID) -> MovementDetail | None:
    """Both halves, the events they came from, and how many events of it were refused."""
    row = conn.execute(
        f"SELECT {MOVEMENT_COLUMNS} FROM movements WHERE movement_id = %s AND status IS NOT NULL",  # noqa: S608
        (movement_id,),
    ).fetchone()
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
    return MovementDetail(
        movement=movement_from_row(row), events=events, dead_letters=reports.refused_count(conn, movement_id)
    )
