"""The fast decoder (msgspec) against the reference (pydantic): same verdict, same values, same errors.

`parse_event` tries `fast_envelope` first and asks pydantic only when it declines. That is exact if
the fast path never accepts what pydantic refuses and, when both accept, builds the same envelope.
Held here on generated envelopes (every field valid, odd or wrong, in any combination) and on the
bad-input corpus (tools/corpus/).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.domain.events import Envelope, Origin, fast_envelope, parse_event, pydantic_envelope
from tools import corpus
from tools.bench.workload import generate

_U = "c6290746-790e-43fa-8270-014dc90e02e0"

uuids = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: "{" + str(u) + "}"),
    st.uuids().map(lambda u: "urn:uuid:" + str(u)),
    st.uuids().map(lambda u: str(u)[:-1]),
    st.uuids().map(lambda u: " " + str(u)),
    st.just("00000000-0000-0000-0000-000000000000"),
    st.just(_U.replace("-", "", 1)),
    st.integers(),
    st.none(),
    st.text(max_size=40),
)
kinds = st.one_of(
    st.sampled_from(
        ["arrival", "departure", "ARRIVAL", "Departure", "DePaRtUrE", "arrivals", "", " arrival"]
    ),
    st.sampled_from(["\u212aarrival", "ARR\u0130VAL", "depart\u00fcre"]),
    st.text(max_size=12),
    st.integers(),
    st.none(),
    st.booleans(),
)
quantities = st.one_of(
    st.integers(min_value=-3, max_value=3),
    st.sampled_from(
        [999_999_999, 1_000_000_000, 1_000_000_001, 2**63 - 1, 2**63, 2**64, 2**70, -(2**63) - 1]
    ),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, 5.0, "5", "1", True, False, None, [1], {"q": 1}]),
)
timestamps = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "2025-02-18T12:12:56Z",
            "2025-02-18T12:12:56+03:00",
            "2025-02-18 12:12:56",
            "2025-02-18",
            "20250218T121256Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2025-02-30T00:00:00Z",
            "2025-02-18T12:12:56.123456789Z",
            "",
            "now",
        ]
    ),
    st.integers(),
    st.floats(allow_nan=False),
    st.none(),
    st.text(max_size=30),
)
free_text = st.one_of(
    st.text(max_size=20), st.none(), st.integers(), st.booleans(), st.floats(allow_nan=False)
)
ids = st.one_of(
    st.text(min_size=0, max_size=30),
    st.sampled_from(["", "a", "x" * 512, "x" * 513, "é" * 512, "é" * 513, "a\x00b", "\x00"]),
    st.integers(),
    st.none(),
)
literals_version = st.one_of(st.just("1.0"), st.sampled_from(["1", "1.00", " 1.0", 1.0, 1, None]))
literals_type = st.one_of(
    st.just("ru.retail.warehouses.movement"),
    st.sampled_from(["RU.retail.warehouses.movement", "ru.retail.warehouses.movement ", "", None, 3]),
)
times = st.one_of(st.integers(), st.text(max_size=10), st.none(), st.floats(allow_nan=False), st.booleans())

MISSING = object()

FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "data.movement_id": uuids,
    "data.warehouse_id": uuids,
    "data.product_id": uuids,
    "data.event": kinds,
    "data.quantity": quantities,
    "data.timestamp": timestamps,
    "id": ids,
    "source": free_text,
    "specversion": literals_version,
    "type": literals_type,
    "datacontenttype": free_text,
    "dataschema": free_text,
    "time": times,
    "subject": free_text,
    "destination": free_text,
    "extra": st.one_of(st.text(max_size=5), st.lists(st.integers(), max_size=3)),
    "data.extra": st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
}


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """A valid envelope with 0 to 3 fields changed to anything (odd-but-valid, wrong, or absent)."""
    doc: dict[str, Any] = {
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
            "movement_id": str(draw(st.uuids())),
            "warehouse_id": str(draw(st.uuids())),
            "product_id": str(draw(st.uuids())),
            "event": "arrival",
            "quantity": 7,
            "timestamp": "2025-02-18T12:12:56Z",
        },
    }
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=3, unique=True)):
        value = draw(st.one_of(FIELDS[name], st.just(MISSING)))
        target, key = (doc["data"], name[5:]) if name.startswith("data.") else (doc, name)
        if value is MISSING:
            target.pop(key, None)
        else:
            target[key] = value
    if draw(st.integers(0, 40)) == 29:  # not 0: hypothesis favours it
        doc["data"] = draw(st.one_of(st.none(), st.text(max_size=5), st.lists(st.integers(), max_size=2)))
    if draw(st.integers(0, 40)) == 29:  # not 0: hypothesis favours it
        return draw(st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=5), st.none()))
    return doc


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    raw = json.dumps(draw(documents()), ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    mutation = draw(st.integers(0, 20)) - 12  # mostly none (hypothesis favours the small values)
    if mutation == 0 and raw:  # a byte changed anywhere: broken JSON, or valid JSON of another shape
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
    elif mutation == 1:  # a duplicate key: which copy wins?
        raw = raw.replace(b'"quantity": ', b'"quantity": "x", "quantity": ', 1)
    elif mutation == 2:
        raw = raw.replace(b'"event": ', b'"event": 1, "event": ', 1)
    elif mutation == 3:
        raw = raw + draw(st.sampled_from([b" ", b"\n", b"x", b"{}", b"\x00"]))
    elif mutation == 4:
        raw = raw.replace(b'"extra": ', b'"extra": NaN, "x": ', 1)
    elif mutation == 5:  # bytes that are not UTF-8 (CESU surrogates, overlong, stray) in any string
        bad = draw(st.sampled_from([b"\xed\xa0\x80", b"\xc0\xaf", b"\xff", b"\xf4\x90\x80\x80", b"\xe9"]))
        raw = raw.replace(b'"WH-', b'"' + bad + b"WH-", 1).replace(b'"extra": "', b'"extra": "' + bad, 1)
    elif mutation == 6:  # nesting in an ignored field, around pydantic's limit
        depth = draw(st.sampled_from([1, 60, 63, 64, 65, 199, 200, 201, 400]))
        raw = raw[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    elif mutation == 7:
        raw = b"\xef\xbb\xbf" + raw  # a byte order mark
    return raw


def _fields(envelope: Envelope) -> dict[str, Any]:
    """Every field with its type (a UUID is not its string; an aware time is not a naive one)."""
    values = {name: getattr(envelope, name) for name in Envelope.model_fields if name != "data"}
    values.update({f"data.{name}": getattr(envelope.data, name) for name in type(envelope.data).model_fields})
    typed = {name: (type(value).__name__, value) for name, value in values.items()}
    stamp = envelope.data.timestamp
    assert isinstance(stamp, datetime)
    typed["tz"] = ("tz", stamp.utcoffset())
    return typed


def _same_verdict(raw: bytes) -> None:
    fast = fast_envelope(raw)
    reference = pydantic_envelope(raw)
    if fast is not None:
        assert isinstance(reference, Envelope), f"the fast path accepted what pydantic refuses: {reference}"
        assert _fields(fast) == _fields(reference)
        assert fast == reference
        assert fast.model_dump() == reference.model_dump()
        assert fast.model_dump_json() == reference.model_dump_json()
    parsed = parse_event(raw, Origin.webhook())
    if isinstance(reference, Envelope):
        assert parsed.envelope is not None and _fields(parsed.envelope) == _fields(reference)
        assert parsed.errors == []
    elif raw.strip():
        assert parsed.envelope is None
        assert parsed.errors == reference  # pydantic's own words, field by field


@settings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(raw=payloads())
def test_fast_decoder_agrees_with_pydantic_on_generated_envelopes(raw: bytes) -> None:
    _same_verdict(raw)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200))
def test_fast_decoder_agrees_with_pydantic_on_arbitrary_bytes(raw: bytes) -> None:
    _same_verdict(raw)


@pytest.mark.parametrize("case", corpus.rejected_cases(), ids=lambda c: c.name)
def test_fast_decoder_refuses_every_corpus_payload_pydantic_refuses(case: corpus.Case) -> None:
    if case.too_large:
        pytest.skip("refused by size before parsing")
    assert fast_envelope(case.body) is None or isinstance(pydantic_envelope(case.body), Envelope)
    _same_verdict(case.body)


def test_fast_decoder_agrees_on_the_odd_but_valid_corpus() -> None:
    for case in corpus.accepted_cases():
        _same_verdict(case.body)
        if case.same_as is not None:
            _same_verdict(case.same_as)


def test_the_fast_path_takes_ordinary_envelopes() -> None:
    """Not a speed test: the ordinary stream must not fall back to pydantic (or nothing is gained)."""
    work = generate(200, seed=7)
    assert all(fast_envelope(value) is not None for value in work.values)
    for value in work.values[:50]:
        _same_verdict(value)
