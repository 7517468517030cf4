"""Kafka ingestion end to end on the real broker and PostgreSQL (`kafka_dev_test`).

Every test uses its own topic, consumer group and UUIDs, so it asserts on its own rows only and
can run against a database other runs have used.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition

from common.adapters.config import PROJECT_ROOT, get_settings
from common.dead_letters import outbox
from common.domain.events import Origin, parse_event
from common.ledger import use_cases as service
from common.reads import movements, stock
from functions.ingest_kafka.handler import handler
from functions.local_app.poller import Poller
from tools.kafka_helpers import (
    BOOTSTRAP,
    applied_count,
    committed_and_end,
    create_topic,
    delete_topic,
    delivered_count,
    envelope,
    fast_producer,
    group_description,
    movement_stream,
    produce,
    rejected_for,
    stock_of,
    unique,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    # Metrics are switched off here; Powertools still warns that the set it flushes is empty.
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

SAMPLES = PROJECT_ROOT / "infra" / "events"
SAMPLE_MOVEMENT = uuid.UUID("c6290746-790e-43fa-8270-014dc90e02e0")
T0 = datetime(2025, 2, 18, 8, 0, tzinfo=UTC)


@contextmanager
def running_poller(topic: str, group: str) -> Iterator[Poller]:
    settings = get_settings().model_copy(update=dict(kafka_topic=topic, kafka_group_id=group))
    poller = Poller(settings, lag_interval=0.5)
    poller.start()
    try:
        yield poller
    finally:
        assert poller.stop(30), "the poller did not stop"
        assert poller.state == "stopped"


def caught_up(group: str, topic: str) -> bool:
    """Every record of the topic handled and its offset committed by the group."""
    committed, end = committed_and_end(group, topic)
    return all(committed.get(p, 0) >= e for p, e in end.items())


def poller_process(topic: str, group: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": group,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "functions.local_app.poller"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def sample(name: str, topic: str) -> dict[str, Any]:
    """A sample event file with its topic renamed, so its offsets are this test's own."""
    event = json.loads((SAMPLES / name).read_text())
    records = {}
    for key, chunk in event["records"].items():
        partition = key.rsplit("-", 1)[1]
        records[f"{topic}-{partition}"] = [{**r, "topic": topic} for r in chunk]
    event["records"] = records
    return event


# --- the handler, as Lambda calls it -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["msk.json", "self_managed_kafka.json"])
def test_handler_applies_the_sample_events_and_parks_the_poison_record(database_url: str, name: str) -> None:
    label = unique("sample")
    event = sample(name, label)
    poison = next(r for chunk in event["records"].values() for r in chunk if r["key"] == "cG9pc29u")

    assert handler(event, None) == {"batchItemFailures": []}

    with psycopg.connect(database_url) as conn:
        movement = movements.get_movement(conn, SAMPLE_MOVEMENT)
    assert movement is not None and movement.status == "delivered"
    assert (movement.departed_quantity, movement.arrived_quantity) == (100, 98)
    parked = rejected_for(database_url, label)
    assert [(p, o, r) for p, o, r, _ in parked] == [(poison["partition"], poison["offset"], "invalid")]
    assert parked[0][3] == base64.b64decode(poison["value"])


def test_a_redelivered_batch_changes_nothing_twice(database_url: str) -> None:
    label = unique("redelivery")
    w1, w2, product, mid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    values = [
        envelope(uuid.uuid4(), w1, product, "arrival", 40, T0),
        envelope(mid, w1, product, "departure", 15, T0.replace(hour=9)),
        b"definitely not json",
        envelope(mid, w2, product, "arrival", 15, T0.replace(hour=11)),
    ]
    event = {
        "eventSource": "aws:kafka",
        "bootstrapServers": BOOTSTRAP,
        "records": {
            f"{label}-0": [
                {
                    "topic": label,
                    "partition": 0,
                    "offset": i,
                    "timestamp": 0,
                    "value": base64.b64encode(v).decode(),
                }
                for i, v in enumerate(values)
            ]
        },
    }
    handler(copy.deepcopy(event), None)
    first = stock_of(database_url, [(w1, product), (w2, product)])
    handler(copy.deepcopy(event), None)  # the mapping redelivers the same batch

    assert first == {(w1, product): 25, (w2, product): 15}
    assert stock_of(database_url, first) == first
    assert applied_count(database_url, label) == 3
    assert [(o, r) for _, o, r, _ in rejected_for(database_url, label)] == [(2, "invalid")]


