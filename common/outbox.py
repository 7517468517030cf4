"""Copies of parked Kafka records for DLQ_TOPIC, through an outbox (`dead_letter_outbox`).

Parking a record also enqueues its copy, in the same transaction: a crash after the commit cannot
lose it, and a redelivered batch (whose records are found parked) enqueues nothing again. After
the commit `publish_pending` produces what is queued and deletes it once the broker acknowledged
it. A crash between the two produces that copy again: delivery is at least once, and the message
key, `rejected-event/<id>`, names the dead letter so a consumer (or log compaction) drops repeats.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import psycopg

from common.config import get_settings

logger = logging.getLogger(__name__)

PUBLISH_BATCH = 500
DETAIL_HEADER_BYTES = 4000

_producer: Any = None
_producer_lock = threading.Lock()


def enqueue(conn: psycopg.Connection, rejected_event_ids: Sequence[int]) -> None:
    """Queue copies of these dead letters for DLQ_TOPIC (nothing when no topic is configured)."""
    topic = get_settings().dlq_topic
    if not topic or not rejected_event_ids:
        return
    conn.execute(
        """
        INSERT INTO dead_letter_outbox (rejected_event_id, topic)
        SELECT id, %b FROM unnest(%b::int8[]) AS v(id)
        ON CONFLICT DO NOTHING
        """,
        (topic, list(rejected_event_ids)),
    )


def message_key(rejected_event_id: int) -> bytes:
    return f"rejected-event/{rejected_event_id}".encode()


def publish_pending(conn: psycopg.Connection, *, limit: int = PUBLISH_BATCH) -> int:
    """Produce up to `limit` queued copies and delete them once acknowledged; how many were sent.

    Best effort: a failure is logged and the copies stay queued for the next call. Rows another
    process is publishing right now are skipped (SKIP LOCKED), so concurrent pollers do not send
    the same copy twice.
    """
    if not get_settings().dlq_topic:
        return 0
    try:
        with conn.transaction():
            rows = conn.execute(
                """
                SELECT o.rejected_event_id, o.topic, r.raw_payload, r.reason, r.detail,
                       r.kafka_cluster, r.kafka_topic, r.kafka_partition, r.kafka_offset
                FROM dead_letter_outbox o JOIN rejected_events r ON r.id = o.rejected_event_id
                ORDER BY o.rejected_event_id
                LIMIT %s
                FOR UPDATE OF o SKIP LOCKED
                """,
                (limit,),
            ).fetchall()
            if not rows:
                return 0
            producer = _dlq_producer()
            for rid, topic, raw, reason, detail, cluster, src_topic, partition, offset in rows:
                origin = f"{src_topic}/{partition}@{offset}"
                producer.send(
                    topic,
                    key=message_key(rid),
                    value=bytes(raw),
                    headers=[
                        ("reason", str(reason).encode()),
                        ("detail", str(detail).encode("utf-8", "replace")[:DETAIL_HEADER_BYTES]),
                        ("origin", origin.encode()),
                        ("cluster", (cluster or "").encode()),
                        ("rejected_event_id", str(rid).encode()),
                    ],
                )
            producer.flush(timeout=10)
            conn.execute(
                "DELETE FROM dead_letter_outbox WHERE rejected_event_id = ANY(%s::int8[])",
                ([row[0] for row in rows],),
            )
    except Exception:  # the copies stay queued; the dead letters themselves are safe
        logger.exception("copying parked records to the dead-letter topic failed; will retry")
        return 0
    return len(rows)


def _dlq_producer() -> Any:
    """The process-wide producer for DLQ_TOPIC, created on first use."""
    global _producer
    if _producer is None:
        with _producer_lock:
            if _producer is None:
                from kafka import KafkaProducer

                _producer = KafkaProducer(
                    bootstrap_servers=get_settings().kafka_bootstrap_servers.split(","),
                    acks="all",
                    linger_ms=5,
                    max_block_ms=5000,
                    request_timeout_ms=10000,
                    client_id="warehouse-dlq",
                )
    return _producer


def close_producer() -> None:
    global _producer
    with _producer_lock:
        if _producer is not None:
            try:
                _producer.close(timeout=5)
            except Exception:  # closing is best effort
                logger.warning("closing the dead-letter producer failed", exc_info=True)
            _producer = None
