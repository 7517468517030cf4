"""What a real third-party producer writes (librdkafka, through confluent-kafka) reaches the ledger.

Every compression codec, transactions committed and aborted (read_committed: an aborted record is
never applied nor parked; an open transaction holds its partition back, visible as lag), the
idempotent producer, and the odd records users send. Each test then produces a plain arrival
on the same partition and waits for it: nothing after an odd record is held up.

One poller (in this process) reads one topic for the whole module; each test has its own
warehouses and products, so it asserts on its own stock only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Producer

from common.adapters.config import get_settings
from functions.local_app.poller import Poller
from tools.kafka_helpers import (
    BOOTSTRAP,
    create_topic,
    delete_group,
    delete_topic,
    envelope,
    rejected_for,
    stock_of,
    unique,
    wait_until,
)

pytestmark = [pytest.mark.integration]

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
APPLIED_WITHIN = 60.0


@pytest.fixture(scope="module")
def topic() -> Iterator[str]:
    name = unique("real-producers")
    create_topic(name, 3)
    yield name
    delete_topic(name)


@pytest.fixture(scope="module")
def poller(topic: str) -> Iterator[Poller]:
    group = unique("real-producers-group")
    settings = get_settings().model_copy(update=dict(kafka_topic=topic, kafka_group_id=group))
    poller = Poller(settings, lag_interval=0.5)
    poller.start()
    yield poller
    assert poller.stop(30), "the poller did not stop"
    delete_group(group)


def producer(**config: Any) -> Producer:
    return Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5, **config})


def arrival(quantity: int) -> tuple[tuple[uuid.UUID, uuid.UUID], bytes]:
    key = (uuid.uuid4(), uuid.uuid4())
    return key, envelope(uuid.uuid4(), key[0], key[1], "arrival", quantity, T0)


def send(p: Producer, topic: str, partition: int, value: bytes | None, **kw: Any) -> None:
    p.produce(topic, value=value, partition=partition, **kw)
    assert p.flush(30) == 0, "the producer did not deliver"


def wait_stock(database_url: str, key: tuple[uuid.UUID, uuid.UUID], quantity: int) -> None:
    wait_until(
        lambda: stock_of(database_url, [key])[key] == quantity, APPLIED_WITHIN, what=f"stock {quantity}"
    )


def plain_after(database_url: str, topic: str, partition: int) -> None:
    """A plain arrival produced after the odd one on the same partition is applied."""
    key, value = arrival(7)
    send(producer(), topic, partition, value, key=str(key[0]).encode())
    wait_stock(database_url, key, 7)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_every_compression_codec_is_applied(
    poller: Poller, topic: str, database_url: str, codec: str
) -> None:
    p = producer(**{"compression.type": codec, "linger.ms": 50})
    keys = []
    for i in range(20):  # one compressed batch of several records
        key, value = arrival(10 + i)
        keys.append((key, 10 + i))
        p.produce(topic, value=value, partition=1, key=str(key[0]).encode())
    assert p.flush(30) == 0
    for key, quantity in keys:
        wait_stock(database_url, key, quantity)
    plain_after(database_url, topic, 1)


def test_a_committed_transaction_is_applied_and_an_aborted_one_never(
    poller: Poller, topic: str, database_url: str
) -> None:
    p = producer(**{"transactional.id": unique("tx"), "linger.ms": 0})
    p.init_transactions(30)
    committed, committed_value = arrival(300)
    aborted, aborted_value = arrival(500)
    p.begin_transaction()
    p.produce(topic, value=aborted_value, partition=2)
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce(topic, value=committed_value, partition=2)
    p.commit_transaction(30)

    wait_stock(database_url, committed, 300)
    plain_after(database_url, topic, 2)
    assert stock_of(database_url, [aborted])[aborted] == 0
    parked = {raw for _p, _o, _r, raw in rejected_for(database_url, topic)}
    assert aborted_value not in parked  # never parked either


def test_an_open_transaction_holds_its_partition_back_as_lag(
    poller: Poller, topic: str, database_url: str
) -> None:
    p = producer(**{"transactional.id": unique("tx-open"), "linger.ms": 0})
    p.init_transactions(30)
    held, held_value = arrival(40)
    p.begin_transaction()
    p.produce(topic, value=held_value, partition=0)
    p.flush(30)
    after, after_value = arrival(9)
    send(producer(), topic, 0, after_value)

    # Kafka's last stable offset: nothing after the open transaction is read, and it shows as lag.
    wait_until(
        lambda: poller.lag_by_partition.get(f"{topic}-0", 0) >= 2, 30, what="lag of the open transaction"
    )
    assert stock_of(database_url, [held, after]) == {held: 0, after: 0}

    p.commit_transaction(30)
    wait_stock(database_url, held, 40)
    wait_stock(database_url, after, 9)


def test_the_idempotent_producer_with_resends_applies_exactly_once(
    poller: Poller, topic: str, database_url: str
) -> None:
    p = producer(**{"enable.idempotence": True, "acks": "all", "linger.ms": 0})
    key, value = arrival(25)
    for _ in range(3):  # the same event sent again (an application-level resend)
        p.produce(topic, value=value, partition=1)
    assert p.flush(30) == 0
    plain_after(database_url, topic, 1)
    assert stock_of(database_url, [key])[key] == 25


@pytest.mark.parametrize(
    ("name", "value", "parked"),
    [
        ("tombstone", None, "invalid"),
        ("empty value", b"", "invalid"),
        ("900 KB value", b'{"pad": "' + b"x" * 900_000 + b'"}', "invalid"),
        ("JSON array", b"[1, 2, 3]", "invalid"),
        ("JSON number", b"42", "invalid"),
    ],
)
def test_odd_records_are_parked_invalid_and_the_partition_goes_on(
    poller: Poller, topic: str, database_url: str, name: str, value: bytes | None, parked: str
) -> None:
    marker = unique("odd").encode()  # a key to find this test's dead letter by
    before = len(rejected_for(database_url, topic))
    send(producer(), topic, 0, value, key=marker)
    plain_after(database_url, topic, 0)
    letters = rejected_for(database_url, topic)
    assert len(letters) == before + 1, name
    assert letters[-1][2] == parked or any(r == parked for _p, _o, r, _raw in letters)


def test_null_keys_and_headers_are_applied(poller: Poller, topic: str, database_url: str) -> None:
    key, value = arrival(12)
    send(producer(), topic, 2, value, headers=[("trace", b"abc"), ("empty", None)])
    wait_stock(database_url, key, 12)
    obj = json.loads(value)
    assert obj["data"]["quantity"] == 12
    plain_after(database_url, topic, 2)