def test_parked_records_are_copied_to_the_dlq_topic(database_url: str, topic: str) -> None:
    dlq = unique("kafka-test-dlq")
    create_topic(dlq)
    try:
        os.environ["DLQ_TOPIC"] = dlq
        get_settings.cache_clear()
        try:
            handler(sample("msk.json", topic), None)
        finally:
            os.environ.pop("DLQ_TOPIC")
            get_settings.cache_clear()
            outbox.close_producer()
        consumer = KafkaConsumer(
            bootstrap_servers=BOOTSTRAP, consumer_timeout_ms=5000, auto_offset_reset="earliest"
        )
        try:
            consumer.assign([TopicPartition(dlq, p) for p in range(3)])
            copies = list(consumer)
        finally:
            consumer.close()
    finally:
        delete_topic(dlq)
    assert len(copies) == 1
    dead = copies[0]
    assert dead.value == b"\x00\x01not json at all {"
    headers = dict(dead.headers)
    assert dead.key == b"rejected-event/" + headers["rejected_event_id"]
    assert headers["reason"] == b"invalid" and headers["detail"]
    assert headers["origin"] == f"{topic}/1@18".encode()


def test_no_dlq_copy_is_stranded_in_the_outbox(database_url: str, topic: str, monkeypatch) -> None:
    """600 records parked in one batch: 600 copies produced (not the first 500). Copies a broker
    failure left queued go out after a later batch that parks nothing."""
    from common.intake.kafka_records import ingest_records

    dlq = unique("kafka-test-dlq")
    create_topic(dlq)
    monkeypatch.setenv("DLQ_TOPIC", dlq)
    get_settings.cache_clear()

    def records(first: int, count: int, value: bytes = b"\x00 not json") -> list[dict[str, Any]]:
        encoded = base64.b64encode(value).decode()
        return [{"topic": topic, "partition": 0, "offset": first + i, "timestamp": 0, "value": encoded}
                for i in range(count)]  # fmt: skip

    def queued() -> int:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT count(*) FROM dead_letter_outbox WHERE topic = %s", (dlq,)).fetchone()
        return int(row[0]) if row else -1

    def broken_broker() -> Any:
        raise OSError("broker unreachable")

    try:
        ingest_records(records(0, 600))
        assert queued() == 0, "copies of parked records stayed in the outbox"

        with monkeypatch.context() as broken:
            broken.setattr(outbox, "_dlq_producer", broken_broker)
            ingest_records(records(600, 3))
        assert queued() == 3  # the broker failed: the copies wait in the outbox

        monkeypatch.setattr(outbox, "_last_drain", float("-inf"))  # DRAIN_INTERVAL_SECONDS have passed
        arrival = envelope(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "arrival", 1, T0)
        result = ingest_records(records(603, 1, arrival))  # a clean batch: it parks nothing
        assert queued() == 0, "copies left by a broker failure waited for the next refusal"
        assert result is not None
    finally:
        get_settings.cache_clear()
        outbox.close_producer()
        consumer = KafkaConsumer(
            bootstrap_servers=BOOTSTRAP, consumer_timeout_ms=5000, auto_offset_reset="earliest"
        )
        try:
            consumer.assign([TopicPartition(dlq, p) for p in range(3)])
            keys = {message.key for message in consumer}
        finally:
            consumer.close()
            delete_topic(dlq)
    assert len(keys) == 603  # every parked record, once each (by its dead letter's key)


# --- the poller on a real topic --------------------------------------------------------------------


def test_events_produced_to_a_topic_show_up_in_the_views(database_url: str, topic: str, group: str) -> None:
    stream = movement_stream(40, warehouses=4, products=2)
    produce(topic, stream.records)
    with running_poller(topic, group) as poller:
        wait_until(lambda: applied_count(database_url, topic) == stream.events, 60, what="all events applied")
        wait_until(lambda: poller.lag == 0, 30, what="lag 0")
        assert poller.state == "running"
    with psycopg.connect(database_url) as conn:
        for (w, p), quantity in stream.stock.items():
            assert stock.get_stock(conn, w, p).quantity == quantity
        movement = movements.get_movement(conn, stream.movements[0])
    assert movement is not None and movement.status == "delivered"


