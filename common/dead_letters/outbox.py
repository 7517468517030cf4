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

from common.adapters import kafka_settings as kafka_client
from common.adapters.config import Settings, get_settings
from common.dead_letters import store as dead_letters

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
            queued = conn.execute(
                """
                SELECT rejected_event_id, topic FROM dead_letter_outbox
                ORDER BY rejected_event_id
                LIMIT %s
                FOR UPDATE SKIP LOCKED
                """,
                (limit,),
            ).fetchall()
            if not queued:
                return 0
            topics: dict[int, str] = dict(queued)
            producer = _dlq_producer()
            for copy in dead_letters.copies(conn, list(topics)):
                producer.send(
                    topics[copy.id],
                    key=message_key(copy.id),
                    value=copy.raw,
                    headers=[
                        ("reason", str(copy.reason).encode()),
                        ("detail", copy.detail.encode("utf-8", "replace")[:DETAIL_HEADER_BYTES]),
                        ("origin", copy.origin.encode()),
                        ("cluster", (copy.cluster or "").encode()),
                        ("rejected_event_id", str(copy.id).encode()),
                    ],
                )
            producer.flush(timeout=10)
            conn.execute(
                "DELETE FROM dead_letter_outbox WHERE rejected_event_id = ANY(%s::int8[])", (list(topics),)
            )
    except Exception:  # the copies stay queued; the dead letters themselves are safe
        logger.exception("copying parked records to the dead-letter topic failed; will retry")
        return 0
    return len(topics)


def producer_arguments(settings: Settings) -> dict[str, Any]:
    """The DLQ producer's arguments: the same security (TLS, SASL, MSK IAM) as every client."""
    return kafka_client.producer_config(
        settings, "warehouse-dlq", linger_ms=5, max_block_ms=5000, request_timeout_ms=10000
    )


def _dlq_producer() -> Any:
    """The process-wide producer for DLQ_TOPIC, created on first use."""
    global _producer
    if _producer is None:
        with _producer_lock:
            if _producer is None:
                from kafka import KafkaProducer

                _producer = KafkaProducer(**producer_arguments(get_settings()))
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
