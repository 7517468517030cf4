"""The movement event as it arrives: a CloudEvents-style envelope around one half of a movement.

Parsing never raises: whatever arrives becomes an `IncomingEvent`, valid or carrying the reason it
is not, so the caller can answer 422 (webhook) or park the record (Kafka) and nothing is lost.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
)

from common.domain.frozen import frozen_built
from common.domain.movement import MAX_QUANTITY, MovementData, _iso_timestamp, _lower_event
from common.domain.outcomes import FieldError, describe_errors, dotted_field, field_error

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
        # One per Kafka record: built without the frozen dataclass's per-field __setattr__ (3x cheaper).
        return frozen_built(
            cls,
            {"kind": "kafka", "topic": topic, "partition": partition, "offset": offset, "cluster": cluster,
             "key": key},
        )  # fmt: skip

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

    @cached_property  # computed once: the ledger asks for it several times per record
    def digest(self) -> bytes:
        """SHA-256 of the record's key and value: a keyless record's digest is that of its value."""
        key = self.origin.key
        if key is None:
            return hashlib.sha256(self.raw).digest()
        return hashlib.sha256(len(key).to_bytes(4, "big") + key + self.raw).digest()


def validation_errors(exc: ValidationError) -> list[FieldError]:
    """Pydantic's errors as `{field, message, type}`, the field dotted (`data.quantity`)."""
    return [
        field_error(dotted_field(err["loc"]), err["msg"], err["type"])
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


# --- the fast path: msgspec decodes and checks in C what pydantic would accept -------------------
#
# Every payload goes through `fast_envelope` first. It accepts only what `Envelope` accepts, with the
# same values (the differential test, tests/unit/test_fast_decode.py, holds it to that on generated
# and corpus inputs); anything it does not accept goes to pydantic, which decides and words the
# errors, so every error message is pydantic's. The field functions are the model's own
# (`_lower_event`, `_iso_timestamp`, `_no_nul`), and the models are then built without validating
# again: ~4 us instead of ~8 us per 560-byte envelope.


class _FastData(msgspec.Struct, gc=False):  # no cycles: the collector need not track them
    movement_id: UUID
    warehouse_id: UUID
    product_id: UUID
    event: str
    quantity: Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY)]
    timestamp: str


class _FastEnvelope(msgspec.Struct, gc=False):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    source: str
    specversion: Literal["1.0"]
    type: Literal["ru.retail.warehouses.movement"]
    data: _FastData
    datacontenttype: str | None = None
    dataschema: str | None = None
    time: int | str | None = None
    subject: str | None = None
    destination: str | None = None


_fast_decoder = msgspec.json.Decoder(_FastEnvelope)
_EVENT_KINDS = frozenset(("arrival", "departure"))
_MAX_BRACKETS = 64  # far below the nesting pydantic refuses (about 200)
_DATA_FIELDS = frozenset(MovementData.model_fields)
_ENVELOPE_FIELDS = frozenset(Envelope.model_fields)
_new = object.__new__
# The four slots `BaseModel` declares, set through their descriptors: `object.__setattr__` would
# look each descriptor up on the class first (~0.15 us a model of the two built per event).
_set_values = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _built[M: BaseModel](cls: type[M], values: dict[str, object], fields_set: frozenset[str]) -> M:
    """A model from values already validated (what `model_construct` does, without its per-field loop)."""
    instance = _new(cls)
    _set_values(instance, values)
    _set_fields_set(instance, set(fields_set))
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


def fast_envelope(raw: bytes) -> Envelope | None:
    """The envelope, when msgspec and the model's own field checks accept it; else None (ask pydantic)."""
    # msgspec skips ignored fields without checking their UTF-8, and nests deeper than pydantic's
    # parser allows: leave both kinds of payload to pydantic (a normal envelope nests 2 deep).
    if raw.count(b"{") + raw.count(b"[") > _MAX_BRACKETS:
        return None
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        fast = _fast_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError, RecursionError):
        return None  # invalid UTF-8 is a UnicodeDecodeError (a ValueError), not a DecodeError
    data = fast.data
    event = _lower_event(data.event)
    if event not in _EVENT_KINDS or "\x00" in fast.id:
        return None
    try:
        timestamp = _iso_timestamp(data.timestamp)
    except ValueError:
        return None
    movement = _built(
        MovementData,
        {
            "movement_id": data.movement_id,
            "warehouse_id": data.warehouse_id,
            "product_id": data.product_id,
            "event": event,
            "quantity": data.quantity,
            "timestamp": timestamp,
        },
        _DATA_FIELDS,
    )
    return _built(
        Envelope,
        {
            "id": fast.id,
            "source": fast.source,
            "specversion": fast.specversion,
            "type": fast.type,
            "datacontenttype": fast.datacontenttype,
            "dataschema": fast.dataschema,
            "time": fast.time,
            "subject": fast.subject,
            "destination": fast.destination,
            "data": movement,
        },
        _ENVELOPE_FIELDS,
    )


def pydantic_envelope(raw_bytes: bytes) -> Envelope | list[FieldError]:
    """The reference path: pydantic's verdict, with its errors as `FieldError`s."""
    try:
        return Envelope.model_validate_json(raw_bytes)
    except ValidationError as exc:
        return validation_errors(exc)
    except (ValueError, RecursionError) as exc:  # pragma: no cover - pydantic wraps nearly all
        return [field_error("body", str(exc)[:200], "json_invalid")]


def parse_event(raw: bytes | str, origin: Origin) -> IncomingEvent:
    """Validate one JSON payload. Never raises: invalid input comes back with its errors."""
    raw_bytes = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if raw_bytes[:1] != b"{" and not raw_bytes.strip():  # (an object's first byte: no copy to strip)
        return IncomingEvent(raw_bytes, origin, errors=[field_error("body", "empty payload", "missing")])
    envelope = fast_envelope(raw_bytes)
    if envelope is not None:  # the hot path: built without the frozen dataclass's __setattr__s
        return frozen_built(
            IncomingEvent, {"raw": raw_bytes, "origin": origin, "envelope": envelope, "errors": []}
        )
    checked = pydantic_envelope(raw_bytes)
    if isinstance(checked, Envelope):
        return IncomingEvent(raw_bytes, origin, envelope=checked)
    return IncomingEvent(raw_bytes, origin, errors=checked)
