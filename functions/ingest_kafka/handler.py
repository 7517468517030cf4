"""Kafka event source mapping handler (MSK `aws:kafka` and `SelfManagedKafka` shapes alike).

Thin on purpose: parse the trigger, hand the batch to `common.kafka_batch`, shape the answer.
The local poller calls this same function with events of the MSK shape.

Why the answer is always `{"batchItemFailures": []}`: the batch is applied in one transaction,
and every record that can never succeed (not JSON, invalid, another event type, a conflict,
insufficient stock, a tombstone) is parked in `rejected_events` with its topic/partition/offset
inside that transaction. No single record is left to retry, so there is no item failure to
report. Transient faults (PostgreSQL unreachable, serialization failures beyond the bounded
retries) raise instead: the mapping redelivers the whole batch, and a redelivered batch changes
nothing twice (applied events come back as duplicates, a Kafka record is parked once).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.data_classes import KafkaEvent

from common.kafka_batch import ingest_kafka_event

# The deployment names service and namespace (POWERTOOLS_*); the defaults keep local runs valid.
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "warehouse-stock"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "WarehouseStock"))
# Metrics switched off (the local poller) leave the set empty on purpose; no warning per batch.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    batch = KafkaEvent(event)
    try:
        result = ingest_kafka_event(batch)
    except Exception:
        _metric("KafkaBatchFailures", 1)
        logger.exception("kafka batch failed, raising so the event source mapping redelivers it")
        raise
    logger.info("kafka batch applied", extra={"event_source": batch.event_source, **result.summary()})
    _metric("KafkaRecords", len(result.items))
    for outcome, count in result.counts.items():
        _metric(f"KafkaRecords_{outcome}", count)
    _metric("KafkaBatchSeconds", result.seconds, MetricUnit.Seconds)
    return {"batchItemFailures": []}


def _metric(name: str, value: float, unit: MetricUnit = MetricUnit.Count) -> None:
    # With POWERTOOLS_METRICS_DISABLED (the local poller) Powertools skips the flush but keeps
    # the values, and prints them anyway once 100 pile up: do not add them at all.
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=unit, value=value)
