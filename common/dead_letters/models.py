"""A dead letter as the API answers it, one or a page; no I/O here."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from common.domain.examples import examples
from common.domain.outcomes import Reason, Status

RawEncoding = Literal["utf-8", "base64"]


class AppliedHalf(BaseModel):
    """A half of a movement as the ledger applied it."""

    event: Literal["arrival", "departure"]
    warehouse_id: UUID
    product_id: UUID
    quantity: int
    occurred_at: datetime
    received_at: datetime
    envelope_id: str


class AuditEntry(BaseModel):
    """One operator action on a dead letter (dead_letter_audit; kept after the dead letter is gone)."""

    action: Literal["resolve", "replay"]
    actor: str
    note: str | None
    outcome: str | None
    at: datetime


class RejectedEventView(BaseModel):
    """A dead letter: why it was refused, where it came from, its raw bytes and any replay.

    In the list, `raw_payload` is at most the first 4 KiB of the payload (`raw_payload_truncated`
    then says so, `raw_payload_bytes` gives the full size); `raw_payload_url` answers it whole.
    `raw_payload_encoding` describes `raw_payload` as given: UTF-8 text, else base64.
    """

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
                    "raw_payload_bytes": 412,
                    "raw_payload_truncated": False,
                    "raw_payload_url": "/api/v1/rejected-events/42",
                }
            ]
        }
    )

    id: int
    reason: Reason
    detail: str
    movement_id: UUID | None
    event: str | None
    origin: str
    kafka_topic: str | None
    kafka_partition: int | None
    kafka_offset: int | None
    received_at: datetime
    replayed_at: datetime | None
    replay_status: Status | None
    replay_detail: str | None
    raw_payload: str
    raw_payload_encoding: RawEncoding
    raw_payload_bytes: int
    raw_payload_truncated: bool
    raw_payload_url: str
    # Issue 23, the workflow (additive fields):
    resolved_at: datetime | None = Field(
        default=None, description="When an operator resolved it, or when a webhook refusal was answered."
    )
    resolved_by: str | None = Field(default=None, description="Who resolved it (`webhook`: answered 409).")
    resolution: Literal["resolved", "answered"] | None = Field(
        default=None, description="`resolved` by an operator; `answered`: a webhook caller was told (409)."
    )
    resolution_note: str | None = Field(default=None, description="Why, in the operator's words.")
    replayable: bool = Field(
        default=False,
        description="Whether a replay can change anything: false for a conflict (the rule that refused it "
        "refuses it again: see `applied`) and for one already applied or resolved.",
    )
    applied: list[AppliedHalf] | None = Field(
        default=None,
        description="One dead letter, a conflict: the movement's halves as applied, to set beside the "
        "refused payload. Null in the list and for other reasons.",
    )
    audit: list[AuditEntry] | None = Field(
        default=None,
        description="One dead letter: what operators did about it, oldest first. Null in the list.",
    )


class RejectedEventPage(BaseModel):
    """A page of the dead-letter store, oldest first: at most `limit` items and about 1 MiB (a page
    cut short by size has a `next_cursor` like any other)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": examples(RejectedEventView),
                    "next_cursor": "cmVqZWN0ZWQ6NDI",
                }
            ]
        }
    )

    items: list[RejectedEventView]
    next_cursor: str | None


class DeadLetterCount(BaseModel):
    """Dead letters of one reason: all kept, and those no replay has resolved yet."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "insufficient_stock", "total": 12, "unresolved": 3}]}
    )

    reason: Literal["invalid", "conflict", "insufficient_stock"]
    total: int
    unresolved: int
