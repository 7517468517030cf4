"""One half of a movement, the ledger's domain object: goods leaving or reaching a warehouse.

Validated on construction (pydantic): UUIDs, an event kind, a quantity in range and a time in UTC.
Parsing the envelope around it is `common.domain.events`; deciding what it does to stock,
`common.domain.rules`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

MAX_QUANTITY = 1_000_000_000

EventKind = Literal["arrival", "departure"]


def _lower_event(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _iso_timestamp(value: object) -> datetime:
    """ISO-8601 text only (no epoch numbers); a time without an offset is UTC."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO-8601 date-time string") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the years 1 to 9999 once converted to UTC") from None


class MovementData(BaseModel):
    """One half of a movement: goods leaving (`departure`) or reaching (`arrival`) a warehouse."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    movement_id: UUID
    warehouse_id: UUID
    product_id: UUID
    event: Annotated[EventKind, BeforeValidator(_lower_event)]
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY)]
    timestamp: Annotated[datetime, BeforeValidator(_iso_timestamp)]
