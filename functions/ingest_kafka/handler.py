"""Kafka event source mapping handler (MSK `aws:kafka` and `SelfManagedKafka` shapes alike).

Thin on purpose: parse the trigger, hand the batch to `common.kafka_batch`, shape the answer.
The local poller calls this same function with events of the MSK shape.

Why the answer is always `{"batchItemFailures": []}`: the batch is applied in one transaction,
and every record that can never succeed (not JSON, invalid, another event type, a conflict,
insufficient stock, a tombstone, a value the database refuses) is parked in `rejected_events`
with its identity inside that transaction. No single record is left to retry, so there is no item
failure to report. Transient faults (PostgreSQL unreachable, lost races beyond the bounded
retries) raise instead: the mapping redelivers the whole batch, and a redelivered batch changes
nothing twice (applied events come back as duplicates, a Kafka record is parked once).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aws_lambda_powertools.utilities.data_classes import KafkaEvent

from common.kafka_batch import ingest_kafka_event
from common.observability import lambda_entry, record_kafka_batch

logger = logging.getLogger(__name__)


@lambda_entry("ingest_kafka")
def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    batch = KafkaEvent(event)
    started = time.perf_counter()
    try:
        result = ingest_kafka_event(batch)
    except Exception:
        record_kafka_batch(False, time.perf_counter() - started)
        logger.exception("kafka batch failed, raising so the event source mapping redelivers it")
        raise
    record_kafka_batch(True, result.seconds)
    logger.info("kafka batch applied", extra={"event_source": batch.event_source, **result.summary()})
    return {"batchItemFailures": []}
