"""Kafka ingestion benchmark (not collected by pytest): events/s end to end, and the poller's RSS.

    DATABASE_URL=postgresql://warehouse:warehouse@127.0.0.1:5432/kafka_dev \\
        .venv/bin/python tools/bench/bench_kafka.py [--events 100000] [--batch-size 1000] [--drain]

A fresh 3-partition topic gets `--events` distinct movement events (restocks, then departures and
arrivals keyed by warehouse) from one batched, gzip-compressed producer. A standalone poller
process (`python -m functions.local_app.poller`) consumes it into the database. The clock runs
from the first record produced (with `--drain`: from the poller's start, everything produced
beforehand) to the moment the database holds every event, polled every 0.25 s. The poller's peak
RSS is its VmHWM, read from /proc before it is stopped. Topic and consumer group are deleted after.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.kafka_helpers import (  # noqa: E402  (the project root is put on the path first)
    BOOTSTRAP,
    applied_count,
    create_topic,
    delete_group,
    delete_topic,
    movement_stream,
    produce,
    stock_of,
    unique,
    wait_until,
)

DEFAULT_DATABASE_URL = "postgresql://warehouse:warehouse@127.0.0.1:5432/kafka_dev"


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=int(os.environ.get("KAFKA_BATCH_SIZE", 1000)))
    parser.add_argument("--drain", action="store_true", help="produce everything first, then time the poller")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    warehouses, products = 12, 5
    movements = (args.events - warehouses * products) // 2
    stream = movement_stream(movements, warehouses=warehouses, products=products)
    total = stream.events
    topic, group = unique("bench-kafka"), unique("bench-kafka-group")
    create_topic(topic, partitions=3)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": group,
        "KAFKA_BATCH_SIZE": str(args.batch_size),
        "LOG_LEVEL": "INFO",
        "POWERTOOLS_LOG_LEVEL": "WARNING",  # no per-batch summary line: the bench reads the DB
    }
    log = Path(tempfile.mkstemp(prefix="bench-kafka-", suffix=".log")[1])
    produced: dict[str, float] = {}

    def run_producer() -> None:
        started = time.perf_counter()
        produce(topic, stream.records)
        produced["seconds"] = time.perf_counter() - started

    poller: subprocess.Popen[bytes] | None = None
    try:
        if args.drain:
            run_producer()
        with log.open("ab") as out:
            poller = subprocess.Popen(
                [sys.executable, "-m", "functions.local_app.poller"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if not args.drain:
            # Let the poller join its group first, so the clock measures ingestion, not start-up.
            wait_until(lambda: "kafka poller running" in log.read_text(), 60, what="the poller to start")
            producing = threading.Thread(target=run_producer, daemon=True)
        started = time.perf_counter()
        if not args.drain:
            producing.start()
        first_applied: float | None = None
        while True:
            count = applied_count(database_url, topic)
            now = time.perf_counter()
            if count and first_applied is None:
                first_applied = now
            if count >= total:
                break
            if now - started > args.timeout:
                raise SystemExit(f"timed out with {count}/{total} events applied; log: {log}")
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        rss = peak_rss_mib(poller.pid)
        exact = stock_of(database_url, stream.stock) == dict(stream.stock)
    finally:
        if poller is not None and poller.poll() is None:
            poller.send_signal(signal.SIGTERM)
            try:
                poller.wait(30)
            except subprocess.TimeoutExpired:
                poller.kill()
        delete_group(group)
        delete_topic(topic)

    mode = "drain (produced first)" if args.drain else "end to end (producing while consuming)"
    print(f"kafka bench: {total} events, batch size {args.batch_size}, 3 partitions, {mode}")
    if "seconds" in produced:
        print(f"  produce      {produced['seconds']:7.1f} s  {total / produced['seconds']:8.0f} events/s")
    print(f"  all applied  {elapsed:7.1f} s  {total / elapsed:8.0f} events/s")
    if first_applied is not None:
        print(f"  first applied after {first_applied - started:.2f} s")
    print(f"  poller peak RSS {rss:.0f} MiB; stock exact: {exact}; poller log: {log}")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
