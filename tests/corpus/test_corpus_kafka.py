"""The corpus through the Kafka path: the Lambda handler, then a real topic and the local poller.

The promise under test is "never a stuck partition": a batch holding every bad payload, followed
by one good record, is decided in full (each bad record parked in rejected_events at its offset,
the good one applied) without raising, and the poller's committed offset moves past the end.
"""

from __future__ import annotations

import base64
import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from common.adapters import cache
from common.adapters.config import get_settings
from tools.corpus import accepted_cases, rejected_cases, valid_arrival

# A known parse_event bug fails a whole batch: such cases are covered (xfail) by test_corpus_parse only.
CLEAN_CASES = tuple(c for c in rejected_cases() if not c.known_bug)
MAX_RECORD_BYTES = 4 * 1024 * 1024  # the topic, producer and poller all allow the 2 MiB case


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def msk_record(
    topic: str, partition: int, offset: int, value: bytes | None, raw_value: str | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": 1_739_865_600_000 + offset,
        "timestampType": "CREATE_TIME",
        "headers": [{"content-type": list(b"application/json")}],
    }
    if value is not None or raw_value is not None:
        record["value"] = raw_value if raw_value is not None else b64(value or b"")
    return record


def msk_event(topic: str, values: list[bytes | None], partition: int = 0) -> dict[str, Any]:
    return {
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:eu-central-1:000000000000:cluster/corpus/0",
        "bootstrapServers": "127.0.0.1:9092",
        "records": {
            f"{topic}-{partition}": [msk_record(topic, partition, i, v) for i, v in enumerate(values)]
        },
    }


