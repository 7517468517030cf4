"""Read models over the ledger's tables: current stock and the movement view."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import psycopg
from pydantic import BaseModel, ConfigDict

from common import cache
from common.db import get_pool

MovementStatus = Literal["in_transit", "delivered", "arrival_only"]


class StockView(BaseModel):
    """Stock of one product in one warehouse; quantity 0 and updated_at null when never seen."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "warehouse_id": "c1d70455-7e14-11e9-812a-70106f431230",
                    "product_id": "4705204f-498f-4f96-b4ba-df17fb56bf55",
                    "quantity": 98,
                    "updated_at": "2025-02-18T14:34:57.120000Z",
                }
            ]
        }
    )

    warehouse_id: UUID
    product_id: UUID
    quantity: int
    updated_at: datetime | None


class MovementView(BaseModel):
    """Both halves of a movement side by side; parts not yet seen are null."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "movement_id": "c6290746-790e-43fa-8270-014dc90e02e0",
                    "product_id": "4705204f-498f-4f96-b4ba-df17fb56bf55",
                    "source_warehouse_id": "25718666-6af6-4281-b5a6-3016e36fa557",
                    "destination_warehouse_id": "c1d70455-7e14-11e9-812a-70106f431230",
                    "departed_at": "2025-02-18T12:12:56Z",
                    "arrived_at": "2025-02-18T14:34:56Z",
                    "departed_quantity": 100,
                    "arrived_quantity": 98,
                    "quantity_difference": -2,
                    "transit_seconds": 8520,
                    "status": "delivered",
                }
            ]
        }
    )

    movement_id: UUID
    product_id: UUID
    source_warehouse_id: UUID | None
    destination_warehouse_id: UUID | None
    departed_at: datetime | None
    arrived_at: datetime | None
    departed_quantity: int | None
    arrived_quantity: int | None
    quantity_difference: int | None
    transit_seconds: int | None
    status: MovementStatus


# Event times are read as UTC wall-clock values and tagged UTC in Python: loading a timestamptz in a
# session time zone ahead of UTC would turn a valid 9999-12-31T23:59:59Z into year 10000.
MOVEMENT_COLUMNS = """
    movement_id, product_id, source_warehouse_id, destination_warehouse_id,
    departed_at AT TIME ZONE 'UTC', arrived_at AT TIME ZONE 'UTC',
    departed_quantity, arrived_quantity, status
"""


def as_utc(value: datetime | None) -> datetime | None:
    """A naive UTC wall-clock value from `AT TIME ZONE 'UTC'`, tagged as UTC."""
    return value.replace(tzinfo=UTC) if value is not None else None


def movement_from_row(row: tuple) -> MovementView:
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


def get_stock(conn: psycopg.Connection, warehouse_id: UUID, product_id: UUID) -> StockView:
    row = conn.execute(
        "SELECT quantity, updated_at FROM stock WHERE warehouse_id = %s AND product_id = %s",
        (warehouse_id, product_id),
    ).fetchone()
    quantity, updated_at = row if row and row[1] is not None else (0, None)
    return StockView(
        warehouse_id=warehouse_id, product_id=product_id, quantity=quantity, updated_at=updated_at
    )


def get_movement(conn: psycopg.Connection, movement_id: UUID) -> MovementView | None:
    """None when no event of the movement has been applied."""
    row = conn.execute(
        f"SELECT {MOVEMENT_COLUMNS} FROM movements WHERE movement_id = %s AND status IS NOT NULL",
        (movement_id,),
    ).fetchone()
    return movement_from_row(row) if row else None


def read_stock_json(warehouse_id: UUID, product_id: UUID) -> bytes:
    """The stock as the JSON the API returns, through the cache: served as-is on a hit."""

    def load() -> bytes:
        with get_pool().connection() as conn:
            return get_stock(conn, warehouse_id, product_id).model_dump_json().encode()

    body = cache.read_through(cache.stock_name(warehouse_id, product_id), load)
    assert body is not None  # load() never returns None
    return body


def read_movement_json(movement_id: UUID) -> bytes | None:
    """The movement as the JSON the API returns, through the cache; None (not cached) when unknown."""

    def load() -> bytes | None:
        with get_pool().connection() as conn:
            view = get_movement(conn, movement_id)
        return view.model_dump_json().encode() if view is not None else None

    return cache.read_through(cache.movement_name(movement_id), load)
