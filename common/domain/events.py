"""The movement event as it arrives: a CloudEvents-style envelope around one half of a movement.

Parsing never raises: whatever arrives becomes an `IncomingEvent`, valid or carrying the reason it
is not, so the caller can answer 422 (webhook) or park the record (Kafka) and nothing is lost.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from common.domain.movement import MovementData
from common.domain.outcomes import FieldError, describe_errors, field_error

EVENT_TYPE = "ru.retail.warehouses.movement"
SPEC_VERSION = "1.0"


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class Envelope(BaseModel):
    """The brief's envelope. `id` is not a key: the brief reuses one id for both halves."""

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "b3b53031-e83a-4654-87f5-b6b6fb09fd99",
                    "source": "WH-3322",
                    "specversion": "1.0",
                    "type": EVENT_TYPE,
                    "datacontenttype": "application/json",
                    "dataschema": "ru.retail.warehouses.movement.v1.0",
                    "time": 1737439421623,
                    "subject": "WH-3322:DEPARTURE",
                    "destination": "ru.retail.warehouses",
                    "data": {
                        "movement_id": "c6290746-790e-43fa-8270-014dc90e02e0",
                        "warehouse_id": "25718666-6af6-4281-b5a6-3016e36fa557",
                        "timestamp": "2025-02-18T12:12:56Z",
                        "event": "departure",
                        "product_id": "4705204f-498f-4f96-b4ba-df17fb56bf55",
                        "quantity": 100,
                    },
                }
            ]
        },
    )

    # Stored as text: PostgreSQL text cannot hold NUL, so it is refused here, not by a failed COPY.
    id: Annotated[StrictStr, Field(min_length=1, max_length=512), AfterValidator(_no_nul)]
    source: StrictStr
    specversion: Literal["1.0"]
    type: Literal["ru.retail.warehouses.movement"]
    datacontenttype: StrictStr | None = None
    dataschema: StrictStr | None = None
    time: StrictInt | StrictStr | None = None
    subject: StrictStr | None = None
    destination: StrictStr | None = None
    data: MovementData


@dataclass(frozen=True)
class Origin:
    """Where an event came from: the webhook, a Kafka record, or an operator's replay.

    A Kafka record also carries its cluster (when the trigger names it) and its key: coordinates
    alone repeat (a recreated topic restarts at offset 0, a second cluster has the same topic
    name), so a record's identity is cluster + coordinates + a digest of key and value.
    """

    kind: Literal["webhook", "kafka", "replay"]
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    cluster: str | None = None
    key: bytes | None = None

    @classmethod
    def webhook(cls) -> Origin:
        return cls("webhook")

    @classmethod
    def kafka(
        cls, topic: str, partition: int, offset: int, *, cluster: str | None = None, key: bytes | None = None
    ) -> Origin:
        return cls("kafka", topic, partition, offset, cluster, key)

    def describe(self) -> str:
        if self.kind == "kafka":
            return f"{self.topic}/{self.partition}@{self.offset}"
        return self.kind


@dataclass(frozen=True)
class IncomingEvent:
    """A received payload: its raw bytes, its origin, and either the envelope or why it is invalid."""

    raw: bytes
    origin: Origin
    envelope: Envelope | None = None
    errors: list[FieldError] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        return self.envelope is not None

    @property
    def error_detail(self) -> str:
        return describe_errors(self.errors)

    @property
    def digest(self) -> bytes:
        """SHA-256 of the record's key and value: a keyless record's digest is that of its value."""
        key = self.origin.key
        if key is None:
            return hashlib.sha256(self.raw).digest()
        return hashlib.sha256(len(key).to_bytes(4, "big") + key + self.raw).digest()


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def validation_errors(exc: ValidationError) -> list[FieldError]:
    """Pydantic's errors as `{field, message, type}`, the field dotted (`data.quantity`)."""
    return [
        field_error(_field_name(err["loc"]), err["msg"], err["type"])
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def parse_event(raw: bytes | str, origin: Origin) -> IncomingEvent:
    """Validate one JSON payload. Never raises: invalid input comes back with its errors."""
    raw_bytes = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if not raw_bytes.strip():
        return IncomingEvent(raw_bytes, origin, errors=[field_error("body", "empty payload", "missing")])
    try:
        envelope = Envelope.model_validate_json(raw_bytes)
    except ValidationError as exc:
        return IncomingEvent(raw_bytes, origin, errors=validation_errors(exc))
    except (ValueError, RecursionError) as exc:  # pragma: no cover - pydantic wraps nearly all
        return IncomingEvent(raw_bytes, origin, errors=[field_error("body", str(exc)[:200], "json_invalid")])
    return IncomingEvent(raw_bytes, origin, envelope=envelope)
