"""A poller cannot wedge: an undecodable batch pauses its partition only; a stuck loop is restarted.

Real processes, the real broker and PostgreSQL. The undecodable batch is a zstd (then an lz4)
batch read by a poller process whose kafka-python has no zstd/lz4 library
(tests/kafka/poller_without_codecs.py): what happened to every poller before the codecs were
dependencies. The wedge is a `poll()` that never returns (tests/kafka/wedging_poller.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from cli.main import main as cli
from common.adapters.config import PROJECT_ROOT, get_settings
from functions.local_app.serve import Supervisor
from tools.kafka_helpers import (
    BOOTSTRAP,
    create_topic,
    delete_group,
    delete_topic,
    envelope,
    stock_of,
    unique,
    wait_until,
)

pytestmark = [pytest.mark.integration]

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
Key = tuple[uuid.UUID, uuid.UUID]


@pytest.fixture
def topic() -> Iterator[str]:
    name = unique("undecodable")
    create_topic(name, 3)
    yield name
    delete_topic(name)


@pytest.fixture
def group() -> Iterator[str]:
    name = unique("undecodable-group")
    yield name
    delete_group(name)


def arrivals(n: int, quantity: int = 5) -> tuple[list[Key], list[bytes]]:
    keys = [(uuid.uuid4(), uuid.uuid4()) for _ in range(n)]
    return keys, [envelope(uuid.uuid4(), w, p, "arrival", quantity, T0) for w, p in keys]


def produce(topic: str, partition: int, values: list[bytes], codec: str | None = None) -> int:
    """One batch (linger) on one partition; the offset of its first record."""
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, compression_type=codec, linger_ms=100, acks="all")
    try:
        futures = [producer.send(topic, value=v, partition=partition) for v in values]
        producer.flush(30)
        return int(futures[0].get(30).offset)
    finally:
        producer.close(10)


def applied(database_url: str, keys: list[Key], quantity: int = 5) -> bool:
    return all(q == quantity for q in stock_of(database_url, keys).values())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ready() -> dict[str, Any]:
    from functions.local_app.main import app

    response = TestClient(app).get("/ready")  # no lifespan: no poller of its own, the reports
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def paused_metric(metrics_dir: Path, topic: str, partition: int) -> float:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    for family in registry.collect():
        if family.name == "warehouse_poller_paused_partitions":
            for sample in family.samples:
                if sample.labels == {"topic": topic, "partition": str(partition)}:
                    return float(sample.value)
    return 0.0


def partition_report(topic: str, partition: int) -> dict[str, Any] | None:
    for row in ready()["partitions"]:
        if (row["topic"], row["partition"]) == (topic, partition):
            return dict(row)
    return None


def dead_letter(database_url: str, topic: str, partition: int, offset: int) -> tuple[str, str] | None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT reason, detail FROM rejected_events WHERE kafka_topic = %s AND kafka_partition = %s "
            "AND kafka_offset = %s",
            (topic, partition, offset),
        ).fetchone()
    return (row[0], row[1]) if row else None


def test_an_undecodable_batch_pauses_its_partition_only_until_resumed_or_skipped(
    topic: str, group: str, database_url: str, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    fix = tmp_path / "zstd-installed"
    env = {
        **os.environ,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": group,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "WAREHOUSE_TEST_FIX_ZSTD": str(fix),
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ["KAFKA_GROUP_ID"] = group  # /ready and the CLI below report this group
    get_settings.cache_clear()
    log = (tmp_path / "poller.log").open("wb")
    poller = subprocess.Popen(
        [sys.executable, "-m", "tests.kafka.poller_without_codecs"],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        zstd_keys, zstd_values = arrivals(10)
        bad_offset = produce(topic, 1, zstd_values, codec="zstd")
        after_keys, after_values = arrivals(3)
        produce(topic, 1, after_values)
        others_keys, others_values = arrivals(6)
        produce(topic, 0, others_values[:3])
        produce(topic, 2, others_values[3:])

        # The other partitions flow; the bad one is paused at the batch, and says so.
        wait_until(lambda: applied(database_url, others_keys), 60, what="partitions 0 and 2 applied")
        wait_until(
            lambda: (partition_report(topic, 1) or {}).get("paused_offset") == bad_offset,
            30,
            what="pause reported",
        )
        report = partition_report(topic, 1)
        assert report is not None and "zstd" in (report["paused_reason"] or "")
        assert report["lag"] >= 13  # the paused batch and what follows it
        assert ready()["kafka"] == "paused"
        assert paused_metric(metrics_dir, topic, 1) == 1.0
        assert stock_of(database_url, zstd_keys + after_keys) == {k: 0 for k in zstd_keys + after_keys}

        # Idle while paused, not spinning.
        before = cpu_seconds(poller.pid)
        time.sleep(5)
        assert cpu_seconds(poller.pid) - before < 1.5, "the paused poller spins"

        # The operator installs the codec and resumes: the batch and what follows are applied.
        fix.touch()
        time.sleep(0.5)
        assert cli(["poller", "resume", topic, "1", "--wait", "60"]) == 0
        wait_until(
            lambda: applied(database_url, zstd_keys + after_keys), 60, what="resumed partition applied"
        )
        wait_until(lambda: paused_metric(metrics_dir, topic, 1) == 0.0, 30, what="pause metric cleared")

        # A batch that still cannot be decoded (lz4 stays missing) is skipped through the HTTP route.
        lz4_keys, lz4_values = arrivals(4)
        skipped = produce(topic, 1, lz4_values, codec="lz4")
        later_keys, later_values = arrivals(2)
        produce(topic, 1, later_values)
        wait_until(
            lambda: (partition_report(topic, 1) or {}).get("paused_offset") == skipped,
            60,
            what="second pause",
        )
        from functions.local_app.main import app

        answer = TestClient(app).post(f"/api/v1/pollers/partitions/{topic}/1/skip")
        assert answer.status_code == 202, answer.text
        assert answer.json()["paused_offset"] == skipped
        wait_until(
            lambda: applied(database_url, later_keys), 60, what="records after the skipped batch applied"
        )
        assert stock_of(database_url, lz4_keys) == {k: 0 for k in lz4_keys}
        letter = dead_letter(database_url, topic, 1, skipped)
        assert letter is not None
        reason, detail = letter
        assert reason == "invalid"
        assert f"{topic}-1 offsets {skipped}..{skipped + 3}" in detail and "lz4" in detail.lower()
        # Nothing is paused any more: a further request is refused.
        wait_until(
            lambda: (partition_report(topic, 1) or {}).get("paused_offset") is None, 30, what="unpaused"
        )
        assert TestClient(app).post(f"/api/v1/pollers/partitions/{topic}/1/resume").status_code == 409

        # Paused again, SIGTERM still stops it within 5 s.
        produce(topic, 1, arrivals(2)[1], codec="lz4")
        wait_until(lambda: ready()["kafka"] == "paused", 60, what="third pause")
        started = time.monotonic()
        poller.send_signal(signal.SIGTERM)
        poller.wait(10)
        assert time.monotonic() - started < 5
    finally:
        if poller.poll() is None:
            poller.kill()
            poller.wait(10)
        log.close()
        os.environ.pop("KAFKA_GROUP_ID", None)
        get_settings.cache_clear()


def test_a_wedged_poller_is_restarted_by_the_watchdog_and_nothing_is_lost(
    topic: str, group: str, database_url: str, tmp_path: Path
) -> None:
    wedge = tmp_path / "wedge"
    settings = get_settings().model_copy(update={"poller_stall_seconds": 6.0, "kafka_topic": topic})
    supervisor = Supervisor(
        settings, workers=1, pollers=1, metrics_dir=tmp_path, poller="tests.kafka.wedging_poller"
    )
    supervisor.env.update(
        KAFKA_TOPIC=topic, KAFKA_GROUP_ID=group, KAFKA_BOOTSTRAP_SERVERS=BOOTSTRAP,
        WAREHOUSE_TEST_WEDGE=str(wedge), PYTHONUNBUFFERED="1",
    )  # fmt: skip
    (slot,) = supervisor.pollers
    supervisor._start_poller(slot)

    def watch_until(predicate: Any, timeout: float, what: str) -> None:
        def step() -> bool:
            supervisor._check_poller(slot, time.monotonic())
            return bool(predicate())

        wait_until(step, timeout, 0.5, what)

    try:
        first_keys, first_values = arrivals(30, 3)
        for p in range(3):
            produce(topic, p, first_values[p::3])
        watch_until(lambda: applied(database_url, first_keys, 3), 60, "the first records applied")
        first = slot.process
        assert first is not None

        wedge.touch()  # the next poll() never returns
        watch_until(lambda: not wedge.exists(), 30, "the poller wedged")
        second_keys, second_values = arrivals(30, 4)
        for p in range(3):
            produce(topic, p, second_values[p::3])
        watch_until(
            lambda: slot.stalls == 1 and slot.process not in (None, first), 60, "the watchdog restart"
        )
        watch_until(lambda: applied(database_url, second_keys, 4), 60, "the records after the wedge applied")
        assert first.poll() is not None  # the wedged one is gone
        # Nothing lost, nothing applied twice.
        assert applied(database_url, first_keys, 3) and applied(database_url, second_keys, 4)
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM movement_events WHERE kafka_topic = %s", (topic,)
            ).fetchone()
        assert row is not None and row[0] == 60
        assert slot.stalls == 1
    finally:
        supervisor.stopping = True
        for process in [slot.process]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(10)
