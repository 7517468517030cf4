"""The shapes the reads answer with: stock, movements, their pages, a product's stock, the
warehouse directory, the summary and the search.

Plain pydantic models with an example each (the OpenAPI document shows them); no I/O here, so
the Lambda functions, the local app and the console share one definition of every answer.
Warehouse codes (issue 23) are additive: a page carries `warehouse_codes`, a map from each
warehouse id it names to the code the directory knows it by; no existing field changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from common.dead_letters.models import DeadLetterCount
from common.domain.examples import example, examples

MovementStatus = Literal["in_transit", "delivered", "arrival_only"]
WarehouseCodes = dict[UUID, str]


def answer_json(answer: BaseModel, *, by_alias: bool = False) -> str:
    """The JSON an answer is sent as: `warehouse_codes` only when it names a warehouse, so an
    answer about warehouses without a known code is exactly what it was before codes existed."""
    empty = getattr(answer, "warehouse_codes", None) == {}
    return answer.model_dump_json(by_alias=by_alias, exclude={"warehouse_codes"} if empty else None)


CODES_FIELD: Any = Field(
    default_factory=dict,
    description=(
        "The code (the events' `source`, e.g. WH-3322) of each warehouse id this answer names, as the "
        "warehouse directory last saw it; an id without a known code is absent, and so is the map when "
        "no id has one. "
        "`GET /api/v1/warehouses` shows every code a warehouse was seen with, and codes two warehouses share."
    ),
)


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
                    "items": examples(StockView),
                    "next_cursor": "c3RvY2s6NDcwNTIwNGYtNDk4Zi00Zjk2LWI0YmEtZGYxN2ZiNTZiZjU1",
                    "warehouse_codes": {"c1d70455-7e14-11e9-812a-70106f431230": "WH-3322"},
                }
            ]
        }
    )

    items: list[StockView]
    next_cursor: str | None
    warehouse_codes: WarehouseCodes = CODES_FIELD


class MovementPage(BaseModel):
    """A page of movements, by movement id."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": examples(MovementView),
                    "next_cursor": None,
                    "warehouse_codes": {
                        "25718666-6af6-4281-b5a6-3016e36fa557": "WH-0117",
                        "c1d70455-7e14-11e9-812a-70106f431230": "WH-3322",
                    },
                }
            ]
        }
    )

    items: list[MovementView]
    next_cursor: str | None
    warehouse_codes: WarehouseCodes = CODES_FIELD


# --- a product across warehouses (GET /api/v1/products/{product_id}/stock) ---------------------


class ProductWarehouseStock(BaseModel):
    """What one warehouse holds of the product."""

    warehouse_id: UUID
    warehouse_code: str | None = Field(description="The warehouse's code, when the directory knows one.")
    quantity: int
    updated_at: datetime


class ProductInTransit(BaseModel):
    """A movement of the product that departed and has not arrived."""

    movement_id: UUID
    source_warehouse_id: UUID | None
    source_warehouse_code: str | None
    quantity: int
    departed_at: datetime | None


class ProductStock(BaseModel):
    """Where a product is: on hand per warehouse, in transit, and the total of both."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "product_id": "4705204f-498f-4f96-b4ba-df17fb56bf55",
                    "warehouses": [
                        {
                            "warehouse_id": "c1d70455-7e14-11e9-812a-70106f431230",
                            "warehouse_code": "WH-3322",
                            "quantity": 98,
                            "updated_at": "2025-02-18T14:34:57.120000Z",
                        }
                    ],
                    "on_hand": 98,
                    "in_transit": [
                        {
                            "movement_id": "c6290746-790e-43fa-8270-014dc90e02e0",
                            "source_warehouse_id": "25718666-6af6-4281-b5a6-3016e36fa557",
                            "source_warehouse_code": "WH-0117",
                            "quantity": 100,
                            "departed_at": "2025-02-18T12:12:56Z",
                        }
                    ],
                    "in_transit_movements": 1,
                    "in_transit_units": 100,
                    "total": 198,
                }
            ]
        }
    )

    product_id: UUID
    warehouses: list[ProductWarehouseStock] = Field(
        description="Warehouses holding the product or that held it (quantity 0 included), by code then id."
    )
    on_hand: int = Field(description="Units in all warehouses.")
    in_transit: list[ProductInTransit] = Field(
        description="Movements departed and not arrived, oldest departure first (at most `limit`)."
    )
    in_transit_movements: int = Field(description="All such movements, listed or not.")
    in_transit_units: int = Field(description="Units of all such movements (departed quantities).")
    total: int = Field(description="on_hand + in_transit_units.")


# --- the warehouse directory (GET /api/v1/warehouses) --------------------------------------------


class SeenCode(BaseModel):
    code: str
    first_seen: datetime
    last_seen: datetime = Field(description="Exact to the minute.")


class WarehouseEntry(BaseModel):
    """A warehouse: its codes as learnt from events, and its stock in short."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "warehouse_id": "c1d70455-7e14-11e9-812a-70106f431230",
                    "code": "WH-3322",
                    "codes": [
                        {
                            "code": "WH-3322",
                            "first_seen": "2025-02-18T08:00:02Z",
                            "last_seen": "2025-02-18T14:34:00Z",
                        }
                    ],
                    "code_shared_with": [],
                    "products": 840,
                    "units": 74800,
                    "updated_at": "2025-02-18T14:34:57.120000Z",
                }
            ]
        }
    )

    warehouse_id: UUID
    code: str | None = Field(description="The code last seen for it; null when no applied event named one.")
    codes: list[SeenCode] = Field(
        description="Every code it was seen with, latest first: more than one means its code changed."
    )
    code_shared_with: list[UUID] = Field(
        description="Other warehouses seen with its current code (at most 20): two claiming one code."
    )
    products: int
    units: int
    updated_at: datetime | None


