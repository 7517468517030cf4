"""Re-drive what the Kafka event source mapping's on-failure queue recorded.

When a batch still fails after `KafkaMaxRetryAttempts`, the event source mapping skips it and
sends an invocation record to the on-failure SQS queue (template.yaml, `IngestFailureQueue`).
For Kafka the record names the batch, not its content (AWS Lambda developer guide, "Capturing
discarded batches for Amazon MSK and self-managed Apache Kafka event sources", SNS and SQS
example)::

    {"requestContext": {"condition": "RetryAttemptsExhausted", ...},
     "KafkaBatchInfo": {"batchSize": 500, "eventSourceArn": "arn:aws:kafka:...",
                        "bootstrapServers": "...",
                        "recordsInfo": {"Topic-0": {"firstRecordOffset": "49601...",
                                                    "lastRecordOffset": "49601...",
                                                    "firstRecordTimestamp": "...",
                                                    "lastRecordTimestamp": "..."}}}}

Each key of `recordsInfo` is "<topic>-<partition>" (the topic may itself contain hyphens: the
partition is after the last one); the offsets are decimal strings. `redrive` reads up to
`max_messages` of them, fetches exactly those offsets from Kafka (assign and seek, no consumer
group, so nothing is committed anywhere), hands them to the ingest handler it is given (the CLI
passes `functions.ingest_kafka.handler.handler`) as the event the mapping would have delivered,
and deletes the message only once the handler returned for all of its records. The event carries
the message's `eventSourceArn` (MSK) or `bootstrapServers` (self-managed) as the mapping's did, so
the ledger recognises records it already decided (parked ones stay parked once, applied ones come
back as duplicates): running it twice, or over a batch the mapping partly applied, changes nothing
twice.

A message is kept (and made visible again at once) when the handler raises, which also stops
the run: the cause is usually still there (PostgreSQL down). It is kept, the run going on, when
it cannot be read as a Kafka failure record or when some of its offsets are no longer in the
topic (retention deleted them before the re-drive): those need an operator's decision.

SNS-to-SQS deliveries (the record wrapped in an SNS notification) are unwrapped.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from common.adapters import kafka_settings as kafka_client
from common.adapters.config import Settings
from common.intake import kafka_records as kafka_batch
from common.operations.on_failure import (
    FailureRecord,
    SkippedRange,
    UnrecognisedMessage,
    parse_failure_record,
)

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
# SQS returns at most 10 messages per receive.
SQS_MAX_PER_RECEIVE = 10
# Long enough to fetch and apply a skipped batch; the message reappears if we die meanwhile.
VISIBILITY_TIMEOUT_SECONDS = 300
FETCH_TIMEOUT_SECONDS = 60.0
MSK_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:kafka:")


@dataclass(frozen=True)
class KeptMessage:
    message_id: str
    reason: str


@dataclass
class RedriveReport:
    """What a run did: messages received and deleted, records handed over, messages kept and why."""

    received: int = 0
    redriven: int = 0
    records: int = 0
    ranges: list[str] = field(default_factory=list)
    kept: list[KeptMessage] = field(default_factory=list)
    stopped: str | None = None

    @property
    def halted(self) -> bool:
        """A handler failed: the run gives back what it still holds (`_one` sets `stopped`)."""
        return self.stopped is not None

    def lines(self) -> list[str]:
        out = [
            f"messages received: {self.received}, re-driven and deleted: {self.redriven}, "
            f"records handed to the ingest handler: {self.records}"
        ]
        out += [f"  re-driven {r}" for r in self.ranges]
        out += [f"  kept {k.message_id}: {k.reason}" for k in self.kept]
        if self.stopped:
            out.append(f"stopped early: {self.stopped}")
        return out


def mapping_event(record: FailureRecord, polled: dict[Any, list[Any]], settings: Settings) -> dict[str, Any]:
    """The event the mapping delivered for these records: MSK with the cluster ARN, else self-managed."""
    servers = record.bootstrap_servers or settings.kafka_bootstrap_servers
    event = kafka_batch.lambda_event(polled, bootstrap_servers=servers)
    arn = record.event_source_arn
    if arn and MSK_ARN.match(arn):
        event["eventSourceArn"] = arn
    else:
        event["eventSource"] = "SelfManagedKafka"
    return event


# --- Kafka ------------------------------------------------------------------------------------------


@dataclass
class Fetched:
    polled: dict[Any, list[Any]]
    gone: list[str]  # offsets of the range no longer in the log


def fetch_range(consumer: Any, span: SkippedRange, *, timeout: float = FETCH_TIMEOUT_SECONDS) -> Fetched:
    """Exactly the records of `span` still in the log (control records and compaction leave gaps)."""
    from kafka import TopicPartition

    tp = TopicPartition(span.topic, span.partition)
    consumer.assign([tp])
    start = consumer.beginning_offsets([tp])[tp]
    end = consumer.end_offsets([tp])[tp]
    gone = []
    if span.first < start:
        gone.append(f"{span.first}..{min(span.last, start - 1)} (before the log's start {start})")
    if span.last >= end:
        gone.append(f"{max(span.first, end)}..{span.last} (beyond the log's end {end})")
    low, high = max(span.first, start), min(span.last, end - 1)
    records: list[Any] = []
    if low <= high:
        consumer.seek(tp, low)
        deadline = time.monotonic() + timeout
        while (consumer.position(tp) or 0) <= high:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fetching {span.describe()} took more than {timeout:.0f}s")
            for record in consumer.poll(timeout_ms=500).get(tp, []):
                if low <= record.offset <= high:
                    records.append(record)
    return Fetched({tp: records} if records else {}, gone)


def _consumer(settings: Settings) -> Any:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        **kafka_client.consumer_config(
            settings,
            "warehouse-redrive",
            group_id=None,
            auto_offset_reset="none",
            allow_auto_create_topics=False,
            request_timeout_ms=30_000,
        )
    )
    kafka_client.disable_topic_auto_creation(consumer)
    return consumer


def _chunks(polled: dict[Any, list[Any]], size: int) -> Iterator[dict[Any, list[Any]]]:
    for tp, records in polled.items():
        for i in range(0, len(records), size):
            yield {tp: records[i : i + size]}


# --- SQS --------------------------------------------------------------------------------------------


def _region_of(queue_url: str) -> str | None:
    match = re.match(r"^https://sqs[.-]([a-z0-9-]+)\.amazonaws\.com", queue_url)
    return match.group(1) if match else None


def _sqs(queue_url: str) -> Any:
    import boto3

    region = _region_of(queue_url)
    return boto3.client("sqs", region_name=region) if region else boto3.client("sqs")


def redrive(
    queue_url: str,
    *,
    max_messages: int,
    settings: Settings,
    handler: Handler,
    sqs: Any = None,
    wait_seconds: int = 1,
) -> RedriveReport:
    """Re-drive up to `max_messages` on-failure records from `queue_url`; see the module docstring."""
    if max_messages < 1:
        raise ValueError("max_messages must be at least 1")
    kafka_client.validate(settings)
    handle = handler
    client = sqs or _sqs(queue_url)
    report = RedriveReport()
    consumer = None
    try:
        while report.received < max_messages and report.stopped is None:
            answer = client.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(SQS_MAX_PER_RECEIVE, max_messages - report.received),
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=VISIBILITY_TIMEOUT_SECONDS,
            )
            messages = answer.get("Messages") or []
            if not messages:
                break
            for message in messages:
                report.received += 1
                if report.halted:  # received in the same call as the failure: give it back at once
                    _release(client, queue_url, message)
                    continue
                if consumer is None:
                    consumer = _consumer(settings)
                _one(client, queue_url, message, consumer, handle, settings, report)
    finally:
        if consumer is not None:
            try:
                consumer.close(autocommit=False)
            except Exception:
                logger.debug("closing the re-drive consumer failed", exc_info=True)
    logger.info("re-drive done: %s", "; ".join(report.lines()))
    return report


def _one(
    client: Any,
    queue_url: str,
    message: dict[str, Any],
    consumer: Any,
    handle: Handler,
    settings: Settings,
    report: RedriveReport,
) -> None:
    message_id = str(message.get("MessageId", "?"))
    try:
        record = parse_failure_record(message.get("Body", ""))
    except UnrecognisedMessage as exc:
        report.kept.append(KeptMessage(message_id, f"not re-driven: {exc}"))
        logger.warning("on-failure message %s kept: %s", message_id, exc)
        return
    gone: list[str] = []
    handed = 0
    try:
        for span in record.ranges:
            fetched = fetch_range(consumer, span)
            gone += [f"{span.topic}-{span.partition} offsets {g}" for g in fetched.gone]
            for chunk in _chunks(fetched.polled, settings.kafka_batch_size):
                handle(mapping_event(record, chunk, settings), None)
                handed += sum(len(r) for r in chunk.values())
            report.ranges.append(
                f"{span.describe()} ({sum(len(r) for r in fetched.polled.values())} records)"
            )
    except Exception as exc:
        report.records += handed
        report.stopped = f"message {message_id}: {type(exc).__name__}: {exc}"
        report.kept.append(KeptMessage(message_id, f"failed, will be retried: {type(exc).__name__}: {exc}"))
        logger.error("re-driving on-failure message %s failed; it stays in the queue: %s", message_id, exc)
        _release(client, queue_url, message)
        return
    report.records += handed
    if gone:
        reason = "incomplete, these records are no longer in Kafka: " + "; ".join(gone)
        report.kept.append(KeptMessage(message_id, reason))
        logger.warning("on-failure message %s kept: %s", message_id, reason)
        return
    client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    report.redriven += 1


def _release(client: Any, queue_url: str, message: dict[str, Any]) -> None:
    """Make a message visible again now, instead of after the visibility timeout."""
    try:
        client.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    except Exception:
        logger.debug("releasing an on-failure message failed", exc_info=True)


__all__ = [
    "FailureRecord",
    "KeptMessage",
    "RedriveReport",
    "SkippedRange",
    "UnrecognisedMessage",
    "fetch_range",
    "mapping_event",
    "parse_failure_record",
    "redrive",
]
