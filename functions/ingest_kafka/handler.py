"""Kafka event source mapping handler (MSK `aws:kafka` and `SelfManagedKafka` shapes alike).

Thin on purpose: parse the trigger, hand the batch to `common.intake.kafka_records`, shape the answer.
The local poller calls this same function with events of the MSK shape.

Why the answer is always `{"batchItemFailures": []}`: the batch is applied in one transaction,
and every record that can never succeed (not JSON, invalid, another event type, a conflict,
insufficient stock, a tombstone, a value the database refuses) is parked in `rejected_events`
with its identity inside that transaction. No single record is left to retry, so there is no item
failure to report. Transient faults (PostgreSQL unreachable, lost races beyond the bounded
retries, a lock or statement timeout) raise instead: the mapping redelivers the whole batch, and
a redelivered batch changes nothing twice (applied events come back as duplicates, a Kafka record
is parked once). In Lambda an unreachable PostgreSQL is first waited for, up to
INGEST_DB_WAIT_SECONDS (`common.intake.outage`), and a failed batch reports the age of its oldest record.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools.utilities.data_classes import KafkaEvent

from common.adapters.observability import lambda_entry, record_failed_batch_age
from common.intake.kafka_records import ingest_kafka_event
from common.intake.outage import oldest_record_age_seconds, ride_out, wait_budget_seconds

logger = logging.getLogger(__name__)


@lambda_entry("ingest_kafka")
def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    batch = KafkaEvent(event)
    try:
        # In Lambda, PostgreSQL being unreachable is waited for first (common.intake.outage).
        result = ride_out(lambda: ingest_kafka_event(batch), wait_budget_seconds(context))
    except Exception:
        record_failed_batch_age(oldest_record_age_seconds(event))
        logger.exception("kafka batch failed, raising so the event source mapping redelivers it")
        raise
    logger.info("kafka batch applied", extra={"event_source": batch.event_source, **result.summary()})
    return {"batchItemFailures": []}
