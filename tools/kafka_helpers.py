"""Building blocks for the Kafka tests and the benchmark: topics, envelopes, streams, waiting."""

from __future__ import annotations

import json
import os
import random
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from kafka import KafkaAdminClient, KafkaProducer

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
EVENT_TYPE = "ru.retail.warehouses.movement"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_topic(name: str, partitions: int = 3) -> None:
    """Explicitly, so the broker's auto-creation (maybe one partition) never decides for us."""
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="kafka-tests-admin")
    try:
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1}}, wait_for_metadata=True
        )
    finally:
        admin.close()


def delete_topic(name: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="kafka-tests-admin")
    try:
        admin.delete_topics([name], raise_errors=False)
    finally:
        admin.close()


def fast_producer(**overrides: Any) -> KafkaProducer:
    """Batched, compressed producer: throughput over latency."""
    config: dict[str, Any] = {
        "bootstrap_servers": BOOTSTRAP,
        "acks": 1,
        "linger_ms": 20,
        "batch_size": 256 * 1024,
        # Record-batch CRCs are computed in pure Python here: compressing first makes them cheap.
        "compression_type": "gzip",
        "max_request_size": 8 * 1024 * 1024,
        "client_id": "kafka-tests-producer",
    }
    config.update(overrides)
    return KafkaProducer(**config)


def partition_for(key: bytes | None, partitions: int) -> int | None:
    """Key-consistent like Kafka's partitioner, but C-fast (kafka-python's murmur2 is pure Python)."""
    return None if key is None else zlib.crc32(key) % partitions


def produce(topic: str, records: Iterable[tuple[bytes | None, bytes | None]], partitions: int = 3) -> int:
    producer = fast_producer()
    n = 0
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value, partition=partition_for(key, partitions))
            n += 1
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    return n


def envelope(
    movement_id: uuid.UUID,
    warehouse_id: uuid.UUID,
    product_id: uuid.UUID,
    event: str,
    quantity: int,
    at: datetime,
) -> bytes:
    """The brief's envelope around one half of a movement."""
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "source": f"WH-{str(warehouse_id)[:4]}",
            "specversion": "1.0",
            "type": EVENT_TYPE,
            "datacontenttype": "application/json",
            "dataschema": "ru.retail.warehouses.movement.v1.0",
            "time": int(at.timestamp() * 1000),
            "subject": f"WH-{str(warehouse_id)[:4]}:{event.upper()}",
            "destination": "ru.retail.warehouses",
            "data": {
                "movement_id": str(movement_id),
                "warehouse_id": str(warehouse_id),
                "timestamp": at.isoformat().replace("+00:00", "Z"),
                "event": event,
                "product_id": str(product_id),
                "quantity": quantity,
            },
        }
    ).encode()


@dataclass
class Stream:
    """Records to produce (key = warehouse id) and what the ledger must end with."""

    records: list[tuple[bytes, bytes]] = field(default_factory=list)
    stock: dict[tuple[uuid.UUID, uuid.UUID], int] = field(default_factory=lambda: defaultdict(int))
    movements: list[uuid.UUID] = field(default_factory=list)
    restocks: list[uuid.UUID] = field(default_factory=list)

    @property
    def events(self) -> int:
        """Distinct events (restock arrivals + both halves of each movement)."""
        return len(self.restocks) + 2 * len(self.movements)

    def add(self, warehouse: uuid.UUID, value: bytes) -> None:
        self.records.append((str(warehouse).encode(), value))