class WarehouseDirectory(BaseModel):
    """Every warehouse with stock or a known code, most recently updated first."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": examples(WarehouseEntry)}]})

    items: list[WarehouseEntry]


# --- the header search (GET /api/v1/search) ------------------------------------------------------

FoundKind = Literal["warehouse", "product", "movement"]


class Found(BaseModel):
    kind: FoundKind
    id: UUID
    label: str = Field(description="The warehouse's code, or the id itself.")
    match: Literal["code", "id", "prefix"]


class SearchResult(BaseModel):
    """What a text names: warehouses by code or id, products, movements, by whole id or prefix."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "query": "WH-33",
                    "items": [
                        {
                            "kind": "warehouse",
                            "id": "c1d70455-7e14-11e9-812a-70106f431230",
                            "label": "WH-3322",
                            "match": "code",
                        }
                    ],
                }
            ]
        }
    )

    query: str
    items: list[Found]


# --- the summary (GET /api/v1/stats/summary) -----------------------------------------------------

Outcome = Literal["applied", "duplicate", "rejected"]


class MinuteCount(BaseModel):
    """Events decided in one minute (by `received_at` minute), by outcome; duplicates included."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"minute": "2025-02-18T14:34:00Z", "applied": 120, "duplicate": 4, "rejected": 1}]
        }
    )

    minute: datetime
    applied: int
    duplicate: int
    rejected: int


class PartitionLag(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "group_id": "warehouse-stock",
                    "topic": "warehouse-movements",
                    "partition": 0,
                    "lag": 42,
                    "reported_at": "2025-02-18T14:34:50Z",
                }
            ]
        }
    )

    group_id: str
    topic: str
    partition: int
    lag: int
    reported_at: datetime
    # Set while the poller holds this partition paused on a batch it cannot decode (issue 19).
    paused_offset: int | None = None
    paused_reason: str | None = None
    paused_since: datetime | None = None


class PollerLag(BaseModel):
    """Records the local pollers have yet to consume, from reports fresher than two minutes.

    `total` is null when no poller reported lately (none runs, or the app runs in AWS, where the
    event source mapping reports OffsetLag to CloudWatch instead: see `note`).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"total": 42, "partitions": [example(PartitionLag)], "note": None},
                {
                    "total": None,
                    "partitions": [],
                    "note": "no poller reported in the last 120 s",
                },
            ]
        }
    )

    total: int | None
    partitions: list[PartitionLag]
    note: str | None


class InTransitHead(BaseModel):
    """The movement that has been in transit longest."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "movement_id": "c6290746-790e-43fa-8270-014dc90e02e0",
                    "source_warehouse_id": "25718666-6af6-4281-b5a6-3016e36fa557",
                    "departed_at": "2025-02-18T12:12:56Z",
                    "age_seconds": 8520,
                }
            ]
        }
    )

    movement_id: UUID
    source_warehouse_id: UUID | None
    departed_at: datetime
    age_seconds: int


class Summary(BaseModel):
    """The state of the service at a glance: what the console's overview shows."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "generated_at": "2025-02-18T14:35:02Z",
                    "warehouses": 12,
                    "products": 840,
                    "movements_in_transit": 31,
                    "oldest_in_transit": example(InTransitHead),
                    "events_last_hour": {"applied": 7200, "duplicate": 240, "rejected": 15},
                    "events_per_minute": [example(MinuteCount)],
                    "dead_letters": [example(DeadLetterCount)],
                    "poller_lag": example(PollerLag),
                }
            ]
        }
    )

    generated_at: datetime
    warehouses: int = Field(description="Warehouses with at least one product an applied event touched.")
    products: int = Field(description="Distinct products held in any warehouse (applied events).")
    movements_in_transit: int
    oldest_in_transit: InTransitHead | None
    events_last_hour: dict[Outcome, int] = Field(
        description="Events decided in the last 60 minutes (the per-minute series summed), by outcome."
    )
    events_per_minute: list[MinuteCount] = Field(
        description="The last 60 minutes, oldest first, one entry per minute (zeros included)."
    )
    dead_letters: list[DeadLetterCount]
    poller_lag: PollerLag
    warehouse_codes: WarehouseCodes = CODES_FIELD
