"""Several pollers in one consumer group on the 3-partition topic (issue 11).

Three standalone pollers (`python -m functions.local_app.poller`) share the group while a
realistic stream is produced: restocks, then transfers between warehouses, keyed by warehouse
(so each stock's events keep their order in one partition), with 8 % of the records sent again
a little later, as a producer retrying after a lost acknowledgement would. One poller is killed
with SIGKILL mid-stream (its partition moves after the session timeout, from the last committed
offset: a redelivery), a fourth joins mid-stream (the partitions are handed round again). Every
event must be applied once and every stock must be exactly what the stream implies.
"""

from __future__ import annotations

import random
import re
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tools import procs
from tools.kafka_helpers import (
    BOOTSTRAP,
    applied_count,
    committed_and_end,
    delivered_count,
    fast_producer,
    group_description,
    movement_stream,
    partition_for,
    rejected_for,
    stock_of,
    wait_until,
)

pytestmark = [pytest.mark.integration]

REDELIVERED = 0.08
PRODUCE_SECONDS = 24.0


def with_redeliveries(
    records: list[tuple[bytes, bytes]], share: float, seed: int
) -> list[tuple[bytes, bytes]]:
    """`records` with a `share` of them sent again 1 to 300 records later (same key, same bytes)."""
    rng = random.Random(seed)
    out = list(records)
    for index in sorted(rng.sample(range(len(records)), int(len(records) * share)), reverse=True):
        out.insert(min(len(out), index + 1 + rng.randint(1, 300)), records[index])
    return out


def produce_steadily(
    topic: str, records: list[tuple[bytes, bytes]], seconds: float, done: threading.Event
) -> None:
    """The records spread evenly over `seconds`, in order, so the group works while they arrive."""
    producer = fast_producer(linger_ms=5)
    began = time.monotonic()
    try:
        for i, (key, value) in enumerate(records):
            producer.send(topic, key=key, value=value, partition=partition_for(key, 3))
            if i % 200 == 0:
                ahead = began + seconds * i / len(records) - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        producer.flush(60)
    finally:
        producer.close(10)
        done.set()


def test_three_pollers_one_killed_one_added_apply_every_event_once(
    database_url: str, topic: str, group: str, tmp_path: Path
) -> None:
    stream = movement_stream(6_000, warehouses=12, products=5, seed=23)  # 60 restocks + 12,000 halves
    records = with_redeliveries(stream.records, REDELIVERED, seed=5)
    env = procs.base_env(
        KAFKA_BOOTSTRAP_SERVERS=BOOTSTRAP,
        KAFKA_TOPIC=topic,
        KAFKA_GROUP_ID=group,
        KAFKA_BATCH_SIZE="500",
        LOG_LEVEL="INFO",
        DLQ_TOPIC="",
    )
    logs = [tmp_path / f"poller-{n}.log" for n in range(4)]
    pollers = [procs.start_poller(env, logs[n]) for n in range(3)]
    produced = threading.Event()
    producing = threading.Thread(
        target=produce_steadily, args=(topic, records, PRODUCE_SECONDS, produced), daemon=True
    )
    try:
        wait_until(
            lambda: len(group_description(group)["members"]) == 3, 60, what="three members in the group"
        )
        producing.start()
        wait_until(
            lambda: applied_count(database_url, topic) >= stream.events * 0.25, 60, what="a quarter applied"
        )
        procs.kill9(pollers[0])  # no commit, no LeaveGroup: its partition waits for the session timeout
        at_kill = applied_count(database_url, topic)
        wait_until(
            lambda: applied_count(database_url, topic) >= stream.events * 0.55, 90, what="55 % applied"
        )
        pollers.append(procs.start_poller(env, logs[3]))
        at_join = applied_count(database_url, topic)
        assert at_join < stream.events, "the stream was over before the fourth poller joined"
        wait_until(lambda: produced.is_set(), 60, what="the producer done")
        wait_until(
            lambda: applied_count(database_url, topic) == stream.events,
            90,
            interval=0.5,
            what=f"all {stream.events} events applied",
        )

        def caught_up() -> bool:
            committed, end = committed_and_end(group, topic)
            return all(committed.get(p, 0) >= e for p, e in end.items())

        wait_until(caught_up, 60, what="every partition committed to its end")
        members = group_description(group)["members"]
        assert len(members) == 3, members  # the three live ones: the killed member was dropped
    finally:
        for proc in pollers[1:]:
            procs.stop(proc, timeout=30)
        procs.stop(pollers[0])
    assert [proc.returncode for proc in pollers[1:]] == [0, 0, 0], [procs.tail(log) for log in logs]
    assert at_kill < stream.events and at_join < stream.events

    assert applied_count(database_url, topic) == stream.events
    with psycopg.connect(database_url) as conn:
        halves = conn.execute(
            "SELECT movement_id, event FROM movement_events WHERE kafka_topic = %s", (topic,)
        ).fetchall()
    expected = {(m, "arrival") for m in stream.restocks}
    expected |= {(m, half) for m in stream.movements for half in ("departure", "arrival")}
    assert set(halves) == expected and len(halves) == len(expected)
    assert stock_of(database_url, stream.stock) == dict(stream.stock)
    assert delivered_count(database_url, stream.movements) == len(stream.movements)
    assert rejected_for(database_url, topic) == []  # redelivered copies are duplicates, not refusals
    ours = [r for path in logs[1:] for r in log_records(path.read_text(errors="replace")) if "Traceback" in r]
    assert ours == [], ours


def log_records(text: str) -> list[str]:
    """The log's records (a traceback stays with its line) that kafka-python did not write.

    kafka-python logs some of its own network errors with a traceback (a socket read racing
    its close at shutdown); those are its business, not the poller's.
    """
    records = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ )", text)
    return [r for r in records if not (r.split(" ", 4)[3:4] or [""])[0].startswith("kafka.")]