@pytest.fixture
def ledger(clean_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[psycopg.Connection]:
    """Empty ledger tables, the handler pointed at them, no metrics noise on stdout."""
    from common.adapters import db

    monkeypatch.setenv("DATABASE_URL", clean_db)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    get_settings.cache_clear()
    db.close_pool()
    cache.reset()
    with psycopg.connect(clean_db, autocommit=True, connect_timeout=5) as conn:
        yield conn
    db.close_pool()
    cache.reset()
    get_settings.cache_clear()


def parked(conn: psycopg.Connection, topic: str, partition: int = 0) -> dict[int, tuple[str, bytes]]:
    """The dead letters of one partition of `topic`: offset -> (reason, raw bytes)."""
    rows = conn.execute(
        "SELECT kafka_offset, reason, raw_payload FROM rejected_events"
        " WHERE kafka_topic = %s AND kafka_partition = %s",
        (topic, partition),
    ).fetchall()
    return {int(offset): (reason, bytes(raw)) for offset, reason, raw in rows}


def parked_anywhere(conn: psycopg.Connection, topic: str) -> list[str]:
    """The reasons of every dead letter of `topic`, all partitions."""
    rows = conn.execute("SELECT reason FROM rejected_events WHERE kafka_topic = %s", (topic,))
    return [reason for (reason,) in rows]


def stock_of(conn: psycopg.Connection, warehouse: uuid.UUID, product: uuid.UUID) -> int:
    row = conn.execute(
        "SELECT quantity FROM stock WHERE warehouse_id = %s AND product_id = %s", (warehouse, product)
    ).fetchone()
    return int(row[0]) if row else 0


# --- (b) the Lambda handler with an MSK-shaped event ---------------------------------------------


def test_handler_parks_every_bad_record_and_applies_the_good_one(ledger: psycopg.Connection) -> None:
    from functions.ingest_kafka.handler import handler

    topic = f"corpus-{uuid.uuid4().hex[:10]}"
    good, warehouse, product = valid_arrival(quantity=3)
    values: list[bytes | None] = [*(c.body for c in CLEAN_CASES), None, good]  # None: a tombstone
    event = msk_event(topic, values)
    event["records"][f"{topic}-0"].insert(  # a value that is not even base64
        len(CLEAN_CASES), msk_record(topic, 0, len(values), None, raw_value="%%% not base64 %%%")
    )

    answer = handler(event, None)

    assert answer == {"batchItemFailures": []}
    rows = parked(ledger, topic)
    bad_offsets = [*range(len(CLEAN_CASES) + 1), len(values)]
    assert sorted(rows) == sorted(bad_offsets), "every bad record parked, at its own offset"
    assert {reason for reason, _ in rows.values()} == {"invalid"}
    for offset, case in enumerate(CLEAN_CASES):
        assert rows[offset][1] == case.body, f"{case.name}: the raw bytes are kept for inspection"
    assert stock_of(ledger, warehouse, product) == 3

    # The event source mapping may deliver the same batch again: nothing changes twice.
    assert handler(event, None) == {"batchItemFailures": []}
    assert len(parked(ledger, topic)) == len(bad_offsets)
    assert stock_of(ledger, warehouse, product) == 3


def test_handler_applies_odd_but_valid_records_once(ledger: psycopg.Connection) -> None:
    from functions.ingest_kafka.handler import handler

    topic = f"corpus-{uuid.uuid4().hex[:10]}"
    cases = accepted_cases()
    values: list[bytes | None] = [*(c.body for c in cases), *(c.same_as for c in cases if c.same_as)]

    assert handler(msk_event(topic, values), None) == {"batchItemFailures": []}

    assert parked(ledger, topic) == {}
    for case in cases:
        assert stock_of(ledger, case.warehouse_id, case.product_id) == case.quantity, case.name
    assert ledger.execute("SELECT to_regclass('stock') IS NOT NULL").fetchone() == (True,)


# --- (c) a real topic consumed by the local poller -----------------------------------------------


@pytest.fixture
def corpus_topic(kafka_bootstrap: str) -> Iterator[str]:
    """A 2-partition topic accepting records up to 4 MiB (the corpus has a 2 MiB one)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    name = f"corpus-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="corpus-admin")
    try:
        admin.create_topics(
            [NewTopic(name, 2, 1, topic_configs={"max.message.bytes": str(MAX_RECORD_BYTES)})]
        )
        yield name
    finally:
        with contextlib.suppress(Exception):  # best effort: a leftover test topic harms nobody
            admin.delete_topics([name])
        admin.close()


def produce(bootstrap: str, topic: str, values: list[bytes | None]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=MAX_RECORD_BYTES, linger_ms=20
    )
    try:
        for i, value in enumerate(values):
            # Spread over both partitions; odd keys and headers are part of the junk.
            key = None if i % 3 == 0 and value is not None else f"\x00key-{i}".encode()
            producer.send(topic, value=value, key=key, partition=i % 2, headers=[("h", b"\xff\xfe")])
        producer.flush(60)
    finally:
        producer.close(10)


def committed_vs_end(bootstrap: str, topic: str, group: str) -> tuple[dict[int, int], dict[int, int]]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in (0, 1)]
        ends = consumer.end_offsets(parts)
        committed = {tp.partition: consumer.committed(tp) or 0 for tp in parts}
        return committed, {tp.partition: ends[tp] for tp in parts}
    finally:
        consumer.close(autocommit=False)


def test_poller_moves_past_every_bad_record_on_a_real_topic(
    ledger: psycopg.Connection, kafka_bootstrap: str, corpus_topic: str
) -> None:
    from functions.local_app.poller import Poller

    good, warehouse, product = valid_arrival(quantity=4)
    bad: list[bytes | None] = [c.body for c in CLEAN_CASES] + [None]  # None: a tombstone
    values = [*bad, good]
    produce(kafka_bootstrap, corpus_topic, values)
    group = f"corpus-{uuid.uuid4().hex[:8]}"
    settings = get_settings().model_copy(
        update=dict(kafka_topic=corpus_topic, kafka_group_id=group, kafka_poll_timeout_ms=200)
    )
    poller = Poller(settings, lag_interval=1.0)
    poller.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if poller.records >= len(values) and len(parked_anywhere(ledger, corpus_topic)) >= len(bad):
                break
            time.sleep(0.5)
    finally:
        assert poller.stop(30), "the poller did not stop within 30 s"

    assert poller.records == len(values), f"state={poller.state} last_error={poller.last_error}"
    reasons = parked_anywhere(ledger, corpus_topic)
    assert len(reasons) == len(bad) and set(reasons) == {"invalid"}
    assert stock_of(ledger, warehouse, product) == 4
    committed, ends = committed_vs_end(kafka_bootstrap, corpus_topic, group)
    assert committed == ends, "the committed offset of each partition reached its end"
    assert sum(ends.values()) == len(values)