def test_poison_records_neither_block_nor_lose_the_good_ones(
    database_url: str, topic: str, group: str
) -> None:
    w1, w2, product, mid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    restock = envelope(uuid.uuid4(), w1, product, "arrival", 100, T0)
    departure = envelope(mid, w1, product, "departure", 30, T0.replace(hour=9))
    arrival = envelope(mid, w2, product, "arrival", 29, T0.replace(hour=12))
    wrong_fields = json.dumps({"id": "x", "source": "WH", "data": {"quantity": "lots"}}).encode()
    other_type = json.loads(envelope(uuid.uuid4(), w1, product, "arrival", 5, T0))
    other_type["type"] = "ru.retail.warehouses.inventory"
    too_much = envelope(uuid.uuid4(), w2, product, "departure", 1000, T0.replace(hour=13))
    conflicting = envelope(mid, w1, product, "departure", 31, T0.replace(hour=9))
    sequence = [
        ("good", restock),
        ("invalid", b"\x00\xff not json"),
        ("good", departure),
        ("invalid", wrong_fields),
        ("invalid", None),  # tombstone
        ("invalid", json.dumps(other_type).encode()),
        ("good", arrival),
        ("insufficient_stock", too_much),
        ("conflict", conflicting),
    ]
    producer = fast_producer(linger_ms=0)
    try:  # one key: one partition, the poison strictly between the good records
        sent = [(kind, value, producer.send(topic, key=b"one", value=value)) for kind, value in sequence]
        producer.flush(10)
        placed = [(kind, value, future.get(10)) for kind, value, future in sent]
    finally:
        producer.close()

    with running_poller(topic, group):
        wait_until(lambda: caught_up(group, topic), 60, what="the whole topic committed")

    assert stock_of(database_url, [(w1, product), (w2, product)]) == {(w1, product): 70, (w2, product): 29}
    assert applied_count(database_url, topic) == 3
    expected = [(m.partition, m.offset, kind, value or b"") for kind, value, m in placed if kind != "good"]
    assert rejected_for(database_url, topic) == expected


def test_arrivals_before_departures_and_triplicates_end_exact(
    database_url: str, topic: str, group: str
) -> None:
    stream = movement_stream(300, warehouses=8, products=3, arrival_first=True, copies=3)
    produce(topic, stream.records)
    with running_poller(topic, group):
        wait_until(lambda: caught_up(group, topic), 90, what="the whole topic committed")

    assert applied_count(database_url, topic) == stream.events
    assert stock_of(database_url, stream.stock) == dict(stream.stock)
    assert delivered_count(database_url, stream.movements) == len(stream.movements)
    assert rejected_for(database_url, topic) == []


def test_an_event_through_the_webhook_and_kafka_counts_once(
    database_url: str, topic: str, group: str
) -> None:
    w, product, mid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    restock = envelope(uuid.uuid4(), w, product, "arrival", 50, T0)
    departure = envelope(mid, w, product, "departure", 20, T0.replace(hour=10))
    service.ingest([parse_event(restock, Origin.webhook()), parse_event(departure, Origin.webhook())])

    produce(topic, [(str(w).encode(), restock), (str(w).encode(), departure)])
    with running_poller(topic, group):
        wait_until(lambda: caught_up(group, topic), 60, what="the topic committed")

    assert stock_of(database_url, [(w, product)]) == {(w, product): 30}
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT origin FROM movement_events WHERE movement_id = %s", (mid,)).fetchall()
    assert rows == [("webhook",)]
    assert rejected_for(database_url, topic) == []


# --- the standalone poller process -------------------------------------------------------------------


def test_kill_9_mid_stream_then_restart_applies_every_event_once(
    database_url: str, topic: str, group: str, tmp_path: Path
) -> None:
    stream = movement_stream(9_970, warehouses=12, products=5)  # 60 restocks + 2 x 9,970 = 20,000
    assert stream.events == 20_000
    producing = threading.Thread(target=produce, args=(topic, stream.records), daemon=True)
    producing.start()
    log = tmp_path / "poller.log"

    first = poller_process(topic, group, log)
    try:
        wait_until(lambda: applied_count(database_url, topic) >= 3_000, 90, what="3,000 events applied")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    at_kill = applied_count(database_url, topic)
    assert at_kill < 20_000, "the stream was over before the kill; nothing was tested"

    second = poller_process(topic, group, log)
    try:
        wait_until(
            lambda: applied_count(database_url, topic) == 20_000, 150, interval=0.5, what="all 20,000 applied"
        )
        producing.join(30)
        wait_until(lambda: caught_up(group, topic), 60, what="the restarted poller committed everything")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)

    assert applied_count(database_url, topic) == 20_000
    assert stock_of(database_url, stream.stock) == dict(stream.stock)
    assert delivered_count(database_url, stream.movements) == len(stream.movements)
    assert rejected_for(database_url, topic) == []


def test_sigterm_finishes_the_batch_commits_it_and_leaves_the_group(
    database_url: str, topic: str, group: str, tmp_path: Path
) -> None:
    stream = movement_stream(3_000, warehouses=6, products=3)  # every record a distinct event
    produce(topic, stream.records)
    log = tmp_path / "poller.log"
    proc = poller_process(topic, group, log)
    try:
        wait_until(lambda: applied_count(database_url, topic) >= 1_000, 90, what="1,000 events applied")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()

    # Checked right after the exit: a member that had not left would still be listed until its
    # 10 s session timeout expired.
    description = group_description(group)
    assert description["members"] == [] and description["group_state"] == "Empty"
    committed, _ = committed_and_end(group, topic)
    # Each record is one distinct event: what was committed is exactly what was applied.
    assert sum(committed.values()) == applied_count(database_url, topic)
    assert "kafka poller stopped" in log.read_text()