def movement_stream(
    movements: int,
    *,
    warehouses: int = 6,
    products: int = 5,
    arrival_first: bool = False,
    copies: int = 1,
    seed: int = 7,
) -> Stream:
    """Restock arrivals for every (warehouse, product), then `movements` transfers between them.

    Records are keyed by warehouse id, as producers should: a warehouse's events stay in one
    partition, in order, so a departure never overtakes the restock it draws on. Departures are
    sized so stock never runs out. `arrival_first` produces each arrival before its departure
    (different warehouses, hence usually different partitions); `copies` sends each record that
    many times (the second and third copies later in the stream).
    """
    rng = random.Random(seed)
    whs = [uuid.uuid4() for _ in range(warehouses)]
    prods = [uuid.uuid4() for _ in range(products)]
    base = datetime(2025, 2, 18, 8, 0, tzinfo=UTC)
    stream = Stream()
    restock_qty = movements * 10 + 1000
    for w in whs:
        for p in prods:
            mid = uuid.uuid4()
            stream.restocks.append(mid)
            stream.add(w, envelope(mid, w, p, "arrival", restock_qty, base))
            stream.stock[(w, p)] += restock_qty
    body: list[tuple[bytes, bytes]] = []
    for i in range(movements):
        src, dst = rng.sample(whs, 2)
        p = rng.choice(prods)
        sent = rng.randint(1, 10)
        received = sent - rng.choice([0, 0, 0, 1])
        received = max(received, 1)
        mid = uuid.uuid4()
        stream.movements.append(mid)
        dep_at = base + timedelta(minutes=1 + i)
        dep = (str(src).encode(), envelope(mid, src, p, "departure", sent, dep_at))
        arr = (str(dst).encode(), envelope(mid, dst, p, "arrival", received, dep_at + timedelta(hours=2)))
        body.extend([arr, dep] if arrival_first else [dep, arr])
        stream.stock[(src, p)] -= sent
        stream.stock[(dst, p)] += received
    records = stream.records + body
    stream.records = records * copies if copies > 1 else records
    return stream


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def applied_count(url: str, topic: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM movement_events WHERE kafka_topic = %s", (topic,)).fetchone()
        return int(row[0]) if row else 0


def stock_of(url: str, keys: Iterable[tuple[uuid.UUID, uuid.UUID]]) -> dict[tuple[uuid.UUID, uuid.UUID], int]:
    keys = list(keys)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            """
            SELECT s.warehouse_id, s.product_id, s.quantity FROM stock s
            JOIN unnest(%s::uuid[], %s::uuid[]) AS k(w, p) ON s.warehouse_id = k.w AND s.product_id = k.p
            """,
            ([k[0] for k in keys], [k[1] for k in keys]),
        ).fetchall()
    found = {(w, p): q for w, p, q in rows}
    return {k: found.get(k, 0) for k in keys}


def delivered_count(url: str, movement_ids: list[uuid.UUID]) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM movements WHERE movement_id = ANY(%s::uuid[]) AND status = 'delivered'",
            (movement_ids,),
        ).fetchone()
        return int(row[0]) if row else 0


def rejected_for(url: str, topic: str) -> list[tuple[int, int, str, bytes]]:
    """(partition, offset, reason, raw) of every parked record of `topic`."""
    with psycopg.connect(url, autocommit=True) as conn:
        return [
            (p, o, r, bytes(raw))
            for p, o, r, raw in conn.execute(
                """
                SELECT kafka_partition, kafka_offset, reason, raw_payload FROM rejected_events
                WHERE kafka_topic = %s ORDER BY kafka_partition, kafka_offset
                """,
                (topic,),
            )
        ]


def delete_group(group: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="kafka-tests-admin")
    try:
        admin.delete_groups([group])
    except Exception:  # still has members, or never created: nothing to clean
        pass
    finally:
        admin.close()


def group_description(group: str) -> dict[str, Any]:
    """The broker's view of a consumer group: `group_state`, `members`."""
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="kafka-tests-admin")
    try:
        description: dict[str, Any] = admin.describe_groups([group])[group]
        return description
    finally:
        admin.close()


def committed_and_end(group: str, topic: str, partitions: int = 3) -> tuple[dict[int, int], dict[int, int]]:
    """The group's committed offsets and the topic's end offsets, per partition."""
    from kafka import KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="kafka-tests-admin")
    try:
        committed = {
            tp.partition: meta.offset
            for tp, meta in admin.list_group_offsets(group).get(group, {}).items()
            if tp.topic == topic
        }
    finally:
        admin.close()
    # read_committed: the end the poller can reach is the last stable offset, as for the poller.
    consumer = KafkaConsumer(
        bootstrap_servers=BOOTSTRAP, client_id="kafka-tests-offsets", isolation_level="read_committed"
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        end = {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()
    return committed, end
