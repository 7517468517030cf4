"""The console's report models: the summary (GET /api/v1/stats/summary) and the dead-letter page.

Models only, with their OpenAPI examples; the queries that fill them are in common/reads/summary.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["applied", "duplicate", "rejected"]


def example(model: type[BaseModel]) -> Any:
    """The first OpenAPI example of `model`, to nest in another model's example."""
    return model.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]


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


class DeadLetterCount(BaseModel):
    """Dead letters of one reason: all kept, and those no replay has resolved yet."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "insufficient_stock", "total": 12, "unresolved": 3}]}
    )

    reason: Literal["invalid", "conflict", "insufficient_stock"]
    total: int
    unresolved: int


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


class DeadLetterRow(BaseModel):
    id: int
    reason: Literal["invalid", "conflict", "insufficient_stock"]
    detail: str
    movement_id: UUID | None
    event: str | None
    origin: str
    source: str = Field(description="webhook, replay, or the Kafka record as topic/partition@offset")
    received_at: datetime
    replayed_at: datetime | None
    replay_status: str | None
    replay_detail: str | None
    raw_payload: str
    raw_payload_encoding: Literal["utf-8", "base64"]


class DeadLetterPage(BaseModel):
    items: list[DeadLetterRow]
    next_cursor: str | None
