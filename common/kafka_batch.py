"""The Kafka ingestion path: a batch of Kafka records in, ledger outcomes out.

Shared by the Lambda handler (MSK / self-managed event source mappings) and, through that same
handler, by the local poller. One batch is one call to `common.service.ingest`, hence one
transaction: either every record of the batch is decided (applied, duplicate or parked in
`rejected_events` with its topic/partition/offset) or nothing is, and the fault propagates so
the whole batch is delivered again. Redelivery is harmless because the ledger turns an applied
event into a duplicate and parks a given Kafka record only once.
"""

from __future__ import annotations

import binascii
import heapq
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes import KafkaEvent

from common import service
from common.config import get_settings
from common.events import IncomingEvent, Origin, parse_event
from common.ledger import Outcome

logger = logging.getLogger(__name__)

ORIGIN_LABEL = "kafka"


@dataclass(frozen=True)
class BatchResult:
    """The decided batch: items and outcomes in the order they were applied."""

    items: list[IncomingEvent]
    outcomes: list[Outcome]
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        """Records per outcome: `applied`, `duplicate`, `rejected_<reason>`."""
        counts: Counter[str] = Counter()
        for outcome in self.outcomes:
            key = outcome.status if outcome.status != "rejected" else f"rejected_{outcome.reason}"
            counts[key] += 1
        return dict(counts)

    @property
    def parked(self) -> list[tuple[IncomingEvent, Outcome]]:
        return [
            (item, outcome)
            for item, outcome in zip(self.items, self.outcomes, strict=True)
            if outcome.status == "rejected"
        ]

    def summary(self) -> dict[str, Any]:
        """One log line's worth: counts by outcome, offsets covered per partition, duration."""
        ranges: dict[str, list[int]] = {}
        for item in self.items:
            key = f"{item.origin.topic}-{item.origin.partition}"
            offset = item.origin.offset if item.origin.offset is not None else -1
            low_high = ranges.setdefault(key, [offset, offset])
            low_high[0] = min(low_high[0], offset)
            low_high[1] = max(low_high[1], offset)
        return {
            "records": len(self.items),
            "outcomes": self.counts,
            "offsets": {key: f"{low}-{high}" for key, (low, high) in sorted(ranges.items())},
            "parked": [
                {"origin": item.origin.describe(), "reason": outcome.reason}
                for item, outcome in self.parked[:20]
            ],
            "seconds": round(self.seconds, 4),
        }


def _invalid(raw: bytes, origin: Origin, message: str, kind: str) -> IncomingEvent:
    return IncomingEvent(raw, origin, errors=[{"field": "value", "message": message, "type": kind}])


def _b64_or_text(value: Any) -> bytes | None:
    """A base64 field's bytes; a field that is not base64 is kept as its text (it still identifies)."""
    if value is None:
        return None
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError, TypeError):
        return (value if isinstance(value, str) else str(value)).encode("utf-8", "replace")


def cluster_of(event: Mapping[str, Any]) -> str | None:
    """The cluster a Lambda Kafka event was read from: the MSK cluster ARN, else the bootstrap servers."""
    arn = event.get("eventSourceArn")
    if isinstance(arn, str) and arn:
        return arn
    servers = event.get("bootstrapServers")
    if isinstance(servers, str) and servers.strip():
        return ",".join(sorted(s.strip() for s in servers.split(",") if s.strip()))
    return None


def record_to_incoming(record: Mapping[str, Any], cluster: str | None = None) -> IncomingEvent:
    """One record of the Lambda Kafka event (base64 `value`) as an `IncomingEvent`; never raises.

    A tombstone (value absent or null) and a value that is not base64 cannot ever become a
    movement, so they come back invalid, to be parked like any other bad payload.
    """
    origin = Origin.kafka(
        str(record["topic"]),
        int(record["partition"]),
        int(record["offset"]),
        cluster=cluster,
        key=_b64_or_text(record.get("key")),
    )
    value = record.get("value")
    if value is None:
        return _invalid(b"", origin, "tombstone: the record has no value", "missing")
    try:
        # Strict and C-fast: ~5 us a record, 5x cheaper than base64.b64decode(validate=True).
        raw = binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError, TypeError):
        raw_text = value if isinstance(value, str) else str(value)
        return _invalid(raw_text.encode("utf-8", "replace"), origin, "value is not base64", "base64")
    return parse_event(raw, origin)


