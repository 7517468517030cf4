"""The poller's apply-ahead path (`KAFKA_APPLY_AHEAD=true`) on the real broker and PostgreSQL.

Batch N commits on a thread while batch N+1 is polled and decoded. When N fails, neither N nor
N+1 may be skipped (both were read past), and when N was applied but its answer lost, the
redelivery must change nothing. The failures are injected around the real apply, so the ledger
and the database are the real ones.
"""

from __future__ import annotations

import itertools
import threading

import psycopg
import pytest

from common.adapters.config import Settings, get_settings
from common.intake import kafka_records as kafka_batch
from common.intake.apply_ahead import ApplyAhead
from common.intake.kafka_records import BatchResult, DecodedBatch
from functions.local_app.poller import Poller
from tools.kafka_helpers import (
    applied_count,
    committed_and_end,
    delivered_count,
    movement_stream,
    produce,
    rejected_for,
    stock_of,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]


class FlakyApply:
    """The real apply, but some calls fail before it (nothing applied) or after it (answer lost)."""

    def __init__(self, fail_before: set[int], fail_after: set[int]) -> None:
        self.fail_before, self.fail_after = fail_before, fail_after
        self.calls = itertools.count(1)
        self.lock = threading.Lock()

    def __call__(self, batch: DecodedBatch) -> BatchResult:
        with self.lock:
            call = next(self.calls)
        if call in self.fail_before:
            raise psycopg.OperationalError(f"injected: PostgreSQL unreachable (call {call})")
        result = kafka_batch.apply_decoded(batch)
        if call in self.fail_after:
            raise psycopg.OperationalError(f"injected: connection lost after the commit (call {call})")
        return result


def caught_up(group: str, topic: str) -> bool:
    committed, end = committed_and_end(group, topic)
    return all(committed.get(p, 0) >= e for p, e in end.items())


def test_apply_ahead_only_when_asked_for(topic: str, group: str) -> None:
    settings = get_settings().model_copy(update=dict(kafka_topic=topic, kafka_group_id=group))
    assert not settings.kafka_apply_ahead, "the default: the Lambda handler, batch after batch"
    assert Poller(settings)._ahead is None
    assert Poller(settings.model_copy(update=dict(kafka_apply_ahead=True)))._ahead is not None


def ahead_settings(**update: object) -> Settings:
    return get_settings().model_copy(update=dict(kafka_apply_ahead=True, **update))


def test_failed_and_half_failed_batches_in_flight_lose_nothing_and_count_nothing_twice(
    database_url: str, topic: str, group: str
) -> None:
    stream = movement_stream(250, warehouses=6, products=2, copies=2)
    produce(topic, stream.records)
    settings = ahead_settings(
        kafka_topic=topic, kafka_group_id=group, kafka_batch_size=40, kafka_poll_timeout_ms=50
    )
    poller = Poller(settings, lag_interval=0.5, max_backoff=0.05)
    flaky = FlakyApply(fail_before={2, 3, 9}, fail_after={5, 12})
    assert poller._ahead is not None
    poller._ahead.close()
    poller._ahead = ApplyAhead(flaky)
    poller.start()
    try:
        wait_until(lambda: caught_up(group, topic), 120, what="the whole topic committed")
    finally:
        assert poller.stop(30), "the poller did not stop"

    assert poller.failures == 5, "every injected failure was seen and retried"
    assert applied_count(database_url, topic) == stream.events, "each event applied exactly once"
    assert stock_of(database_url, stream.stock) == dict(stream.stock)
    assert delivered_count(database_url, stream.movements) == len(stream.movements)
    assert rejected_for(database_url, topic) == []


def test_stop_commits_the_batch_in_flight(database_url: str, topic: str, group: str) -> None:
    """A graceful stop waits for the batch being applied and commits it: nothing read twice on restart."""
    stream = movement_stream(30, warehouses=2, products=1)
    produce(topic, stream.records, partitions=1)
    release = threading.Event()
    applied: list[int] = []

    def slow_apply(batch: DecodedBatch) -> BatchResult:
        release.wait(30)
        applied.append(len(batch.items))
        return kafka_batch.apply_decoded(batch)

    settings = ahead_settings(kafka_topic=topic, kafka_group_id=group)
    poller = Poller(settings, lag_interval=0.5)
    assert poller._ahead is not None
    poller._ahead.close()
    poller._ahead = ApplyAhead(slow_apply)
    poller.start()
    wait_until(lambda: poller._ahead is not None and poller._ahead.busy, 60, what="a batch in flight")
    poller.request_stop()
    release.set()
    assert poller.stop(30), "the poller did not stop"
    assert sum(applied) == stream.events
    assert caught_up(group, topic), "the batch in flight was committed on the way out"
    assert applied_count(database_url, topic) == stream.events
