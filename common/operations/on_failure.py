"""The on-failure record of a Kafka event source mapping: which offsets of which partitions a
skipped batch held (AWS Lambda developer guide, "Capturing discarded batches for Amazon MSK and
self-managed Apache Kafka event sources"). Parsing only; `common.operations.redrive` acts on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


class UnrecognisedMessage(ValueError):
    """The message is not a Kafka event source mapping's failure record."""


@dataclass(frozen=True)
class SkippedRange:
    """One partition's share of a skipped batch: offsets `first` to `last`, both included."""

    topic: str
    partition: int
    first: int
    last: int

    def describe(self) -> str:
        return f"{self.topic}-{self.partition}@{self.first}..{self.last}"


@dataclass(frozen=True)
class FailureRecord:
    ranges: list[SkippedRange]
    event_source_arn: str | None
    bootstrap_servers: str | None
    condition: str | None


def parse_failure_record(body: str) -> FailureRecord:
    """The skipped ranges of one on-failure message (an SNS notification around it is unwrapped)."""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        raise UnrecognisedMessage("the body is not JSON") from None
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        return parse_failure_record(doc["Message"])
    info = doc.get("KafkaBatchInfo") if isinstance(doc, dict) else None
    if not isinstance(info, dict):
        raise UnrecognisedMessage("no KafkaBatchInfo: not a Kafka event source mapping failure record")
    records_info = info.get("recordsInfo")
    if not isinstance(records_info, dict) or not records_info:
        raise UnrecognisedMessage("KafkaBatchInfo has no recordsInfo")
    ranges = []
    for key, span in records_info.items():
        topic, _, partition = str(key).rpartition("-")
        try:
            first, last = int(span["firstRecordOffset"]), int(span["lastRecordOffset"])
            part = int(partition)
        except (KeyError, TypeError, ValueError):
            raise UnrecognisedMessage(f"recordsInfo[{key!r}] has no usable partition or offsets") from None
        if not topic or first < 0 or last < first:
            raise UnrecognisedMessage(f"recordsInfo[{key!r}] is not a topic-partition with an offset range")
        ranges.append(SkippedRange(topic, part, first, last))
    context = doc.get("requestContext") if isinstance(doc.get("requestContext"), dict) else {}
    return FailureRecord(
        sorted(ranges, key=lambda r: (r.topic, r.partition, r.first)),
        info.get("eventSourceArn") if isinstance(info.get("eventSourceArn"), str) else None,
        info.get("bootstrapServers") if isinstance(info.get("bootstrapServers"), str) else None,
        context.get("condition"),
    )
