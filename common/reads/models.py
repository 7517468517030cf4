"""The shapes the API answers with: stock, movements and their pages.

Plain pydantic models with an example each (the OpenAPI document shows them); no I/O here, so
the Lambda functions, the local app and the console share one definition of every answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

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
