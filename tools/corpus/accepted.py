"""The odd-but-valid payloads: each must be applied exactly once, as much a user-visible promise
as the refusals.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from tools.corpus.envelopes import KIB, dump, envelope


@dataclass(frozen=True)
class AcceptedCase:
    """An odd but valid payload; `same_as` is a canonical twin that must then be a duplicate."""

    name: str
    body: bytes
    movement_id: uuid.UUID
    warehouse_id: uuid.UUID
    product_id: uuid.UUID
    quantity: int
    same_as: bytes | None = None


def accepted_cases() -> list[AcceptedCase]:
    """Fresh valid-but-odd arrivals (new ids on every call): each must be applied exactly once."""
    out: list[AcceptedCase] = []

    Build = Callable[[uuid.UUID, uuid.UUID, uuid.UUID], tuple[bytes, bytes | None]]

    def add(name: str, build: Build) -> None:
        m, w, p = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        body, twin = build(m, w, p)
        out.append(AcceptedCase(name, body, m, w, p, 7, twin))

    def padded(m: uuid.UUID, w: uuid.UUID, p: uuid.UUID) -> tuple[bytes, bytes | None]:
        doc = envelope(movement_id=m, warehouse_id=w, product_id=p, quantity=7)
        doc["padding"] = "p" * (900 * KIB)  # an unknown field: ignored, whatever its size
        return dump(doc), None

    def braced(m: uuid.UUID, w: uuid.UUID, p: uuid.UUID) -> tuple[bytes, bytes | None]:
        doc = envelope(movement_id=f"{{{m}}}", warehouse_id=str(w).upper(), product_id=p.hex, quantity=7)
        canonical = dump(envelope(movement_id=m, warehouse_id=w, product_id=p, quantity=7))
        return dump(doc), canonical

    def shouting(m: uuid.UUID, w: uuid.UUID, p: uuid.UUID) -> tuple[bytes, bytes | None]:
        doc = envelope(movement_id=m, warehouse_id=w, product_id=p, event="ARRIVAL", quantity=7)
        return dump(doc), None

    def injection_in_free_text(m: uuid.UUID, w: uuid.UUID, p: uuid.UUID) -> tuple[bytes, bytes | None]:
        doc = envelope(movement_id=m, warehouse_id=w, product_id=p, quantity=7)
        doc["id"] = "1'; DROP TABLE stock; --"
        doc["source"] = 'Склад №1 🏭 "quoted" \\ backslash'
        return dump(doc), None

    def naive_time(m: uuid.UUID, w: uuid.UUID, p: uuid.UUID) -> tuple[bytes, bytes | None]:
        naive = "2025-02-18T12:12:56"
        doc = envelope(movement_id=m, warehouse_id=w, product_id=p, quantity=7, timestamp=naive)
        return dump(doc), None

    def nul_in_free_text(m: uuid.UUID, w: uuid.UUID, p: uuid.UUID) -> tuple[bytes, bytes | None]:
        doc = envelope(movement_id=m, warehouse_id=w, product_id=p, quantity=7)
        doc["source"] = "WH\x00-3322"  # not stored: ignored like any free text
        doc["subject"] = "s" * (600 * KIB)
        return dump(doc), None

    add("nul_and_600kib_in_ignored_free_text", nul_in_free_text)
    add("extra_900kib_field_ignored", padded)
    add("braced_upper_and_hex_uuids", braced)
    add("uppercase_event_kind", shouting)
    add("sql_and_unicode_in_free_text", injection_in_free_text)
    add("timestamp_without_offset", naive_time)
    return out