def ordered_records(records: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[Mapping[str, Any]]:
    """The records of all partitions, each partition in offset order, merged by timestamp.

    Kafka orders records only within a partition; merging the partitions by record timestamp
    (instead of partition after partition) keeps a restock and a departure that landed in
    different partitions of the same batch in the order they were produced, which avoids
    refusing that departure for insufficient stock.
    """
    chunks = [sorted(chunk, key=lambda r: int(r["offset"])) for chunk in records.values() if chunk]
    if len(chunks) == 1:
        return list(chunks[0])
    return list(heapq.merge(*chunks, key=lambda r: int(r.get("timestamp") or 0)))


def ingest_records(records: Iterable[Mapping[str, Any]], cluster: str | None = None) -> BatchResult:
    """Decode and validate every record, then apply them all in one transaction.

    Database faults (unreachable, lost races beyond the bounded retries) propagate: the caller
    must fail the batch so it is redelivered. Everything after the commit (metrics, dead-letter
    topic) is best effort and never raises.
    """
    started = time.perf_counter()
    items = [record_to_incoming(record, cluster) for record in records]
    outcomes = service.ingest(items)
    result = BatchResult(items, outcomes, time.perf_counter() - started)
    _record_metrics(outcomes)
    dlq_topic = get_settings().dlq_topic
    if dlq_topic and result.parked:
        publish_dead_letters(result.parked, dlq_topic)
    return result


def ingest_kafka_event(event: KafkaEvent) -> BatchResult:
    """The whole Lambda Kafka event (MSK or self-managed) as one batch."""
    return ingest_records(ordered_records(event["records"]), cluster_of(event))


def _record_metrics(outcomes: Sequence[Outcome]) -> None:
    """Prometheus counters when `common.metrics` is there; never fails an applied batch."""
    try:
        from common.metrics import record_outcomes  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return
    try:
        record_outcomes(outcomes, ORIGIN_LABEL)
    except Exception:  # metrics must not turn a committed batch into a redelivery
        logger.exception("recording outcome metrics failed")


# --- dead-letter topic --------------------------------------------------------------------------

_producer: Any = None
_producer_lock = threading.Lock()


def _dlq_producer() -> Any:
    """The process-wide producer for DLQ_TOPIC, created on first parked record."""
    global _producer
    if _producer is None:
        with _producer_lock:
            if _producer is None:
                from kafka import KafkaProducer

                # (kafka branch) security (TLS, SASL, MSK IAM) as for every client: common.kafka_client
                from common.kafka_client import producer_config

                _producer = KafkaProducer(
                    **producer_config(
                        get_settings(),
                        "warehouse-dlq",
                        acks="all",
                        linger_ms=5,
                        max_block_ms=5000,
                        request_timeout_ms=10000,
                    )
                )
    return _producer


def close_dlq_producer() -> None:
    global _producer
    with _producer_lock:
        if _producer is not None:
            try:
                _producer.close(timeout=5)
            except Exception:  # closing is best effort
                logger.warning("closing the dead-letter producer failed", exc_info=True)
            _producer = None


def publish_dead_letters(parked: Sequence[tuple[IncomingEvent, Outcome]], topic: str) -> int:
    """Copy parked records to `topic` (value = original bytes, reason/detail/origin headers).

    Best effort: the record is already safe in `rejected_events`, so a failure is logged, not
    raised. Keyed by the record's origin so a redelivered batch's copies can be deduplicated
    (and compacted). Returns how many were sent.
    """
    try:
        producer = _dlq_producer()
        for item, outcome in parked:
            producer.send(
                topic,
                key=item.origin.describe().encode(),
                value=item.raw,
                headers=[
                    ("reason", (outcome.reason or "").encode()),
                    ("detail", (outcome.detail or "")[:4000].encode("utf-8", "replace")),
                    ("origin", item.origin.describe().encode()),
                ],
            )
        producer.flush(timeout=10)
    except Exception:
        logger.exception("producing %d parked record(s) to dead-letter topic %s failed", len(parked), topic)
        return 0
    return len(parked)


__all__ = [
    "BatchResult",
    "close_dlq_producer",
    "ingest_kafka_event",
    "ingest_records",
    "ordered_records",
    "publish_dead_letters",
    "record_to_incoming",
]
