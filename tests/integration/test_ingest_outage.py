"""The Kafka ingest handler in "Lambda" rides out a PostgreSQL outage within its invocation.

PostgreSQL is reached through a TCP proxy this test cuts and restores (the shared server keeps
running). The handler runs in process with AWS_LAMBDA_FUNCTION_NAME set, the way the event source
mapping calls it, with a context whose remaining time the test chooses.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from common.adapters import db
from common.adapters.config import get_settings
from common.intake import outage
from functions.ingest_kafka.handler import handler  # imported before AWS_LAMBDA_FUNCTION_NAME is set
from tests.e2e.support import envelope
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

METRIC = "warehouse_kafka_failed_batch_oldest_record_age_seconds"


@dataclass
class Context:
    """The parts of a LambdaContext the handler and Powertools read."""

    remaining_ms: int = 60_000
    function_name: str = "warehouse-ingest"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "ingest-outage-test"
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:warehouse-ingest"
    log_group_name: str = "/aws/lambda/warehouse-ingest"
    log_stream_name: str = "test"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def proxy(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpProxy]:
    """The service's PostgreSQL behind a proxy that starts cut; "in Lambda"; fast pool timeouts."""
    target = int(conninfo_to_dict(database_url)["port"] or 5432)
    tcp = TcpProxy(target, cut=True)
    monkeypatch.setenv("DATABASE_URL", make_conninfo(database_url, port=str(tcp.port)))
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "warehouse-ingest")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "WarehouseTest")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # tests/kafka's conftest turns them off
    monkeypatch.setenv("DB_POOL_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("CACHE_ENABLED", "false")
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    get_settings.cache_clear()
    db.close_pool()
    yield tcp
    tcp.cut()
    db.close_pool()
    get_settings.cache_clear()


def kafka_event(warehouse: str, product: str, *, age_seconds: float) -> dict[str, Any]:
    """A SelfManagedKafka event with one arrival, its record `age_seconds` old."""
    value = json.dumps(envelope("arrival", movement_id=str(uuid.uuid4()), warehouse_id=warehouse,
                                product_id=product, quantity=4)).encode()  # fmt: skip
    record = {
        "topic": "warehouse-movements",
        "partition": 0,
        "offset": int(time.time() * 1000),
        "timestamp": int((time.time() - age_seconds) * 1000),
        "timestampType": "CREATE_TIME",
        "key": None,
        "value": base64.b64encode(value).decode(),
        "headers": [],
    }
    return {
        "eventSource": "SelfManagedKafka",
        "bootstrapServers": "outage-test:9092",
        "records": {"warehouse-movements-0": [record]},
    }


def stock(database_url: str, warehouse: str, product: str) -> int | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT quantity FROM stock WHERE warehouse_id = %s AND product_id = %s", (warehouse, product)
        ).fetchone()
    return int(row[0]) if row else None


def emitted(output: str, name: str) -> list[float]:
    """Values of the embedded-metric-format lines for `name` in captured stdout."""
    values = []
    for line in output.splitlines():
        if line.startswith("{") and f'"{name}"' in line:
            value = json.loads(line)[name]
            values += [float(v) for v in (value if isinstance(value, list) else [value])]
    return values


def test_an_outage_shorter_than_the_wait_costs_no_retry(proxy, database_url, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INGEST_DB_WAIT_SECONDS", "30")
    get_settings.cache_clear()
    w, p = str(uuid.uuid4()), str(uuid.uuid4())
    threading.Timer(2.5, proxy.restore).start()  # PostgreSQL "comes back" after 2.5 s

    began = time.monotonic()
    answer = handler(kafka_event(w, p, age_seconds=5), Context(remaining_ms=60_000))

    assert answer == {"batchItemFailures": []}
    assert time.monotonic() - began >= 2.5  # it did wait, rather than fail the batch at once
    assert stock(database_url, w, p) == 4
    assert emitted(capsys.readouterr().out, METRIC) == []  # no failed batch


def test_a_longer_outage_fails_the_batch_and_reports_its_oldest_record(proxy, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INGEST_DB_WAIT_SECONDS", "2")
    get_settings.cache_clear()

    began = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        handler(kafka_event(str(uuid.uuid4()), str(uuid.uuid4()), age_seconds=3600), Context())
    waited = time.monotonic() - began

    assert 2 <= waited < 10, waited  # the wait, plus one pool timeout; not the invocation's 60 s
    (age,) = emitted(capsys.readouterr().out, METRIC)
    assert 3600 <= age < 3660


def test_the_wait_stops_short_of_the_invocations_end(proxy, monkeypatch) -> None:
    monkeypatch.setenv("INGEST_DB_WAIT_SECONDS", "60")
    get_settings.cache_clear()
    assert outage.wait_budget_seconds(Context(remaining_ms=200_000)) == 60
    assert outage.wait_budget_seconds(Context(remaining_ms=21_000)) == pytest.approx(1.0)
    assert outage.wait_budget_seconds(Context(remaining_ms=5_000)) == 0

    began = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        event = kafka_event(str(uuid.uuid4()), str(uuid.uuid4()), age_seconds=1)
        handler(event, Context(remaining_ms=21_500))
    assert time.monotonic() - began < 8  # a 1.5 s budget, not INGEST_DB_WAIT_SECONDS


def test_outside_lambda_a_batch_fails_at_once(proxy, monkeypatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    monkeypatch.setenv("INGEST_DB_WAIT_SECONDS", "60")
    get_settings.cache_clear()
    assert outage.wait_budget_seconds(Context()) == 0
    began = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        handler(kafka_event(str(uuid.uuid4()), str(uuid.uuid4()), age_seconds=1), Context())
    assert time.monotonic() - began < 5  # the local poller has its own backoff


def test_a_lock_timeout_is_not_waited_for_nor_retried(proxy, database_url, monkeypatch) -> None:
    """PostgreSQL answers, but a row stays locked: the batch fails within about one lock timeout."""
    proxy.restore()
    monkeypatch.setenv("INGEST_DB_WAIT_SECONDS", "30")
    monkeypatch.setenv("DB_LOCK_TIMEOUT_MS", "500")
    get_settings.cache_clear()
    w, p = str(uuid.uuid4()), str(uuid.uuid4())
    assert handler(kafka_event(w, p, age_seconds=1), Context()) == {"batchItemFailures": []}

    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT 1 FROM stock WHERE warehouse_id = %s AND product_id = %s FOR UPDATE", (w, p))
        began = time.monotonic()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            handler(kafka_event(w, p, age_seconds=1), Context())
        # One wait of 0.5 s; five retried attempts would take 2.5 s and more.
        assert time.monotonic() - began < 2.0
    assert handler(kafka_event(w, p, age_seconds=1), Context()) == {"batchItemFailures": []}
    assert stock(database_url, w, p) == 8
