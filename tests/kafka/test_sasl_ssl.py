"""The poller through a SASL_SSL listener (SCRAM-SHA-512, a CA made at test time) of a real broker.

The broker is this session's private one (tests/kafka/broker.py): its SCRAM credentials were
written when its storage was formatted, its certificate signed by a CA made with openssl a
moment before. Records are produced through its PLAINTEXT listener; only the poller goes
through SASL_SSL. The right password (read from a Secrets Manager secret, mocked by moto)
applies the events; a wrong one is one clear error in the log and in /ready, no traceback loop.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import moto
import psycopg
import pytest
from aws_lambda_powertools.utilities import parameters
from kafka import KafkaProducer

from common.adapters.config import Settings, get_settings
from functions.local_app.poller import Poller
from tests.e2e.support import start_app
from tests.kafka.broker import SCRAM_MECHANISM, PrivateBroker
from tools.kafka_helpers import applied_count, movement_stream, stock_of, unique, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]

REGION = "eu-west-1"


def sasl_settings(broker: PrivateBroker, topic: str, group: str, **values: Any) -> Settings:
    assert broker.tls is not None
    return get_settings().model_copy(
        update={
            "kafka_bootstrap_servers": broker.sasl_ssl,
            "kafka_topic": topic,
            "kafka_group_id": group,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": SCRAM_MECHANISM,
            "kafka_sasl_username": broker.username,
            "kafka_sasl_password": broker.password,
            "kafka_sasl_secret_arn": None,
            "kafka_ssl_cafile": broker.tls.ca_cert,
            "kafka_ssl_check_hostname": True,
            **values,
        }
    )


def produce_plain(broker: PrivateBroker, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.plaintext, linger_ms=20, compression_type="gzip")
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush(60)
    finally:
        producer.close(10)


@pytest.fixture
def secrets_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()  # type: ignore[attr-defined]  # Powertools' provider cache: the only reset between moto tests
    with moto.mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()  # type: ignore[attr-defined]  # Powertools' provider cache: the only reset between moto tests


def test_the_poller_applies_events_read_through_sasl_ssl_with_the_secrets_credentials(
    private_broker: PrivateBroker, database_url: str, secrets_manager: Any
) -> None:
    topic, group = unique("sasl-topic"), unique("sasl-group")
    private_broker.create_topic(topic)
    arn = secrets_manager.create_secret(
        Name=unique("kafka-scram"),
        SecretString=json.dumps({"username": private_broker.username, "password": private_broker.password}),
    )["ARN"]
    stream = movement_stream(60, warehouses=4, products=2)
    produce_plain(private_broker, topic, stream.records)

    config = sasl_settings(
        private_broker,
        topic,
        group,
        kafka_sasl_username=None,
        kafka_sasl_password=None,
        kafka_sasl_secret_arn=arn,
    )
    poller = Poller(config, lag_interval=0.5)
    poller.start()
    try:
        wait_until(lambda: applied_count(database_url, topic) == stream.events, 90, what="all events applied")
        wait_until(lambda: poller.lag == 0, 30, what="lag 0")
        assert poller.status == "running"
        assert poller.cluster_id == private_broker.cluster_id
    finally:
        assert poller.stop(30)
    assert stock_of(database_url, stream.stock) == dict(stream.stock)
    with psycopg.connect(database_url) as conn:
        clusters = conn.execute(
            "SELECT DISTINCT kafka_cluster FROM movement_events WHERE kafka_topic = %s", (topic,)
        ).fetchall()
    assert clusters == [
        (f"arn:aws:kafka:local:000000000000:cluster/local-poller/{private_broker.cluster_id}",)
    ]


def test_a_wrong_password_is_one_clear_error_and_the_state_says_why(
    private_broker: PrivateBroker, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic, group = unique("sasl-topic"), unique("sasl-group")
    private_broker.create_topic(topic)
    produce_plain(private_broker, topic, movement_stream(5, warehouses=2, products=1).records)
    poller = Poller(sasl_settings(private_broker, topic, group, kafka_sasl_password="wrong"), max_backoff=1.0)
    caplog.set_level(logging.DEBUG)
    poller.start()
    try:
        wait_until(lambda: poller.state == "authentication_failed", 30, what="authentication_failed")
        time.sleep(4)  # several more attempts at a 1 s backoff
        assert poller.state == "authentication_failed"
    finally:
        assert poller.stop(30)
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in (poller.state_detail or "")
    assert applied_count(database_url, topic) == 0
    ours = [r for r in caplog.records if r.name.startswith("functions.local_app.poller")]
    errors = [r for r in ours if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert (
        "authentication_failed" in errors[0].getMessage() and "invalid credentials" in errors[0].getMessage()
    )
    retries = [r for r in ours if "still refused" in r.getMessage()]
    assert len(retries) >= 2, "the poller did not keep retrying"
    assert not any(r.exc_info for r in caplog.records), "a traceback was logged"
    assert "wrong" not in "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("functions", "common"))
    )


def test_ready_reports_the_authentication_failure(
    private_broker: PrivateBroker, database_url: str, tmp_path: Path
) -> None:
    assert private_broker.tls is not None
    topic = unique("sasl-topic")
    private_broker.create_topic(topic)
    app = start_app(
        {
            "APP_MODE": "kafka",
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": private_broker.sasl_ssl,
            "KAFKA_TOPIC": topic,
            "KAFKA_GROUP_ID": unique("sasl-group"),
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": SCRAM_MECHANISM,
            "KAFKA_SASL_USERNAME": private_broker.username,
            "KAFKA_SASL_PASSWORD": f"not-{uuid.uuid4().hex}",
            "KAFKA_SASL_SECRET_ARN": "",
            "KAFKA_SSL_CAFILE": str(private_broker.tls.ca_cert),
            "LOG_LEVEL": "INFO",
        },
        tmp_path / "app.log",
    )
    try:
        seen: dict[str, Any] = {}

        def refused() -> bool:
            answer = httpx.get(f"{app.url}/ready", timeout=5)
            seen.update(answer.json(), http=answer.status_code)
            return str(seen.get("kafka", "")).startswith("authentication_failed")

        wait_until(refused, 60, interval=0.5, what="/ready to report authentication_failed")
        time.sleep(3)  # a few more attempts
        final = httpx.get(f"{app.url}/ready", timeout=5)
    finally:
        app.stop()
    assert final.status_code == 200 and final.json()["status"] == "ok"  # PostgreSQL decides readiness
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in final.json()["kafka"]
    log = app.log()
    assert log.count("kafka poller cannot connect (authentication_failed)") == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
