"""Two clusters, one topic name, the same offsets: the poller's events say which cluster.

The stack's broker and this session's private one both carry topic T. The very same record
(same key, same bytes) sits at T/0@0 on both. On the first cluster it is refused (a departure
before any stock) and parked; stock then arrives; on the second cluster it is another record
of another cluster, decided on its own merits: applied. Were the clusters not told apart (the
poller used one constant `eventSourceArn` for every cluster), the ledger would take the second
for a redelivery of the first and keep it parked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
import pytest
from kafka import KafkaProducer

from common.adapters.config import get_settings
from common.domain.events import Origin, parse_event
from common.intake.kafka_records import cluster_arn
from common.ledger import use_cases as service
from functions.local_app.poller import Poller
from tests.kafka.broker import PrivateBroker
from tools.kafka_helpers import (
    BOOTSTRAP,
    create_topic,
    delete_topic,
    envelope,
    rejected_for,
    stock_of,
    unique,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

T0 = datetime(2025, 2, 18, 8, 0, tzinfo=UTC)


@contextmanager
def poller_on(bootstrap: str, topic: str) -> Iterator[Poller]:
    settings = get_settings().model_copy(
        update=dict(
            kafka_bootstrap_servers=bootstrap, kafka_topic=topic, kafka_group_id=unique("identity-group")
        )
    )
    poller = Poller(settings, lag_interval=0.3)
    poller.start()
    try:
        yield poller
    finally:
        assert poller.stop(30)


def put(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> list[int]:
    """Produce to partition 0 in order; the offsets they got."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    try:
        futures = [producer.send(topic, key=k, value=v, partition=0) for k, v in records]
        producer.flush(30)
        return [f.get(30).offset for f in futures]
    finally:
        producer.close(10)


def test_the_same_record_at_the_same_coordinates_of_another_cluster_is_another_record(
    database_url: str, private_broker: PrivateBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The parked departure must stay parked when its stock arrives (no automatic retry), so that
    # the very same record on cluster two shows it is decided on its own merits.
    monkeypatch.setenv("AUTO_REPLAY_WINDOW_SECONDS", "0")
    get_settings.cache_clear()
    topic = unique("identity")
    create_topic(topic)
    private_broker.create_topic(topic)
    w, w2, product = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    departure = envelope(uuid.uuid4(), w, product, "departure", 5, T0.replace(hour=9))
    key = str(w).encode()
    try:
        # Cluster one: the departure before any stock, then a record that is not JSON.
        assert put(BOOTSTRAP, topic, [(key, departure), (key, b"\x00 not json")]) == [0, 1]
        with poller_on(BOOTSTRAP, topic) as first:
            wait_until(
                lambda: len(rejected_for(database_url, topic)) == 2, 60, what="both parked on cluster one"
            )
        assert first.cluster_id and first.cluster_id != private_broker.cluster_id

        service.ingest([parse_event(envelope(uuid.uuid4(), w, product, "arrival", 10, T0), Origin.webhook())])

        # Cluster two, same topic, same offsets: the same departure, then a valid arrival.
        arrival = envelope(uuid.uuid4(), w2, product, "arrival", 2, T0.replace(hour=10))
        assert put(private_broker.plaintext, topic, [(key, departure), (str(w2).encode(), arrival)]) == [0, 1]
        with poller_on(private_broker.plaintext, topic) as second:
            wait_until(
                lambda: stock_of(database_url, [(w2, product)]) == {(w2, product): 2},
                60,
                what="cluster two applied",
            )
            wait_until(lambda: second.lag == 0, 30, what="cluster two caught up")
        assert second.cluster_id == private_broker.cluster_id
    finally:
        delete_topic(topic)

    assert stock_of(database_url, [(w, product), (w2, product)]) == {(w, product): 5, (w2, product): 2}
    with psycopg.connect(database_url) as conn:
        parked = conn.execute(
            "SELECT kafka_offset, reason, kafka_cluster FROM rejected_events WHERE kafka_topic = %s "
            "ORDER BY kafka_offset",
            (topic,),
        ).fetchall()
        applied = conn.execute(
            "SELECT kafka_offset, kafka_cluster FROM movement_events WHERE kafka_topic = %s ORDER BY 1",
            (topic,),
        ).fetchall()
    one, two = cluster_arn(first.cluster_id), cluster_arn(private_broker.cluster_id)
    assert parked == [(0, "insufficient_stock", one), (1, "invalid", one)]
    assert applied == [(0, two), (1, two)]
