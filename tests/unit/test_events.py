"""Validation of the movement envelope (common/domain/events.py), one rule at a time.

Every case starts from the brief's valid example and breaks exactly one thing, so removing a rule
from the model makes its cases fail.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.domain.events import IncomingEvent, Origin, parse_event
from common.domain.movement import MAX_QUANTITY

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit

MOVEMENT_ID = "c6290746-790e-43fa-8270-014dc90e02e0"
WAREHOUSE_ID = "25718666-6af6-4281-b5a6-3016e36fa557"
PRODUCT_ID = "4705204f-498f-4f96-b4ba-df17fb56bf55"

EXAMPLE: dict[str, Any] = {
    "id": "b3b53031-e83a-4654-87f5-b6b6fb09fd99",
    "source": "WH-3322",
    "specversion": "1.0",
    "type": "ru.retail.warehouses.movement",
    "datacontenttype": "application/json",
    "dataschema": "ru.retail.warehouses.movement.v1.0",
    "time": 1737439421623,
    "subject": "WH-3322:DEPARTURE",
    "destination": "ru.retail.warehouses",
    "data": {
        "movement_id": MOVEMENT_ID,
        "warehouse_id": WAREHOUSE_ID,
        "timestamp": "2025-02-18T12:12:56Z",
        "event": "departure",
        "product_id": PRODUCT_ID,
        "quantity": 100,
    },
}

REQUIRED_ENVELOPE = ["id", "source", "specversion", "type", "data"]
REQUIRED_DATA = ["movement_id", "warehouse_id", "product_id", "event", "quantity", "timestamp"]
OPTIONAL_ENVELOPE = ["datacontenttype", "dataschema", "time", "subject", "destination"]
_MISSING = object()


def payload(envelope: dict[str, Any] | None = None, **data: Any) -> dict[str, Any]:
    """The example with envelope attributes and data fields replaced (`_MISSING` removes one)."""
    body = copy.deepcopy(EXAMPLE)
    for name, value in (envelope or {}).items():
        if value is _MISSING:
            del body[name]
        else:
            body[name] = value
    for name, value in data.items():
        if value is _MISSING:
            del body["data"][name]
        else:
            body["data"][name] = value
    return body


def parse(body: dict[str, Any] | bytes | str) -> IncomingEvent:
    raw = body if isinstance(body, bytes | str) else json.dumps(body).encode()
    return parse_event(raw, Origin.webhook())


def fields(item: IncomingEvent) -> set[str]:
    return {e["field"] for e in item.errors}


def assert_invalid_on(item: IncomingEvent, field_name: str) -> None:
    assert not item.is_valid
    assert item.envelope is None
    assert field_name in fields(item), item.errors
    assert field_name in item.error_detail


# --- the example itself ------------------------------------------------------------------------


def test_brief_example_is_valid_and_parsed() -> None:
    item = parse(EXAMPLE)

    assert item.is_valid, item.errors
    assert item.errors == []
    assert item.envelope is not None
    data = item.envelope.data
    assert data.movement_id == UUID(MOVEMENT_ID)
    assert data.warehouse_id == UUID(WAREHOUSE_ID)
    assert data.product_id == UUID(PRODUCT_ID)
    assert data.event == "departure"
    assert data.quantity == 100
    assert data.timestamp == datetime(2025, 2, 18, 12, 12, 56, tzinfo=UTC)
    assert item.envelope.id == EXAMPLE["id"]


def test_raw_bytes_and_origin_are_kept() -> None:
    raw = json.dumps(EXAMPLE).encode()
    origin = Origin.kafka("movements", 3, 42)

    item = parse_event(raw, origin)

    assert item.raw == raw
    assert item.origin == origin
    assert origin.describe() == "movements/3@42"


def test_str_payload_is_accepted_as_utf8() -> None:
    text = json.dumps(payload({"source": "Склад-3322"}), ensure_ascii=False)

    item = parse_event(text, Origin.webhook())

    assert item.is_valid
    assert item.raw == text.encode("utf-8")
    assert item.envelope is not None
    assert item.envelope.source == "Склад-3322"


# --- type and specversion ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["ru.retail.warehouses.movement.v2", "RU.RETAIL.WAREHOUSES.MOVEMENT", "", "movement", None, 1],
)
def test_type_must_be_the_movement_type(value: Any) -> None:
    assert_invalid_on(parse(payload({"type": value})), "type")


@pytest.mark.parametrize("value", ["1.1", "0.3", "2.0", "", 1.0, 1, None])
def test_specversion_must_be_1_0(value: Any) -> None:
    assert_invalid_on(parse(payload({"specversion": value})), "specversion")


# --- identifiers -------------------------------------------------------------------------------


@pytest.mark.parametrize("field_name", ["movement_id", "warehouse_id", "product_id"])
@pytest.mark.parametrize(
    "value",
    [
        "not-a-uuid",
        "WH-3322",
        "",
        "c6290746-790e-43fa-8270-014dc90e02e",  # one hex digit short
        "g6290746-790e-43fa-8270-014dc90e02e0",  # not hex
        12345,
        None,
        [MOVEMENT_ID],
    ],
)
def test_ids_in_data_must_be_uuids(field_name: str, value: Any) -> None:
    assert_invalid_on(parse(payload(**{field_name: value})), f"data.{field_name}")


@pytest.mark.parametrize("field_name", ["movement_id", "warehouse_id", "product_id"])
def test_uppercase_uuid_is_the_same_uuid(field_name: str) -> None:
    value = EXAMPLE["data"][field_name]

    item = parse(payload(**{field_name: value.upper()}))

    assert item.envelope is not None
    assert getattr(item.envelope.data, field_name) == UUID(value)


@pytest.mark.parametrize("value", ["", 42, None, ["x"]])
def test_envelope_id_must_be_a_non_empty_string(value: Any) -> None:
    assert_invalid_on(parse(payload({"id": value})), "id")


@pytest.mark.parametrize("value", ["a\u0000b", "\u0000"])
def test_envelope_id_must_not_contain_nul(value: str) -> None:
    # PostgreSQL text cannot hold NUL: accepted here, it would fail the whole batch's COPY later.
    assert_invalid_on(parse(payload({"id": value})), "id")


def test_envelope_id_is_at_most_512_characters() -> None:
    assert parse(payload({"id": "x" * 512})).is_valid
    assert_invalid_on(parse(payload({"id": "x" * 513})), "id")


def test_envelope_id_need_not_be_a_uuid() -> None:
    item = parse(payload({"id": "evt-1"}))

    assert item.envelope is not None
    assert item.envelope.id == "evt-1"


# --- event -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("arrival", "arrival"),
        ("departure", "departure"),
        ("ARRIVAL", "arrival"),
        ("Departure", "departure"),
        ("dEpArTuRe", "departure"),
    ],
)
def test_event_is_case_insensitive_and_stored_lower_case(value: str, stored: str) -> None:
    item = parse(payload(event=value))

    assert item.envelope is not None, item.errors
    assert item.envelope.data.event == stored


@pytest.mark.parametrize("value", ["transfer", "arrivals", " arrival", "", "depart", 1, None, True])
def test_event_must_be_arrival_or_departure(value: Any) -> None:
    assert_invalid_on(parse(payload(event=value)), "data.event")


# --- quantity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 2, 100, MAX_QUANTITY - 1, MAX_QUANTITY])
def test_quantity_in_range_is_valid(value: int) -> None:
    item = parse(payload(quantity=value))

    assert item.envelope is not None, item.errors
    assert item.envelope.data.quantity == value
    assert type(item.envelope.data.quantity) is int


def test_quantity_bounds_are_one_and_a_billion() -> None:
    assert MAX_QUANTITY == 1_000_000_000


@pytest.mark.parametrize(
    "raw_quantity",
    [
        '"5"',  # a string, even of digits
        "1.5",
        "5.0",  # a float equal to an integer
        "5e0",
        "1e3",
        "true",  # booleans are not integers here
        "false",
        "0",
        "-0",
        "-1",
        "-100",
        "1000000001",  # 10**9 + 1
        "100000000000000000000000000000",
        "null",
        "[5]",
        '{"value": 5}',
    ],
)
def test_quantity_must_be_a_json_integer_from_1_to_a_billion(raw_quantity: str) -> None:
    raw = json.dumps(payload(quantity="__Q__")).replace('"__Q__"', raw_quantity).encode()

    assert_invalid_on(parse(raw), "data.quantity")


# --- timestamp ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-02-18T12:12:56Z", datetime(2025, 2, 18, 12, 12, 56, tzinfo=UTC)),
        ("2025-02-18T12:12:56+00:00", datetime(2025, 2, 18, 12, 12, 56, tzinfo=UTC)),
        ("2025-02-18T12:12:56", datetime(2025, 2, 18, 12, 12, 56, tzinfo=UTC)),  # no offset: UTC
        ("2025-02-18T12:12:56.250", datetime(2025, 2, 18, 12, 12, 56, 250000, tzinfo=UTC)),
        ("2025-02-18T15:12:56+03:00", datetime(2025, 2, 18, 12, 12, 56, tzinfo=UTC)),
        ("2025-02-18T02:12:56-10:00", datetime(2025, 2, 18, 12, 12, 56, tzinfo=UTC)),
        ("2025-02-19T01:12:56+13:00", datetime(2025, 2, 18, 12, 12, 56, tzinfo=UTC)),  # day changes
    ],
)
def test_timestamp_is_iso_8601_normalised_to_utc(value: str, expected: datetime) -> None:
    item = parse(payload(timestamp=value))

    assert item.envelope is not None, item.errors
    parsed = item.envelope.data.timestamp
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() == timedelta(0)
    assert parsed == expected
    assert (parsed.hour, parsed.day) == (expected.hour, expected.day)  # the wall clock is UTC too


@pytest.mark.parametrize("host_zone", ["Asia/Yekaterinburg", "America/New_York"])
def test_timestamp_without_offset_is_utc_whatever_the_host_time_zone(
    host_zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", host_zone)
    time.tzset()
    try:
        item = parse(payload(timestamp="2025-02-18T12:12:56"))
    finally:
        monkeypatch.undo()
        time.tzset()

    assert item.envelope is not None, item.errors
    assert item.envelope.data.timestamp == datetime(2025, 2, 18, 12, 12, 56, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        1739880776,  # epoch seconds
        1739880776000,  # epoch milliseconds, like the envelope's `time`
        1739880776.5,
        "1739880776",
        "",
        "yesterday",
        "18.02.2025 12:12:56",
        "2025-02-30T12:00:00Z",
        "2025-02-18T25:00:00Z",
        "2025-02-18T12:12:56+24:00",
        None,
        True,
    ],
)
def test_timestamp_must_be_iso_8601_text(value: Any) -> None:
    assert_invalid_on(parse(payload(timestamp=value)), "data.timestamp")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    moment=st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    offset_minutes=st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)
def test_any_offset_denotes_the_same_utc_instant(moment: datetime, offset_minutes: int) -> None:
    local = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))

    item = parse(payload(timestamp=local.isoformat()))

    assert item.envelope is not None, item.errors
    assert item.envelope.data.timestamp == local
    assert item.envelope.data.timestamp.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+03:00",  # in year 0 once in UTC
        "9999-12-31T23:00:00-03:00",  # in year 10000 once in UTC
    ],
)
def test_timestamp_out_of_range_once_in_utc_is_invalid_not_a_crash(value: str) -> None:
    item = parse(payload(timestamp=value))

    assert_invalid_on(item, "data.timestamp")


# --- unknown and missing fields ----------------------------------------------------------------


def test_unknown_fields_are_ignored() -> None:
    body = payload({"extension": {"trace": "abc"}, "priority": 7}, warehouse_name="Main", note=None)

    item = parse(body)

    assert item.envelope is not None, item.errors
    assert item.envelope.data.quantity == 100
    assert not hasattr(item.envelope, "priority")
    assert not hasattr(item.envelope.data, "warehouse_name")


@pytest.mark.parametrize("name", REQUIRED_ENVELOPE)
def test_each_missing_envelope_attribute_is_invalid(name: str) -> None:
    assert_invalid_on(parse(payload({name: _MISSING})), name)


@pytest.mark.parametrize("name", REQUIRED_DATA)
def test_each_missing_data_field_is_invalid(name: str) -> None:
    assert_invalid_on(parse(payload(**{name: _MISSING})), f"data.{name}")  # type: ignore[arg-type]  # the sentinel stands for an absent field


def test_optional_envelope_attributes_may_be_missing() -> None:
    item = parse(payload(dict.fromkeys(OPTIONAL_ENVELOPE, _MISSING)))

    assert item.is_valid, item.errors


def test_every_broken_field_is_reported_by_name() -> None:
    item = parse(payload({"specversion": "2.0"}, quantity="5", event="transfer", product_id="x"))

    assert not item.is_valid
    assert fields(item) == {"specversion", "data.quantity", "data.event", "data.product_id"}
    for error in item.errors:
        assert set(error) == {"field", "message", "type"}
        assert error["message"]
    assert item.error_detail.count(";") == 3


def test_error_on_quantity_names_data_quantity() -> None:
    item = parse(payload(quantity="5"))

    assert [e["field"] for e in item.errors] == ["data.quantity"]
    assert item.error_detail.startswith("data.quantity: ")


# --- payloads that are not an envelope at all --------------------------------------------------

VALID_JSON = json.dumps(EXAMPLE).encode()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"   \n\t ", id="whitespace"),
        pytest.param(b"not json at all", id="text"),
        pytest.param(b"\x00\x01\x02\xff", id="binary"),
        pytest.param(b"\xff\xfe{\x00}\x00", id="utf16-bom"),
        pytest.param(VALID_JSON.replace(b'"WH-3322"', b'"WH-\xff\xfe"'), id="invalid-utf8-in-string"),
        pytest.param(VALID_JSON.replace(b'"WH-3322"', b'"WH-\xed\xa0\x80"'), id="utf8-surrogate"),
        pytest.param(VALID_JSON[:-1], id="truncated"),
        pytest.param(b"[" * 100_000, id="deeply-nested-arrays"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deeply-nested-closed-arrays"),
        pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, id="deeply-nested-objects"),
        pytest.param(b"null", id="null"),
        pytest.param(b"[]", id="array"),
        pytest.param(b"[" + VALID_JSON + b"]", id="array-of-envelope"),
        pytest.param(b'"text"', id="string"),
        pytest.param(b"42", id="number"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param("\ud800{}", id="str-with-lone-surrogate"),
    ],
)
def test_garbage_never_raises_and_is_invalid(raw: bytes | str) -> None:
    item = parse_event(raw, Origin.kafka("movements", 0, 7))

    assert not item.is_valid
    assert item.envelope is None
    assert item.errors
    assert item.error_detail
    assert isinstance(item.raw, bytes)
    if isinstance(raw, bytes):
        assert item.raw == raw


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    item = parse_event(raw, Origin.webhook())

    assert item.raw == raw
    assert item.is_valid == (item.envelope is not None)
    assert item.is_valid or item.errors
