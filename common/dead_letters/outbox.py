"""Copies of parked Kafka records for DLQ_TOPIC, through an outbox (`dead_letter_outbox`).

Parking a record also enqueues its copy, in the same transaction: a crash after the commit cannot
lose it, and a redelivered batch (whose records are found parked) enqueues nothing again. After
the commit `publish_pending` produces what is queued and deletes it once the broker acknowledged
it, batch after batch until the outbox is empty (`drain`), after any batch that parked a record
and at least every DRAIN_INTERVAL_SECONDS after any other, so a copy a failure left queued does
not wait for the next refusal. A crash between the two produces that copy again: delivery is at
least once, and the message key, `rejected-event/<id>`, names the dead letter so a consumer (or
log compaction) drops repeats.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from common.adapters import kafka_settings as kafka_client
from common.adapters.config import Settings, get_settings
from common.dead_letters import store as dead_letters

logger = logging.getLogger(__name__)

PUBLISH_BATCH = 500
DETAIL_HEADER_BYTES = 4000
# Copies left queued (a broker that failed, a crash after a commit) are drained at most this often
# after any batch, whether or not it parked anything: nothing waits for the next refusal.
DRAIN_INTERVAL_SECONDS = 30.0
# One drain sends at most this many copies (bounds the time a batch's caller waits for it).
DRAIN_MAX_BATCHES = 20

_last_drain = float("-inf")
_drain_lock = threading.Lock()

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


def drain_due(*, parked: bool) -> bool:
    """Whether a committed batch should drain the outbox now: it parked a copy, or the last drain
    of this process is DRAIN_INTERVAL_SECONDS old (so copies a failure left queued go out too)."""
    if not get_settings().dlq_topic:
        return False
    return parked or time.monotonic() - _last_drain >= DRAIN_INTERVAL_SECONDS


def drain(connect: Callable[[], AbstractContextManager[psycopg.Connection]]) -> int:
    """Publish the queued copies batch after batch until none is left (or a batch fails); how many.

    Never raises: the batch that called it committed already, and its callers must hear so; a copy
    that failed stays queued for the next drain. One drain at a time per process.
    """
    global _last_drain
    if not _drain_lock.acquire(blocking=False):
        return 0  # another thread of this process is draining right now
    sent = 0
    try:
        _last_drain = time.monotonic()
        with connect() as conn:
            for _ in range(DRAIN_MAX_BATCHES):
                published = publish_pending(conn)
                sent += published
                if published < PUBLISH_BATCH:
                    break
    except Exception:  # e.g. no pooled connection in time: the copies stay queued
        logger.exception("draining the dead-letter outbox failed; will retry")
    finally:
        _drain_lock.release()
    return sent


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
