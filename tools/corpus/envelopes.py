"""A valid envelope and the ways to damage it: one field set, removed, or replaced by a raw JSON
literal; the envelope's fields by kind. The other corpus modules build their payloads from these.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from common.domain.events import EVENT_TYPE

KIB = 1024
MIB = 1024 * KIB


def envelope(
    *,
    movement_id: uuid.UUID | str | None = None,
    warehouse_id: uuid.UUID | str | None = None,
    product_id: uuid.UUID | str | None = None,
    event: str = "arrival",
    quantity: Any = 5,
    timestamp: Any = "2025-02-18T12:12:56Z",
    envelope_id: str | None = None,
) -> dict[str, Any]:
    """A valid envelope (fresh ids unless given), as a dict to damage."""
    return {
        "id": envelope_id if envelope_id is not None else str(uuid.uuid4()),
        "source": "WH-3322",
        "specversion": "1.0",
        "type": EVENT_TYPE,
        "datacontenttype": "application/json",
        "dataschema": "ru.retail.warehouses.movement.v1.0",
        "time": 1737439421623,
        "subject": f"WH-3322:{event.upper()}",
        "destination": "ru.retail.warehouses",
        "data": {
            "movement_id": str(movement_id or uuid.uuid4()),
            "warehouse_id": str(warehouse_id or uuid.uuid4()),
            "product_id": str(product_id or uuid.uuid4()),
            "event": event,
            "quantity": quantity,
            "timestamp": timestamp,
        },
    }


def dump(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def with_field(path: str, value: Any) -> bytes:
    """A valid envelope with `path` (dotted, e.g. `data.quantity`) set to `value`."""
    doc = envelope()
    *parents, last = path.split(".")
    target = doc
    for part in parents:
        target = target[part]
    target[last] = value
    return dump(doc)


def without_field(path: str) -> bytes:
    doc = envelope()
    *parents, last = path.split(".")
    target = doc
    for part in parents:
        target = target[part]
    del target[last]
    return dump(doc)


def with_raw(path_key: str, literal: bytes) -> bytes:
    """A valid envelope whose `"<path_key>": <placeholder>` is replaced by a raw JSON literal."""
    marker = "__RAW_LITERAL__"
    body = with_field(path_key, marker)
    return body.replace(f'"{marker}"'.encode(), literal)


REQUIRED_FIELDS = (
    "id",
    "source",
    "specversion",
    "type",
    "data",
    "data.movement_id",
    "data.warehouse_id",
    "data.product_id",
    "data.event",
    "data.quantity",
    "data.timestamp",
)

# Every field that holds text in the envelope.
TEXT_FIELDS = (
    "id",
    "source",
    "specversion",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "destination",
    "data.movement_id",
    "data.warehouse_id",
    "data.product_id",
    "data.event",
    "data.timestamp",
)
# ... and those validation checks (the others are free text the service ignores).
CHECKED_TEXT_FIELDS = (
    "id",
    "specversion",
    "type",
    "data.movement_id",
    "data.warehouse_id",
    "data.product_id",
    "data.event",
    "data.timestamp",
)


def sample_with(name: str, inserted: bytes) -> bytes:
    """A plausible value of `name` (as JSON string content) with `inserted` in the middle."""
    value = json.dumps(_value_of(name))[1:-1].encode()
    middle = len(value) // 2
    return value[:middle] + inserted + value[middle:]


def _value_of(name: str) -> Any:
    doc: Any = envelope()
    for part in name.split("."):
        doc = doc[part]
    return doc


WRONG_TYPES: dict[str, Any] = {
    "id": 12345,
    "source": ["WH-3322"],
    "specversion": 1.0,
    "type": {"name": EVENT_TYPE},
    "data": "movement",
    "data.movement_id": 12345,
    "data.warehouse_id": True,
    "data.product_id": {"id": "4705204f-498f-4f96-b4ba-df17fb56bf55"},
    "data.event": 1,
    "data.quantity": "5",
    "data.timestamp": 1737439421623,
}


def valid_arrival(quantity: int = 3) -> tuple[bytes, uuid.UUID, uuid.UUID]:
    """One ordinary valid arrival: (body, warehouse_id, product_id)."""
    w, p = uuid.uuid4(), uuid.uuid4()
    return dump(envelope(warehouse_id=w, product_id=p, quantity=quantity)), w, p
