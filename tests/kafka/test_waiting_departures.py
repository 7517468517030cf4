"""On a real topic: a departure read before the arrival that stocks it, and the dead-letter copies.

Producers may key records by anything, so a departure can land on another partition than the
arrival that stocked its warehouse and be read first. Refused for insufficient stock, it waits and
is applied when that arrival lands (`AUTO_REPLAY_WINDOW_SECONDS`), once: a redelivery of either
record changes nothing. Parked records are copied to DLQ_TOPIC through the outbox, once each.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition

from common.adapters.config import get_settings
from common.dead_letters import outbox
from functions.local_app.poller import Poller
from tools.kafka_helpers import (
    BOOTSTRAP,
    create_topic,
    delete_topic,
    envelope,
    fast_producer,
    unique,
    wait_until,
)

pytestmark = pytest.mark.integration

AT = datetime(2025, 2, 18, 12, 0, tzinfo=UTC)


@contextmanager
def poller_on(topic: str, group: str) -> Iterator[Poller]:
    settings = get_settings().model_copy(
        update=dict(kafka_topic=topic, kafka_group_id=group, kafka_poll_timeout_ms=100)
    )
    poller = Poller(settings, lag_interval=0.5)
    poller.start()
    try:
        yield poller
    finally:
        assert poller.stop(30), "the poller did not stop"


def send(topic: str, partition: int, value: bytes) -> None:
    producer = fast_producer(linger_ms=0)
    try:
        producer.send(topic, value=value, partition=partition)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def dead_letter(url: str, movement: uuid.UUID) -> tuple[str, str | None] | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT reason, replay_status FROM rejected_events WHERE movement_id = %s", (movement,)
        ).fetchone()
    return (str(row[0]), row[1]) if row else None


def stock(url: str, warehouse: uuid.UUID, product: uuid.UUID) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT quantity FROM stock WHERE warehouse_id = %s AND product_id = %s", (warehouse, product)
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_departure_read_before_its_stock_is_applied_once_the_arrival_lands(
    database_url: str, topic: str, group: str
) -> None:
    warehouse, product, transfer, restock = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with poller_on(topic, group):
        send(topic, 1, envelope(transfer, warehouse, product, "departure", 4, AT))
        wait_until(lambda: dead_letter(database_url, transfer) is not None, 60, what="the departure parked")
        assert dead_letter(database_url, transfer) == ("insufficient_stock", None)

        send(topic, 0, envelope(restock, warehouse, product, "arrival", 10, AT))
        wait_until(lambda: stock(database_url, warehouse, product) == 6, 60, what="the departure applied")

    assert dead_letter(database_url, transfer) == ("insufficient_stock", "applied")
    # Everything delivered again (a new consumer group reads the topic from the start): no change.
    with poller_on(topic, unique("again")) as again:
        wait_until(lambda: again.records >= 2, 180, what="the redelivery")
    assert stock(database_url, warehouse, product) == 6
    with psycopg.connect(database_url) as conn:
        logged = conn.execute(
            "SELECT count(*) FROM movement_events WHERE movement_id = %s", (transfer,)
        ).fetchone()
        parked = conn.execute(
            "SELECT count(*) FROM rejected_events WHERE movement_id = %s", (transfer,)
        ).fetchone()
    assert (logged, parked) == ((1,), (1,))


@pytest.fixture
def dlq_topic() -> Iterator[str]:
    name = unique("kafka-test-dlq")
    create_topic(name, partitions=1)
    os.environ["DLQ_TOPIC"] = name
    get_settings.cache_clear()
    try:
        yield name
    finally:
        os.environ.pop("DLQ_TOPIC", None)
        get_settings.cache_clear()
        outbox.close_producer()
        delete_topic(name)


def copies_on(topic: str) -> list[tuple[bytes, bytes, dict[str, bytes]]]:
    consumer = KafkaConsumer(
        bootstrap_servers=BOOTSTRAP, consumer_timeout_ms=3000, auto_offset_reset="earliest"
    )
    try:
        consumer.assign([TopicPartition(topic, 0)])
        return [(r.key, r.value, dict(r.headers)) for r in consumer]
    finally:
        consumer.close()


def test_each_parked_record_is_copied_to_the_dlq_topic_once(
    database_url: str, topic: str, group: str, dlq_topic: str
) -> None:
    bad = [b"{not json", b"[]", b""]
    producer = fast_producer(linger_ms=0)
    for value in bad:
        producer.send(topic, value=value, partition=2)
    producer.flush(timeout=30)
    producer.close(timeout=10)

    # Generous waits: joining a group and the first fetch can take long on a loaded machine.
    with poller_on(topic, group) as first:
        wait_until(lambda: first.records >= 3, 180, what="the bad records")
    with poller_on(topic, unique("again")) as again:  # every record delivered a second time
        wait_until(lambda: again.records >= 3, 180, what="the redelivery")

    copies = copies_on(dlq_topic)
    with psycopg.connect(database_url) as conn:
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM rejected_events WHERE kafka_topic = %s ORDER BY id", (topic,)
            )
        ]
        queued = conn.execute("SELECT count(*) FROM dead_letter_outbox").fetchone()
    assert len(ids) == 3 and queued == (0,)
    assert sorted(key for key, _, _ in copies) == sorted(outbox.message_key(i) for i in ids)
    assert sorted(value for _, value, _ in copies) == sorted(bad)
    assert all(headers["reason"] == b"invalid" for _, _, headers in copies)


def test_a_copy_that_could_not_be_sent_stays_queued_until_it_can(
    database_url: str, dlq_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from common.domain.events import Origin, parse_event
    from common.ledger.apply import apply_batch

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM dead_letter_outbox")
        applied = apply_batch(conn, [parse_event(b"nope", Origin.kafka(unique("t"), 0, 1))])
        [rid] = [o.rejected_event_id for o in applied.outcomes]
        assert rid is not None

        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # nothing listens there
        get_settings.cache_clear()
        outbox.close_producer()
        assert outbox.publish_pending(conn) == 0
        assert conn.execute("SELECT rejected_event_id FROM dead_letter_outbox").fetchall() == [(rid,)]

        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", BOOTSTRAP)
        get_settings.cache_clear()
        outbox.close_producer()
        assert outbox.publish_pending(conn) == 1
        assert conn.execute("SELECT count(*) FROM dead_letter_outbox").fetchone() == (0,)
    assert [key for key, _, _ in copies_on(dlq_topic)] == [outbox.message_key(rid)]
