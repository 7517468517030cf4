"""Keyset-paginated lists: the stock of a warehouse, movements, and the dead-letter store.

Pages are ordered by a unique key and continue strictly after the last key returned, so a page
costs one index range scan however deep the client pages, and rows inserted meanwhile are
neither skipped nor repeated. The cursor is that last key, tagged with the list it belongs to and
base64url-encoded: opaque to clients, and refused (`BadCursor`) when forged or from another list.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict

from common.views import MOVEMENT_COLUMNS, MovementStatus, MovementView, StockView, movement_from_row

DEFAULT_LIMIT = 100
MAX_LIMIT = 500

ListKind = Literal["stock", "movements", "rejected"]
RawEncoding = Literal["utf-8", "base64"]


class BadCursor(ValueError):
    """The cursor was not produced by this list."""


def encode_cursor(kind: ListKind, key: object) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).rstrip(b"=").decode()


def decode_cursor(kind: ListKind, cursor: str) -> str:
    """The key inside `cursor`, checked to belong to the `kind` list (not yet typed)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("not a cursor returned by this list") from None
    tag, _, key = text.partition(":")
    if tag != kind or not key:
        raise BadCursor("not a cursor returned by this list")
    return key


def _uuid_key(kind: ListKind, cursor: str | None) -> UUID | None:
    if cursor is None:
        return None
    try:
        return UUID(decode_cursor(kind, cursor))
    except ValueError:
        raise BadCursor("not a cursor returned by this list") from None


def _int_key(kind: ListKind, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    key = decode_cursor(kind, cursor)
    if not key.isascii() or not key.isdigit() or len(key) > 18:
        raise BadCursor("not a cursor returned by this list")
    return int(key)


class StockPage(BaseModel):
    """A page of a warehouse's stock, by product id."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": StockView.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
                    "next_cursor": "c3RvY2s6NDcwNTIwNGYtNDk4Zi00Zjk2LWI0YmEtZGYxN2ZiNTZiZjU1",
                }
            ]
        }
    )

    items: list[StockView]
    next_cursor: str | None


class MovementPage(BaseModel):
    """A page of movements, by movement id."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": MovementView.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
                    "next_cursor": None,
                }
            ]
        }
    )

    items: list[MovementView]
    next_cursor: str | None


class RejectedEventView(BaseModel):
    """A dead letter: why it was refused, where it came from, its raw bytes and any replay."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "reason": "insufficient_stock",
                    "detail": "departure of 100 of product 4705204f-498f-4f96-b4ba-df17fb56bf55 from "
                    "warehouse 25718666-6af6-4281-b5a6-3016e36fa557 exceeds the 0 on hand",
                    "movement_id": "c6290746-790e-43fa-8270-014dc90e02e0",
                    "event": "departure",
                    "origin": "kafka",
                    "kafka_topic": "warehouse-movements",
                    "kafka_partition": 0,
                    "kafka_offset": 1234,
                    "received_at": "2025-02-18T12:12:57.310000Z",
                    "replayed_at": None,
                    "replay_status": None,
                    "replay_detail": None,
                    "raw_payload": '{"id": "b3b53031-e83a-4654-87f5-b6b6fb09fd99", "data": {"...": "..."}}',
                    "raw_payload_encoding": "utf-8",
                }
            ]
        }
    )

    id: int
    reason: Literal["invalid", "conflict", "insufficient_stock"]
    detail: str
    movement_id: UUID | None
    event: str | None
    origin: str
    kafka_topic: str | None
    kafka_partition: int | None
    kafka_offset: int | None
    received_at: datetime
    replayed_at: datetime | None
    replay_status: str | None
    replay_detail: str | None
    raw_payload: str
    raw_payload_encoding: RawEncoding


class RejectedEventPage(BaseModel):
    """A page of the dead-letter store, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": RejectedEventView.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
                    "next_cursor": "cmVqZWN0ZWQ6NDI",
                }
            ]
        }
    )

    items: list[RejectedEventView]
    next_cursor: str | None


def _page(rows: list[Any], limit: int) -> tuple[list[Any], bool]:
    """The first `limit` rows and whether there are more (the query asked for limit + 1)."""
    return rows[:limit], len(rows) > limit


def list_stock(
    conn: psycopg.Connection, warehouse_id: UUID, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> StockPage:
    """Products of a warehouse that an applied event touched (placeholders excluded)."""
    after = _uuid_key("stock", cursor)
    conditions = [sql.SQL("warehouse_id = %(w)s"), sql.SQL("updated_at IS NOT NULL")]
    if after is not None:
        conditions.append(sql.SQL("product_id > %(after)s"))
    query = sql.SQL(
        "SELECT warehouse_id, product_id, quantity, updated_at FROM stock WHERE {} "
        "ORDER BY product_id LIMIT %(n)s"
    ).format(sql.SQL(" AND ").join(conditions))
    rows = conn.execute(query, {"w": warehouse_id, "after": after, "n": limit + 1}).fetchall()
    page, more = _page(rows, limit)
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
    after = _uuid_key("movements", cursor)
    conditions = [sql.SQL("status IS NOT NULL")]
    if status is not None:
        conditions.append(sql.SQL("status = %(status)s"))
    if product_id is not None:
        conditions.append(sql.SQL("product_id = %(p)s"))
    if after is not None:
        conditions.append(sql.SQL("movement_id > %(after)s"))
    columns = sql.SQL(MOVEMENT_COLUMNS)  # type: ignore[arg-type]  # constant from views.py

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
    rows = conn.execute(query, params).fetchall()
    page, more = _page(rows, limit)
    items = [movement_from_row(row) for row in page]
    return MovementPage(items=items, next_cursor=encode_cursor("movements", page[-1][0]) if more else None)


def raw_text(raw: bytes) -> tuple[str, RawEncoding]:
    """The payload as text when it is UTF-8, else base64, so any bytes survive JSON."""
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def list_rejected_events(
    conn: psycopg.Connection,
    *,
    reason: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> RejectedEventPage:
    """Dead letters in arrival order, optionally of one reason."""
    after = _int_key("rejected", cursor)
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    if reason is not None:
        conditions.append(sql.SQL("reason = %(reason)s"))
    if after is not None:
        conditions.append(sql.SQL("id > %(after)s"))
    query = sql.SQL(
        "SELECT id, reason, detail, movement_id, event, origin, kafka_topic, kafka_partition, "
        "kafka_offset, received_at, replayed_at, replay_status, replay_detail, raw_payload "
        "FROM rejected_events WHERE {} ORDER BY id LIMIT %(n)s"
    ).format(sql.SQL(" AND ").join(conditions))
    rows = conn.execute(query, {"reason": reason, "after": after, "n": limit + 1}).fetchall()
    page, more = _page(rows, limit)
    items = []
    for row in page:
        (rid, why, detail, mid, event, origin, topic, partition, offset, received, replayed,
         replay_status, replay_detail, raw) = row  # fmt: skip
        text, encoding = raw_text(bytes(raw))
        items.append(
            RejectedEventView(
                id=rid,
                reason=why,
                detail=detail,
                movement_id=mid,
                event=event,
                origin=origin,
                kafka_topic=topic,
                kafka_partition=partition,
                kafka_offset=offset,
                received_at=received,
                replayed_at=replayed,
                replay_status=replay_status,
                replay_detail=replay_detail,
                raw_payload=text,
                raw_payload_encoding=encoding,
            )  # fmt: skip
        )
    return RejectedEventPage(
        items=items, next_cursor=encode_cursor("rejected", page[-1][0]) if more else None
    )
