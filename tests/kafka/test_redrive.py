"""common.operations.redrive: the on-failure queue's records fetched again from Kafka and re-applied.

SQS is mocked by moto (an AWS API); Kafka and PostgreSQL are the real ones. The messages are
shaped as AWS documents the SNS/SQS on-failure record of a Kafka event source mapping
(`KafkaBatchInfo.recordsInfo["<topic>-<partition>"]`, offsets as decimal strings).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import moto
import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition

from common.adapters.config import get_settings
from common.operations.redrive import UnrecognisedMessage, parse_failure_record, redrive
from functions.ingest_kafka.handler import handler
from tools.kafka_helpers import BOOTSTRAP, applied_count, envelope, rejected_for, stock_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

REGION = "eu-west-1"
MSK_ARN = "arn:aws:kafka:eu-west-1:123456789012:cluster/warehouse/5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c-2"
T0 = datetime(2025, 2, 18, 8, 0, tzinfo=UTC)


def failure_record(ranges: dict[str, tuple[int, int]], *, arn: str | None = MSK_ARN) -> str:
    """An on-failure record as the mapping sends it to SQS (the AWS documentation's example shape)."""
    info: dict[str, Any] = {
        "batchSize": sum(last - first + 1 for first, last in ranges.values()),
        "bootstrapServers": BOOTSTRAP,
        "payloadSize": 2039,
        "recordsInfo": {
            key: {
                "firstRecordOffset": str(first),
                "lastRecordOffset": str(last),
                "firstRecordTimestamp": "2025-02-18T08:00:00.000Z",
                "lastRecordTimestamp": "2025-02-18T08:00:05.000Z",
            }
            for key, (first, last) in ranges.items()
        },
    }
    if arn:
        info["eventSourceArn"] = arn
    return json.dumps(
        {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:warehouse-stock-ingest",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": 11,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": "2025-02-18T08:00:06.021Z",
            "KafkaBatchInfo": info,
        }
    )


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with moto.mock_aws():
        client = boto3.client("sqs", region_name=REGION)
        yield client, client.create_queue(QueueName="warehouse-stock-ingest-on-failure")["QueueUrl"]


def in_queue(client: Any, url: str) -> int:
    attributes = client.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def place(topic: str, partition: int, values: list[bytes]) -> list[int]:
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=0)
    try:
        futures = [producer.send(topic, value=v, partition=partition) for v in values]
        producer.flush(30)
        return [f.get(30).offset for f in futures]
    finally:
        producer.close(10)


def arrival(w: uuid.UUID, p: uuid.UUID, quantity: int, minute: int = 0) -> bytes:
    return envelope(uuid.uuid4(), w, p, "arrival", quantity, T0 + timedelta(minutes=minute))


def test_exactly_the_skipped_offsets_are_applied_and_the_message_deleted(
    database_url: str, topic: str, sqs: tuple[Any, str]
) -> None:
    client, url = sqs
    inside, outside, other, product = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert place(
        topic,
        0,
        [
            arrival(outside, product, 100),  # 0: before the skipped batch
            arrival(outside, product, 100),  # 1
            arrival(inside, product, 7, 1),  # 2: skipped ...
            b"\x00 not an envelope",  # 3
            arrival(inside, product, 3, 2),  # 4: ... to here
            arrival(outside, product, 100),  # 5: after it
        ],
    ) == [0, 1, 2, 3, 4, 5]
    assert place(topic, 1, [arrival(other, product, 4), arrival(other, product, 50)]) == [0, 1]
    body = failure_record({f"{topic}-0": (2, 4), f"{topic}-1": (0, 0)})
    client.send_message(QueueUrl=url, MessageBody=body)

    report = redrive(url, max_messages=10, settings=get_settings(), handler=handler)

    assert (report.received, report.redriven, report.records, report.kept) == (1, 1, 4, [])
    assert in_queue(client, url) == 0
    keys = [(inside, product), (outside, product), (other, product)]
    assert stock_of(database_url, keys) == {keys[0]: 10, keys[1]: 0, keys[2]: 4}
    assert [(p, o, r) for p, o, r, _ in rejected_for(database_url, topic)] == [(0, 3, "invalid")]
    with psycopg.connect(database_url) as conn:
        clusters = conn.execute(
            "SELECT DISTINCT kafka_cluster FROM movement_events WHERE kafka_topic = %s", (topic,)
        ).fetchall()
    assert clusters == [(MSK_ARN,)]  # the records keep the identity the mapping gave them

    # The same message again (SQS delivers at least once; an operator re-runs): nothing twice.
    client.send_message(QueueUrl=url, MessageBody=body)
    again = redrive(url, max_messages=10, settings=get_settings(), handler=handler)
    assert (again.redriven, again.records) == (1, 4)
    assert stock_of(database_url, keys) == {keys[0]: 10, keys[1]: 0, keys[2]: 4}
    assert applied_count(database_url, topic) == 3 and len(rejected_for(database_url, topic)) == 1


