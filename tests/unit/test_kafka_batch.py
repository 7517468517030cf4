"""The Kafka path without services: record decoding, batch shape, handler answer, poller loop."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition

from common.adapters.config import get_settings
from common.domain.events import IncomingEvent, Origin
from common.domain.outcomes import Outcome, Reason, Status
from common.intake import kafka_records as kafka_batch
from common.ledger import use_cases as service
from functions.local_app.poller import Poller, build_event

pytestmark = [
    pytest.mark.unit,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

VALID: dict[str, Any] = {
    "id": "b3b53031-e83a-4654-87f5-b6b6fb09fd99",
    "source": "WH-3322",
    "specversion": "1.0",
    "type": "ru.retail.warehouses.movement",
    "data": {
        "movement_id": "c6290746-790e-43fa-8270-014dc90e02e0",
        "warehouse_id": "25718666-6af6-4281-b5a6-3016e36fa557",
        "timestamp": "2025-02-18T12:12:56Z",
        "event": "departure",
        "product_id": "4705204f-498f-4f96-b4ba-df17fb56bf55",
        "quantity": 100,
    },
}


def record(
    value: bytes | None, *, topic: str = "t", partition: int = 0, offset: int = 0, ts: int = 0
) -> dict:
    r: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset, "timestamp": ts}
    if value is not None:
        r["value"] = base64.b64encode(value).decode()
    return r


def consumer_record(
    tp: TopicPartition,
    offset: int,
    value: bytes | None,
    key: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> ConsumerRecord:
    return ConsumerRecord(
        tp.topic,
        tp.partition,
        0,
        offset,
        1_700_000_000_000 + offset,
        0,
        key,
        value,
        headers or [],
        None,
        len(key or b""),
        len(value or b""),
        0,
    )


# --- decoding ------------------------------------------------------------------------------------


def test_a_valid_record_becomes_a_valid_event_with_its_kafka_origin() -> None:
    item = kafka_batch.record_to_incoming(
        record(json.dumps(VALID).encode(), topic="m", partition=2, offset=41)
    )
    assert item.is_valid
    assert item.origin == Origin.kafka("m", 2, 41)
    assert item.envelope is not None and item.envelope.data.quantity == 100


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "tombstone"),
        ("bm90IGpzb24=", "Invalid JSON"),  # "not json"
        ("%%% not base64 %%%", "not base64"),
    ],
)
def test_records_that_can_never_apply_come_back_invalid(value: str | None, message: str) -> None:
    raw: dict[str, Any] = {"topic": "t", "partition": 0, "offset": 7}
    if value is not None:
        raw["value"] = value
    item = kafka_batch.record_to_incoming(raw)
    assert not item.is_valid
    assert message in item.error_detail


def test_a_null_value_is_a_tombstone_too() -> None:
    item = kafka_batch.record_to_incoming({"topic": "t", "partition": 0, "offset": 1, "value": None})
    assert not item.is_valid and "tombstone" in item.error_detail


def test_wrong_fields_name_the_field() -> None:
    bad = {**VALID, "data": {**VALID["data"], "quantity": -5}}
    item = kafka_batch.record_to_incoming(record(json.dumps(bad).encode()))
    assert "data.quantity" in item.error_detail


def test_partitions_keep_their_offset_order_and_merge_by_timestamp() -> None:
    records = {
        "t-0": [record(b"a", partition=0, offset=5, ts=10), record(b"b", partition=0, offset=6, ts=30)],
        "t-1": [record(b"c", partition=1, offset=1, ts=20), record(b"d", partition=1, offset=2, ts=5)],
    }
    order = [(r["partition"], r["offset"]) for r in kafka_batch.ordered_records(records)]
    assert order == [(0, 5), (1, 1), (1, 2), (0, 6)]  # (1, 2) never overtakes (1, 1)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.binary(max_size=300)), min_size=1, max_size=30),
    partitions=st.integers(min_value=1, max_value=4),
)
def test_the_poller_event_shape_carries_every_byte_and_offset(
    values: list[bytes | None], partitions: int
) -> None:
    polled: dict[TopicPartition, list[ConsumerRecord]] = {}
    for i, value in enumerate(values):
        tp = TopicPartition("topic-with-dashes", i % partitions)
        polled.setdefault(tp, []).append(
            consumer_record(tp, 100 + i, value, key=b"k", headers=[("h", b"\xff")])
        )
    event = build_event(polled, "127.0.0.1:9092")
    assert set(event["records"]) == {f"topic-with-dashes-{tp.partition}" for tp in polled}
    items = [kafka_batch.record_to_incoming(r) for r in kafka_batch.ordered_records(event["records"])]
    got = {(i.origin.partition, i.origin.offset): i.raw for i in items}
    want = {(tp.partition, r.offset): r.value or b"" for tp, rs in polled.items() for r in rs}
    assert got == want


# --- the batch and the handler -------------------------------------------------------------------


def _fake_ingest(items: list[IncomingEvent]) -> list[Outcome]:
    return [
        Outcome(Status.APPLIED, event=i.envelope.data)
        if i.envelope
        else Outcome(Status.REJECTED, reason=Reason.INVALID, detail=i.error_detail)
        for i in items
    ]


def _event(*values: bytes | None) -> dict[str, Any]:
    return {
        "eventSource": "SelfManagedKafka",
        "bootstrapServers": "b:9092",
        "records": {"t-0": [record(v, offset=i) for i, v in enumerate(values)]},
    }


def test_handler_answers_no_item_failures_when_records_are_parked(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.ingest_kafka.handler import handler

    monkeypatch.setattr(service, "ingest", _fake_ingest)
    answer = handler(_event(json.dumps(VALID).encode(), b"garbage", None), None)
    assert answer == {"batchItemFailures": []}


def test_handler_raises_on_a_database_fault_so_the_batch_is_redelivered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from functions.ingest_kafka.handler import handler

    def down(items: list[IncomingEvent]) -> list[Outcome]:
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(service, "ingest", down)
    with pytest.raises(psycopg.OperationalError):
        handler(_event(json.dumps(VALID).encode()), None)


def test_summary_counts_outcomes_and_offsets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "ingest", _fake_ingest)
    result = kafka_batch.ingest_records(
        [record(json.dumps(VALID).encode(), offset=3), record(b"{", offset=4), record(None, offset=9)]
    )
    summary = result.summary()
    assert summary["records"] == 3
    assert summary["outcomes"] == {"applied": 1, "rejected_invalid": 2}
    assert summary["offsets"] == {"t-0": "3-9"}
    assert [p["origin"] for p in summary["parked"]] == ["t/0@4", "t/0@9"]


# --- the poller loop, against a scripted consumer ---------------------------------------------------


class _ScriptedConsumer:
    """Serves the records from its position, like a consumer on one partition; logs seeks/commits."""

    def __init__(self, tp: TopicPartition, values: list[bytes], poll_errors: int = 0) -> None:
        self.tp = tp
        self.records = [consumer_record(tp, i, v) for i, v in enumerate(values)]
        self._pos = 0
        self.poll_errors = poll_errors
        self.seeks: list[int] = []
        self.commits: list[int] = []
        self.closed = False

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict:
        if self.poll_errors:
            self.poll_errors -= 1
            raise ConnectionError("broker unreachable")
        batch = self.records[self._pos : self._pos + (max_records or 2)]
        self._pos += len(batch)
        return {self.tp: batch} if batch else {}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append(offset)
        self._pos = offset

    def commit(self, offsets: dict, timeout_ms: int | None = None) -> None:
        self.commits.append(offsets[self.tp].offset)

    def assignment(self) -> set[TopicPartition]:
        return {self.tp}

    def end_offsets(self, partitions: list, timeout_ms: int | None = None) -> dict:
        return {self.tp: len(self.records)}

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int:
        return self._pos

    def close(self, autocommit: bool = True, timeout_ms: int | None = None) -> None:
        self.closed = True


def _poller(consumer: _ScriptedConsumer, handler: Any) -> Poller:
    settings = get_settings().model_copy(update=dict(kafka_batch_size=2, kafka_poll_timeout_ms=10))
    poller = Poller(settings, handler=handler, max_backoff=0.01, lag_interval=0.0)

    def connect() -> None:
        poller._consumer = consumer

    poller._connect = connect  # type: ignore[method-assign]
    return poller


def _run_until(poller: Poller, done: threading.Event) -> None:
    poller.start()
    assert done.wait(10)
    assert poller.stop(10)


def test_a_failed_batch_is_retried_from_its_first_offset_and_committed_only_after_success() -> None:
    tp = TopicPartition("t", 0)
    consumer = _ScriptedConsumer(tp, [b"a", b"b", b"c", b"d"])
    seen: list[list[int]] = []
    failures = {"left": 2}
    done = threading.Event()

    def handler(event: dict, context: Any) -> dict:
        offsets = [r["offset"] for r in event["records"]["t-0"]]
        seen.append(offsets)
        if offsets == [2, 3] and failures["left"]:
            failures["left"] -= 1
            raise psycopg.OperationalError("database down")
        if offsets == [2, 3]:
            done.set()
        return {"batchItemFailures": []}

    poller = _poller(consumer, handler)
    _run_until(poller, done)
    assert seen == [[0, 1], [2, 3], [2, 3], [2, 3]]
    assert consumer.seeks == [2, 2]  # back to the first offset of the failed batch, twice
    assert consumer.commits == [2, 4]  # the exact next offsets, only after success
    assert consumer.closed and poller.state == "stopped"
    assert poller.lag == 0


def test_the_loop_survives_poll_errors() -> None:
    tp = TopicPartition("t", 0)
    consumer = _ScriptedConsumer(tp, [b"a", b"b"], poll_errors=3)
    done = threading.Event()

    def handler(event: dict, context: Any) -> dict:
        done.set()
        return {"batchItemFailures": []}

    poller = _poller(consumer, handler)
    _run_until(poller, done)
    assert consumer.commits == [2]


def test_stop_while_the_handler_keeps_failing_commits_nothing() -> None:
    tp = TopicPartition("t", 0)
    consumer = _ScriptedConsumer(tp, [b"a", b"b"])
    calls = threading.Event()

    def handler(event: dict, context: Any) -> dict:
        calls.set()
        raise psycopg.OperationalError("database down")

    poller = _poller(consumer, handler)
    _run_until(poller, calls)
    assert consumer.commits == []
    assert consumer.seeks and set(consumer.seeks) == {0}
