"""`make run`'s process layout (functions/local_app/serve.py): workers on every core, pollers once.

The supervisor runs as a real process on the test database and a fresh topic: its uvicorn workers
and its poller processes are counted from /proc, and the pollers' counters must show on a worker's
/metrics (they live in other processes: only the shared multiprocess directory brings them there).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from common.adapters.config import Settings, get_settings
from functions.local_app.serve import Supervisor, layout, topic_partitions
from tests.e2e.support import PROJECT_ROOT, free_port
from tools.kafka_helpers import create_topic, delete_topic, produce, unique, wait_until

EVENTS = 40


def test_layout_defaults_to_every_core_and_one_poller_per_partition_up_to_the_cores() -> None:
    kafka = Settings(app_mode="kafka")
    assert layout(kafka, partitions=3, available=2) == (2, 2)
    assert layout(kafka, partitions=1, available=4) == (4, 1)
    assert layout(kafka, partitions=None, available=2) == (2, 2)
    assert layout(Settings(app_mode="kafka", app_workers=1, kafka_pollers=3), partitions=1, available=2) == (
        1,
        3,
    )
    assert layout(Settings(app_mode="kafka", kafka_pollers=0), partitions=3, available=2) == (2, 0)
    assert layout(Settings(app_mode="webhook_only"), partitions=3, available=2) == (2, 0)


def test_the_layout_reads_the_topics_partitions_from_the_broker() -> None:
    topic = unique("serve-layout")
    create_topic(topic, partitions=4)
    try:
        settings = get_settings().model_copy(update=dict(kafka_topic=topic))
        assert topic_partitions(settings) == 4
        assert topic_partitions(settings.model_copy(update=dict(kafka_topic=unique("absent")))) is None
    finally:
        delete_topic(topic)


def test_access_log_is_off_unless_asked_for(tmp_path: Path) -> None:
    def command(**settings: object) -> list[str]:
        return Supervisor(Settings(**settings), workers=2, pollers=0, metrics_dir=tmp_path).uvicorn_command()  # type: ignore[arg-type]

    assert "--no-access-log" in command() and "--access-log" not in command()
    assert "--access-log" in command(access_log=True)
    assert command()[command().index("--workers") + 1] == "2"


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every descendant of `pid`."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent:
                found.append((child, commands.get(child, "")))
                frontier.append(child)
    return found


@pytest.fixture
def kafka_topic() -> Iterator[str]:
    name = unique("serve-test")
    create_topic(name, partitions=2)
    yield name
    delete_topic(name)


def arrival(warehouse: str, n: int) -> bytes:
    movement = str(uuid.uuid4())
    return json.dumps(
        {
            "id": movement, "source": "WH-SERVE", "specversion": "1.0",
            "type": "ru.retail.warehouses.movement",
            "data": {
                "movement_id": movement, "warehouse_id": warehouse, "product_id": str(uuid.uuid4()),
                "event": "arrival", "quantity": n + 1, "timestamp": "2025-02-18T12:12:56Z",
            },
        }
    ).encode()  # fmt: skip


def test_make_run_starts_the_pollers_once_beside_the_workers_and_metrics_cover_them(
    database_url: str, kafka_topic: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "APP_MODE": "kafka",
        "APP_PORT": str(port),
        "APP_WORKERS": "2",
        "KAFKA_POLLERS": "2",
        "KAFKA_TOPIC": kafka_topic,
        "KAFKA_GROUP_ID": unique("serve-test-group"),
        "POWERTOOLS_METRICS_DISABLED": "true",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen([sys.executable, "-m", "functions.local_app.serve"], cwd=PROJECT_ROOT, env=env,
                             stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(base + "/health"), 60, what="the app to answer")
        processes = children(serve.pid)
        pollers = [pid for pid, cmd in processes if "functions.local_app.poller" in cmd]
        workers = [pid for pid, cmd in processes if "spawn_main" in cmd]
        assert len(pollers) == 2, processes
        assert len(workers) == 2, processes
        # The workers run no poller thread: until the poller processes report, the broker's state.
        assert httpx.get(base + "/ready", timeout=10).json()["kafka"] in {
            "reachable",
            "running",
            "connecting",
        }

        warehouse = str(uuid.uuid4())
        produce(kafka_topic, [(str(i).encode(), arrival(warehouse, i)) for i in range(EVENTS)], partitions=2)
        with psycopg.connect(database_url, autocommit=True) as conn:

            def applied() -> int:
                row = conn.execute(
                    "SELECT count(*) FROM movement_events WHERE kafka_topic = %s", (kafka_topic,)
                )
                return int(row.fetchone()[0])  # type: ignore[index]

            wait_until(lambda: applied() >= EVENTS, 90, what="the pollers to apply the events")
            time.sleep(1)
            assert applied() == EVENTS, "each event applied once"
        # Readiness tells the poller processes' truth: both, running, their loops fresh.
        # Both pollers report, each with the partition it owns (lag is reported on an interval).
        wait_until(
            lambda: (
                len((r := httpx.get(base + "/ready", timeout=10).json())["pollers"]) == 2
                and {p["partition"] for p in r["partitions"]} == {0, 1}
            ),
            60,
            what="poller and partition reports",
        )
        ready = httpx.get(base + "/ready", timeout=10).json()
        assert ready["kafka"] == "running", ready
        assert all(p["state"] == "running" and not p["stalled"] for p in ready["pollers"]), ready
        assert {p["partition"] for p in ready["partitions"]} == {0, 1}, ready
        metrics = httpx.get(base + "/metrics", timeout=10).text
        kafka_applied = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("warehouse_events_total{")
            and 'origin="kafka"' in line
            and 'outcome="applied"' in line
        )
        assert kafka_applied == EVENTS, "the pollers' counters are missing from the workers' /metrics"
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(60)
        except subprocess.TimeoutExpired:
            serve.kill()
        log.close()
    assert serve.returncode == 0, (tmp_path / "serve.log").read_text()[-3000:]
    wait_until(lambda: not _alive(processes), 10, what=f"the children to exit: {_alive(processes)}")


def _alive(processes: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Those still running (a zombie not yet reaped by its parent counts as gone)."""
    alive = []
    for pid, cmd in processes:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append((pid, cmd))
    return alive


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False
