"""The bad-input corpus: named payloads every entry point must refuse cleanly.

Each `Case` is raw bytes as they would arrive in a webhook body or a Kafka record value. The rule
the corpus enforces everywhere: a bad payload is refused with a reason (HTTP 4xx with a JSON body,
or parked in `rejected_events`), it never becomes a 5xx, a traceback, or a stuck Kafka partition.

`accepted_cases()` holds the odd-but-valid payloads (an ignored 900 KiB extra field, a braced UUID,
...): they must be applied exactly once, which is as much a user-visible promise as the refusals.

Used by tests/corpus/ and the fault suite; builders return fresh ids on every call so repeated runs
against the same database never collide.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from common.domain.events import EVENT_TYPE
from common.domain.movement import MAX_QUANTITY

KIB = 1024
MIB = 1024 * KIB
# The webhook's default MAX_BODY_BYTES; bodies above it must be refused with 413 before parsing.
WEBHOOK_LIMIT = 1 * MIB
DEPTH = 10_000


# Cases that `common.domain.events.parse_event` gets wrong, by name -> what goes wrong (it raises, or it
# accepts what PostgreSQL then refuses, failing a whole Kafka batch). test_corpus_parse marks them
# xfail(strict=True), so a fix makes the run fail until the entry is removed. Empty: the three
# found by this corpus (NUL in `id`, timestamps overflowing in UTC) are fixed in common/domain/events.py.
KNOWN_BUGS: dict[str, str] = {}


@dataclass(frozen=True)
class Case:
    """One named payload and how the webhook must answer it (422 unless it is too large)."""

    name: str
    body: bytes
    webhook_status: int = 422
    why: str = ""
    tags: frozenset[str] = field(default_factory=frozenset)

    @property
    def known_bug(self) -> str:
        return KNOWN_BUGS.get(self.name, "")

    @property
    def too_large(self) -> bool:
        return len(self.body) > WEBHOOK_LIMIT


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


def _with(path: str, value: Any) -> bytes:
    """A valid envelope with `path` (dotted, e.g. `data.quantity`) set to `value`."""
    doc = envelope()
    *parents, last = path.split(".")
    target = doc
    for part in parents:
        target = target[part]
    target[last] = value
    return dump(doc)


def _without(path: str) -> bytes:
    doc = envelope()
    *parents, last = path.split(".")
    target = doc
    for part in parents:
        target = target[part]
    del target[last]
    return dump(doc)


def _raw_value(path_key: str, literal: bytes) -> bytes:
    """A valid envelope whose `"<path_key>": <placeholder>` is replaced by a raw JSON literal."""
    marker = "__RAW_LITERAL__"
    body = _with(path_key, marker)
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


def _sample(name: str, inserted: bytes) -> bytes:
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


def _build_rejected() -> list[Case]:
    valid = dump(envelope())
    cases: list[Case] = [
        # --- not JSON, or not all of it ----------------------------------------------------------
        Case("empty_body", b""),
        Case("whitespace_only", b" \r\n\t "),
        Case("truncated_in_key", valid[:12]),
        Case("truncated_in_uuid", valid[: valid.index(b'"movement_id"') + 30]),
        Case("truncated_after_colon", valid[: valid.index(b'"quantity"') + 11]),
        Case("truncated_last_brace", valid[:-1]),
        Case("trailing_garbage", valid + b"garbage"),
        Case("two_documents", valid + b"\n" + valid),
        Case("single_quotes", valid.replace(b'"', b"'")),
        Case("js_comment", b"/* movement */" + valid),
        Case("leading_zero_number", _raw_value("data.quantity", b"007")),
        # --- the wrong JSON value at the top ---------------------------------------------------------
        Case("json_null", b"null"),
        Case("json_number", b"42"),
        Case("json_string", b'"hello"'),
        Case("json_true", b"true"),
        Case("empty_object", b"{}"),
        Case("empty_array", b"[]"),
        Case("array_of_envelopes", dump([envelope(), envelope()])),
        Case("double_encoded_json", dump(valid.decode())),
        Case("data_is_array", _with("data", [envelope()["data"]])),
        # --- wrong encodings ----------------------------------------------------------------------
        Case("latin1_text", dump(envelope()).replace(b"WH-3322", "Lager München".encode("latin-1"))),
        Case("utf16_with_bom", valid.decode().encode("utf-16")),
        Case("utf16le_without_bom", valid.decode().encode("utf-16-le")),
        Case("utf32", valid.decode().encode("utf-32")),
        Case("utf8_bom_prefix", b"\xef\xbb\xbf" + valid),
        Case("invalid_utf8_bytes", valid.replace(b"WH-3322", b"WH-\xff\xfe\xfd")),
        Case("overlong_utf8_slash", valid.replace(b"WH-3322", b"WH\xc0\xaf3322")),
        Case("lone_surrogate_escape", _raw_value("id", b'"\\ud800"')),
        # --- nesting ---------------------------------------------------------------------------------
        Case("nested_arrays_10000", b"[" * DEPTH + b"]" * DEPTH),
        Case("nested_objects_10000", b'{"a":' * DEPTH + b"{}" + b"}" * DEPTH),
        Case("nested_in_extra_field_10000", _raw_value("subject", b"[" * DEPTH + b"]" * DEPTH)),
        Case("nested_as_quantity_10000", _raw_value("data.quantity", b"[" * DEPTH + b"1" + b"]" * DEPTH)),
        # --- numbers ---------------------------------------------------------------------------------
        Case("quantity_1e400", _raw_value("data.quantity", b"1e400")),
        Case("quantity_10_pow_30", _with("data.quantity", 10**30)),
        Case("quantity_5000_digits", _raw_value("data.quantity", b"9" * 5000)),
        Case("quantity_max_plus_one", _with("data.quantity", MAX_QUANTITY + 1)),
        Case("quantity_zero", _with("data.quantity", 0)),
        Case("quantity_negative", _with("data.quantity", -5)),
        Case("quantity_float", _raw_value("data.quantity", b"5.0")),
        Case("quantity_exponent", _raw_value("data.quantity", b"1e3")),
        Case("quantity_bool", _with("data.quantity", True)),
        Case("quantity_nan", _raw_value("data.quantity", b"NaN")),
        Case("quantity_infinity", _raw_value("data.quantity", b"Infinity")),
        Case("quantity_minus_infinity", _raw_value("data.quantity", b"-Infinity")),
        # --- duplicate keys: the last one wins, and here it is bad ------------------------------------
        Case("duplicate_quantity_key", _raw_value("data.quantity", b'5, "quantity": -5')),
        Case("duplicate_data_key", dump(envelope())[:-1] + b', "data": "overridden"}'),
        # --- control characters -------------------------------------------------------------------
        Case("raw_control_char_in_string", valid.replace(b"WH-3322", b"WH-\x013322")),
        Case("raw_nul_byte_in_string", valid.replace(b"WH-3322", b"WH-\x003322")),
        Case(
            "escaped_nul_in_envelope_id",
            _raw_value("id", b'"abc\\u0000def"'),
            why="PostgreSQL text cannot hold NUL: accepting it would fail the whole batch",
        ),
        # --- ids ---------------------------------------------------------------------------------------
        Case("sql_injection_movement_id", _with("data.movement_id", "'; DROP TABLE stock; --")),
        Case("sql_injection_warehouse_id", _with("data.warehouse_id", "1' OR '1'='1")),
        Case("sql_injection_product_id", _with("data.product_id", "x' UNION SELECT * FROM stock --")),
        Case("uuid_too_short", _with("data.movement_id", "c6290746-790e-43fa-8270")),
        Case("uuid_bad_hex", _with("data.movement_id", "g6290746-790e-43fa-8270-014dc90e02e0")),
        Case("empty_envelope_id", _with("id", "")),
        Case("empty_movement_id", _with("data.movement_id", "")),
        Case("empty_event", _with("data.event", "")),
        Case("empty_timestamp", _with("data.timestamp", "")),
        # --- valid JSON of another kind ---------------------------------------------------------------
        Case("another_event_type", _with("type", "ru.retail.warehouses.inventory")),
        Case("another_specversion", _with("specversion", "2.0")),
        Case("unknown_event_kind", _with("data.event", "transfer")),
        # --- timestamps -------------------------------------------------------------------------------
        Case("timestamp_not_a_date", _with("data.timestamp", "yesterday")),
        Case("timestamp_february_30", _with("data.timestamp", "2025-02-30T12:00:00Z")),
        Case(
            "timestamp_past_year_9999_in_utc",
            _with("data.timestamp", "9999-12-31T23:59:59-23:59"),
            why="valid ISO-8601, but converting it to UTC overflows Python's datetime",
        ),
        Case(
            "timestamp_before_year_1_in_utc",
            _with("data.timestamp", "0001-01-01T00:00:00+01:00"),
            why="valid ISO-8601, but converting it to UTC underflows Python's datetime",
        ),
        # --- size -------------------------------------------------------------------------------------
        Case(
            "string_2mib_over_limit",
            _with("data.movement_id", "a" * (2 * MIB)),
            webhook_status=413,
            why="over the webhook's 1 MiB limit: refused before parsing",
        ),
        Case(
            "string_900kib_in_product_id",
            _with("data.product_id", "b" * (900 * KIB)),
            why="under the limit, parsed, refused without echoing the 900 KiB back",
        ),
    ]
    for name in REQUIRED_FIELDS:
        cases.append(Case(f"null_{name.replace('.', '_')}", _with(name, None)))
    for name, value in WRONG_TYPES.items():
        cases.append(Case(f"wrong_type_{name.replace('.', '_')}", _with(name, value)))
    for name in ("id", "data", "data.quantity", "data.movement_id"):
        cases.append(Case(f"missing_{name.replace('.', '_')}", _without(name)))
    # Every text field x the values PostgreSQL cannot store or that must not be echoed: a NUL inside
    # (refused where the field is checked; harmless in free text, see accepted_cases), a lone
    # surrogate escape (not Unicode: refused anywhere), and over-long text.
    for name in TEXT_FIELDS:
        slug = name.replace(".", "_")
        cases.append(Case(f"lone_surrogate_in_{slug}", _raw_value(name, b'"ab\\ud800cd"')))
        cases.append(Case(f"lone_low_surrogate_in_{slug}", _raw_value(name, b'"\\udfff"')))
        if name in CHECKED_TEXT_FIELDS:
            nul_inside = b'"' + _sample(name, b"\\u0000") + b'"'
            cases.append(Case(f"nul_inside_{slug}", _raw_value(name, nul_inside)))
            cases.append(Case(f"over_long_{slug}", _with(name, "z" * (600 * KIB))))
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "corpus case names must be unique"
    assert set(KNOWN_BUGS) <= set(names), "KNOWN_BUGS names a case that does not exist"
    return cases


@lru_cache(maxsize=1)
def rejected_cases() -> tuple[Case, ...]:
    """Every payload that must be refused (built once per process: the bodies never apply)."""
    return tuple(_build_rejected())


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


def valid_arrival(quantity: int = 3) -> tuple[bytes, uuid.UUID, uuid.UUID]:
    """One ordinary valid arrival: (body, warehouse_id, product_id)."""
    w, p = uuid.uuid4(), uuid.uuid4()
    return dump(envelope(warehouse_id=w, product_id=p, quantity=quantity)), w, p


# --- beyond the body: requests the HTTP layer must refuse cleanly ---------------------------------
# Each a 4xx with a clean body, never a 500 (security review 2026-12, rows 3, 6, 7 and 10).

# Valid ISO-8601 times whose conversion to UTC leaves datetime's range (years 1 to 9999).
EDGE_OF_RANGE_TIMES = (
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:30:00+14:00",
    "9999-12-31T23:00:00-05:00",
    "9999-12-31T23:30:00-01:00",
)
# Digits to `str.isdigit` that are not ASCII: superscript two, Arabic-Indic one, fullwidth five.
UNICODE_DIGIT_LIMITS = ("²", "١", "５", "1²")
# Console pages with a `limit` (query string after `?`, `{w}` a warehouse id).
CONSOLE_LIMIT_PAGES = ("/ui/warehouses/{w}", "/ui/movements", "/ui/losses", "/ui/dead-letters")
# Console pages with a time parameter, by parameter name.
CONSOLE_TIME_PARAMETERS = (("/ui/warehouses/{w}", "as_of"), ("/ui/losses", "from"), ("/ui/losses", "to"))
# Other spellings of a static file that exists (`{f}`): each is a 404, never another cached copy.
STATIC_SPELLINGS = (
    "vendor/./{f}",
    "vendor//{f}",
    "vendor/././{f}",
    "./vendor/{f}",
    "vendor/{f}/",
    "vendor/x/../{f}",
)
# Webhook requests a page on another site could make a browser send: Content-Type -> status.
WEBHOOK_CONTENT_TYPES = {
    "text/plain": 415,
    "text/plain;charset=UTF-8": 415,
    "application/x-www-form-urlencoded": 415,
    "multipart/form-data; boundary=x": 415,
    "application/jsonp": 415,
    "APPLICATION/JSON; charset=utf-8": 200,
}
# Headers of a browser's cross-site request (refused 403 on every state-changing route).
CROSS_SITE_HEADERS = (
    {"origin": "https://evil.example"},
    {"origin": "null"},
    {"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},
)