def test_a_failing_handler_keeps_the_message_and_stops(
    database_url: str, topic: str, sqs: tuple[Any, str]
) -> None:
    client, url = sqs
    w, product = uuid.uuid4(), uuid.uuid4()
    place(topic, 2, [arrival(w, product, 5)])
    client.send_message(QueueUrl=url, MessageBody=failure_record({f"{topic}-2": (0, 0)}))
    client.send_message(QueueUrl=url, MessageBody=failure_record({f"{topic}-2": (0, 0)}))

    def down(event: dict[str, Any], context: Any) -> Any:
        raise ConnectionError("PostgreSQL is down")

    report = redrive(url, max_messages=10, settings=get_settings(), handler=down)

    assert report.redriven == 0 and report.stopped and "PostgreSQL is down" in report.stopped
    assert in_queue(client, url) == 2
    visible = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert len(visible.get("Messages", [])) == 2  # given back at once, not after the visibility timeout
    assert stock_of(database_url, [(w, product)]) == {(w, product): 0}


def test_messages_that_cannot_be_redriven_whole_are_kept_with_the_reason(
    database_url: str, topic: str, sqs: tuple[Any, str]
) -> None:
    client, url = sqs
    w, product = uuid.uuid4(), uuid.uuid4()
    place(topic, 0, [arrival(w, product, 1, i) for i in range(4)])
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:  # retention, as it were: offsets 0 and 1 are gone
        admin.delete_records({TopicPartition(topic, 0): 2})
    finally:
        admin.close()
    client.send_message(QueueUrl=url, MessageBody=failure_record({f"{topic}-0": (0, 3)}))
    client.send_message(QueueUrl=url, MessageBody=json.dumps({"hello": "world"}))

    report = redrive(url, max_messages=10, settings=get_settings(), handler=handler)

    assert (report.received, report.redriven, report.records) == (2, 0, 2)
    reasons = sorted(k.reason for k in report.kept)
    assert reasons[0].startswith("incomplete") and "offsets 0..1 (before the log's start 2)" in reasons[0]
    assert reasons[1].startswith("not re-driven: no KafkaBatchInfo")
    assert stock_of(database_url, [(w, product)]) == {(w, product): 2}  # what is still there was applied
    assert in_queue(client, url) == 2


# --- the message format -------------------------------------------------------------------------------


def test_topic_names_with_hyphens_and_sns_wrapping_are_understood() -> None:
    body = failure_record({"warehouse-movements-2": (10, 12)}, arn=None)
    wrapped = json.dumps({"Type": "Notification", "MessageId": "m", "Message": body})
    record = parse_failure_record(wrapped)
    assert [(r.topic, r.partition, r.first, r.last) for r in record.ranges] == [
        ("warehouse-movements", 2, 10, 12)
    ]
    assert record.event_source_arn is None and record.bootstrap_servers == BOOTSTRAP
    assert record.condition == "RetryAttemptsExhausted"


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"KafkaBatchInfo": {"recordsInfo": {}}}),
        json.dumps(
            {"KafkaBatchInfo": {"recordsInfo": {"t-x": {"firstRecordOffset": "1", "lastRecordOffset": "2"}}}}
        ),
        json.dumps(
            {"KafkaBatchInfo": {"recordsInfo": {"t-0": {"firstRecordOffset": "5", "lastRecordOffset": "2"}}}}
        ),
        json.dumps({"KinesisBatchInfo": {"shardId": "shardId-000000000000"}}),
    ],
)
def test_other_messages_are_refused_by_name(body: str) -> None:
    with pytest.raises(UnrecognisedMessage):
        parse_failure_record(body)
