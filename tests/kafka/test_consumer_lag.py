"""The poller's lag in `consumer_lag`, for the console: one row per partition, best effort."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from common.adapters.config import get_settings
from functions.ingest_kafka.handler import handler
from functions.local_app.poller import Poller
from tools.kafka_helpers import applied_count, committed_and_end, movement_stream, produce, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]


def lag_rows(url: str, group: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            """
            SELECT topic, partition, committed_offset, end_offset, lag, consumer, reported_at
            FROM consumer_lag WHERE group_id = %s ORDER BY partition
            """,
            (group,),
        ).fetchall()


@contextmanager
def slow_poller(topic: str, group: str, pause: float) -> Iterator[Poller]:
    """Batches of 20, each held `pause` seconds: the backlog shrinks slowly enough to be seen."""

    def slowly(event: dict[str, Any], context: Any) -> Any:
        time.sleep(pause)
        return handler(event, context)

    settings = get_settings().model_copy(
        update=dict(kafka_topic=topic, kafka_group_id=group, kafka_batch_size=20)
    )
    poller = Poller(settings, handler=slowly, lag_interval=0.2)
    poller.start()
    try:
        yield poller
    finally:
        assert poller.stop(30)


def test_the_lag_of_every_partition_is_upserted_while_the_backlog_drains(
    database_url: str, topic: str, group: str
) -> None:
    stream = movement_stream(150, warehouses=6, products=2)  # 12 restocks + 300 halves
    produce(topic, stream.records)
    seen_behind = False
    with slow_poller(topic, group, pause=0.05) as poller:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and applied_count(database_url, topic) < stream.events:
            rows = lag_rows(database_url, group)
            seen_behind = seen_behind or any(row[4] > 0 for row in rows)
            time.sleep(0.1)
        wait_until(lambda: poller.lag == 0, 30, what="lag 0")
        committed, end = committed_and_end(group, topic)
        wait_until(
            lambda: (
                [(r[2], r[3], r[4]) for r in lag_rows(database_url, group)]
                == [(committed.get(p), end[p], 0) for p in range(3)]
            ),
            30,
            what="consumer_lag at the committed end of every partition",
        )
        consumer = poller.consumer_name
    assert seen_behind, "no row ever showed a backlog"
    rows = lag_rows(database_url, group)
    assert [(r[0], r[1]) for r in rows] == [(topic, p) for p in range(3)]  # one row per partition
    assert {r[5] for r in rows} == {consumer} and ":" in consumer
    assert sum(r[3] for r in rows) == len(stream.records)


def test_a_failing_lag_write_never_fails_a_batch(database_url: str, topic: str, group: str) -> None:
    """consumer_lag locked by someone else: the upsert times out, the events are applied anyway."""
    stream = movement_stream(30, warehouses=3, products=1)
    produce(topic, stream.records)
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE consumer_lag IN ACCESS EXCLUSIVE MODE")  # held until rollback
        with slow_poller(topic, group, pause=0.0) as poller:
            wait_until(lambda: applied_count(database_url, topic) == stream.events, 90, what="all applied")
            wait_until(lambda: poller.lag == 0, 30, what="lag 0")
            committed, end = committed_and_end(group, topic)
            assert committed == {p: e for p, e in end.items() if e}  # every record's offset committed
            assert poller.state == "running" and poller.failures == 0
        blocker.rollback()
    assert lag_rows(database_url, group) == []  # every write failed, and nothing else did
