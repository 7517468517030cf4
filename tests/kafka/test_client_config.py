"""common.adapters.kafka_settings: Settings -> kafka-python keyword arguments, validation, the SASL secret.

No broker here: the mapping, the early and clear refusals, and the secret read from a Secrets
Manager mocked by moto. The same settings against a real SASL_SSL broker are in test_sasl_ssl.py.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import moto
import pytest
from aws_lambda_powertools.utilities import parameters
from kafka.net.sasl.oauth import AbstractTokenProvider

from common.adapters import kafka_settings as kafka_client
from common.adapters.config import PROJECT_ROOT, Settings, get_settings
from common.adapters.kafka_settings import KafkaClientConfigError, KafkaCredentialsError
from common.dead_letters import outbox
from common.intake import kafka_records as kafka_batch
from common.intake.kafka_records import cluster_of
from tests.kafka.broker import TlsFiles

pytestmark = pytest.mark.unit

REGION = "eu-west-1"
PASSWORD = "correct-horse-battery-staple"


def settings(**values: Any) -> Settings:
    """Settings from these values only: neither the environment nor `.env` decide here."""
    base = dict(kafka_bootstrap_servers="b-2.example:9096,b-1.example:9096")
    return get_settings().model_copy(update={**_cleared(), **base, **values})


def _cleared() -> dict[str, Any]:
    return dict(
        kafka_security_protocol="PLAINTEXT",
        kafka_sasl_mechanism=None,
        kafka_sasl_username=None,
        kafka_sasl_password=None,
        kafka_sasl_secret_arn=None,
        kafka_ssl_cafile=None,
        kafka_ssl_certfile=None,
        kafka_ssl_keyfile=None,
        kafka_ssl_check_hostname=True,
        kafka_aws_region=None,
    )


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return TlsFiles.create(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def no_aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)


# --- the mapping --------------------------------------------------------------------------------


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    assert kafka_client.security_options(settings()) == {"security_protocol": "PLAINTEXT"}
    config = kafka_client.consumer_config(settings(), "me", group_id="g")
    assert config["bootstrap_servers"] == ["b-2.example:9096", "b-1.example:9096"]
    assert config["enable_auto_commit"] is False and config["client_id"] == "me" and config["group_id"] == "g"


def test_sasl_ssl_scram_maps_to_kafka_python_arguments(tls: TlsFiles) -> None:
    options = kafka_client.security_options(
        settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="poller",
            kafka_sasl_password=PASSWORD,
            kafka_ssl_cafile=tls.ca_cert,
        )
    )
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "poller",
        "sasl_plain_password": PASSWORD,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    # Only the configured CA is trusted, not the system's bundle.
    subjects = [c["subject"] for c in context.get_ca_certs()]
    assert [dict(subject[0])["commonName"] for subject in subjects] == ["warehouse-test-ca"]  # type: ignore[arg-type]  # typeshed's union of subject shapes


def test_ssl_with_a_client_certificate_and_no_host_name_check(tls: TlsFiles, tmp_path: Path) -> None:
    cert, key = _client_pair(tls, tmp_path)
    options = kafka_client.security_options(
        settings(
            kafka_security_protocol="SSL",
            kafka_ssl_cafile=tls.ca_cert,
            kafka_ssl_certfile=cert,
            kafka_ssl_keyfile=key,
            kafka_ssl_check_hostname=False,
        )
    )
    assert set(options) == {"security_protocol", "ssl_context"}
    assert options["ssl_context"].check_hostname is False
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_without_a_ca_file_the_system_trust_store_is_used() -> None:
    context = kafka_client.ssl_context(settings(kafka_security_protocol="SSL"))
    assert context.cert_store_stats()["x509_ca"] > 0  # Amazon's CAs for MSK are in there


def test_a_certificate_that_does_not_load_is_refused_naming_the_variables(
    tls: TlsFiles, tmp_path: Path
) -> None:
    bogus = tmp_path / "not-a-cert.pem"
    bogus.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(KafkaClientConfigError, match="KAFKA_SSL_CERTFILE"):
        kafka_client.security_options(settings(kafka_security_protocol="SSL", kafka_ssl_certfile=bogus))
    with pytest.raises(KafkaClientConfigError, match="KAFKA_SSL_CAFILE"):
        kafka_client.security_options(settings(kafka_security_protocol="SSL", kafka_ssl_cafile=bogus))


def _client_pair(tls: TlsFiles, directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "client.key", directory / "client.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=poller",
        ],  # fmt: skip
        check=True,
        capture_output=True,
    )
    return cert, key


# --- early, clear refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            dict(kafka_security_protocol="SASL_SSL"),
            "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_MECHANISM",
        ),
        (
            dict(kafka_sasl_mechanism="PLAIN"),
            "KAFKA_SASL_MECHANISM=PLAIN needs KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        ),
        (
            dict(
                kafka_security_protocol="SASL_SSL",
                kafka_sasl_mechanism="SCRAM-SHA-256",
                kafka_sasl_username="u",
            ),
            "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD, or KAFKA_SASL_SECRET_ARN",
        ),
        (
            dict(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="OAUTHBEARER"),
            "OAUTHBEARER (MSK IAM) needs KAFKA_AWS_REGION or AWS_REGION",
        ),
        (
            dict(
                kafka_security_protocol="SASL_PLAINTEXT",
                kafka_sasl_mechanism="OAUTHBEARER",
                kafka_aws_region=REGION,
            ),
            "OAUTHBEARER (MSK IAM) needs KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        ),
        (
            dict(
                kafka_security_protocol="SASL_SSL",
                kafka_sasl_mechanism="OAUTHBEARER",
                kafka_aws_region=REGION,
                kafka_sasl_password=PASSWORD,
            ),
            "are not used with OAUTHBEARER",
        ),
        (
            dict(kafka_ssl_cafile=Path("/etc/hostname")),
            "KAFKA_SSL_CAFILE is set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ),
        (
            dict(kafka_security_protocol="SSL", kafka_ssl_cafile=Path("/nonexistent/ca.pem")),
            "KAFKA_SSL_CAFILE=/nonexistent/ca.pem is not a readable file",
        ),
        (
            dict(kafka_security_protocol="SSL", kafka_ssl_keyfile=Path("/etc/hostname")),
            "KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_before_connecting(
    values: dict[str, Any], message: str, no_aws_region: None
) -> None:
    with pytest.raises(KafkaClientConfigError) as caught:
        kafka_client.security_options(settings(**values))
    assert message in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_every_problem_is_listed_at_once(no_aws_region: None) -> None:
    found = kafka_client.problems(
        settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="OAUTHBEARER")
    )
    assert len(found) == 2 and all("OAUTHBEARER" in p for p in found)


def test_the_region_may_come_from_aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", REGION)
    options = kafka_client.security_options(
        settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="OAUTHBEARER")
    )
    assert options["sasl_oauth_token_provider"].region == REGION


def test_describe_is_safe_to_log(tls: TlsFiles) -> None:
    text = kafka_client.describe(
        settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="poller-user",
            kafka_sasl_password=PASSWORD,
            kafka_ssl_cafile=tls.ca_cert,
        )
    )
    assert "SASL_SSL SCRAM-SHA-512" in text and str(tls.ca_cert) in text
    assert PASSWORD not in text and "poller-user" not in text


# --- MSK IAM (OAUTHBEARER) ------------------------------------------------------------------------


def test_msk_iam_tokens_are_signed_for_the_region_and_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    options = kafka_client.security_options(
        settings(
            kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="OAUTHBEARER", kafka_aws_region=REGION
        )
    )
    provider = options["sasl_oauth_token_provider"]
    assert isinstance(provider, AbstractTokenProvider)  # kafka-python refuses anything else
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    signed: list[str] = []
    real = MSKAuthTokenProvider.generate_auth_token

    def counting(region: str) -> tuple[str, int]:
        signed.append(region)
        return real(region)

    monkeypatch.setattr(MSKAuthTokenProvider, "generate_auth_token", counting)
    token = provider.token()
    url = urlsplit(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    query = parse_qs(url.query)
    assert url.hostname == f"kafka.{REGION}.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")
    assert provider.token() == token and signed == [REGION]  # not signed again for every connection
    provider._expires_ms = 0  # as if it had expired
    provider.token()
    assert signed == [REGION, REGION]


# --- the SASL secret ------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Secrets Manager mocked by moto, fake credentials, clean Powertools caches."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    _reset_powertools()
    with moto.mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)
    _reset_powertools()


def _reset_powertools() -> None:
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()  # type: ignore[attr-defined]  # Powertools' provider cache: the only reset between moto tests


def scram_from_secret(arn: str) -> Settings:
    return settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_secret_arn=arn
    )


def test_credentials_come_from_the_secret_and_override_the_variables(aws: Any) -> None:
    arn = aws.create_secret(
        Name="warehouse-stock/kafka", SecretString=json.dumps({"username": "msk-user", "password": PASSWORD})
    )["ARN"]
    config = scram_from_secret(arn).model_copy(
        update=dict(kafka_sasl_username="ignored", kafka_sasl_password="x")
    )
    options = kafka_client.security_options(config)
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("msk-user", PASSWORD)
    assert f"credentials from secret {arn}" in kafka_client.describe(config)


def test_a_rotated_secret_is_read_again_once_the_cache_expires(aws: Any) -> None:
    arn = aws.create_secret(Name="k", SecretString=json.dumps({"username": "u", "password": "old"}))["ARN"]
    assert kafka_client.sasl_credentials(scram_from_secret(arn)) == ("u", "old")
    aws.put_secret_value(SecretId=arn, SecretString=json.dumps({"username": "u", "password": "new"}))
    assert kafka_client.sasl_credentials(scram_from_secret(arn)) == ("u", "old")  # cached 300 s
    parameters.clear_caches()
    assert kafka_client.sasl_credentials(scram_from_secret(arn)) == ("u", "new")


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ('{"username": "u"}', "has no password"),
        ("not json at all", "is not JSON"),
        ('["u", "p"]', "is not a JSON object"),
    ],
)
def test_a_secret_in_the_wrong_shape_says_what_is_wrong_without_its_value(
    aws: Any, secret: str, message: str
) -> None:
    arn = aws.create_secret(Name="bad", SecretString=secret)["ARN"]
    with pytest.raises(KafkaCredentialsError) as caught:
        kafka_client.security_options(scram_from_secret(arn))
    assert message in str(caught.value) and arn in str(caught.value)
    assert "not json at all" not in str(caught.value)


def test_a_secret_that_cannot_be_read_is_a_credentials_error(aws: Any) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:missing-AbCdEf"
    with pytest.raises(KafkaCredentialsError, match="reading secret"):
        kafka_client.security_options(scram_from_secret(arn))


# --- the DLQ producer and the event shape ---------------------------------------------------------


def test_the_dead_letter_producer_connects_with_the_same_security(tls: TlsFiles) -> None:
    secured = settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="dlq",
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=tls.ca_cert,
    )
    config = outbox.producer_arguments(secured)
    assert config["security_protocol"] == "SASL_SSL" and config["sasl_mechanism"] == "SCRAM-SHA-256"
    assert config["sasl_plain_password"] == PASSWORD and isinstance(config["ssl_context"], ssl.SSLContext)
    assert config["bootstrap_servers"] == ["b-2.example:9096", "b-1.example:9096"]
    assert config["acks"] == "all" and config["client_id"] == "warehouse-dlq"


def test_the_event_names_the_cluster_so_two_clusters_never_look_alike() -> None:
    def event(cluster_id: str | None) -> dict[str, Any]:
        return kafka_batch.lambda_event({}, bootstrap_servers="127.0.0.1:9092", cluster_id=cluster_id)

    one, other = event("MWNZsprVRnClKEWbvmwdig"), event("0h6oMQxQTT2957VDr6x4tQ")
    assert cluster_of(one) != cluster_of(other)
    assert (cluster_of(one) or "").endswith("/MWNZsprVRnClKEWbvmwdig")
    assert one["eventSource"] == "aws:kafka"
    # Without an id the cluster is known by its bootstrap servers, as for self-managed Kafka.
    unknown = kafka_batch.lambda_event({}, bootstrap_servers="b:2,a:1", cluster_id=None)
    assert "eventSourceArn" not in unknown and cluster_of(unknown) == "a:1,b:2"


# --- the poller with settings that cannot work ------------------------------------------------------


def test_the_poller_names_the_variables_instead_of_connecting(no_aws_region: None) -> None:
    from functions.local_app.poller import Poller

    unreachable = settings(kafka_bootstrap_servers="127.0.0.1:1", kafka_security_protocol="SASL_SSL")
    poller = Poller(unreachable, handler=lambda event, context: None, max_backoff=0.05)
    poller.start()
    try:
        deadline = time.monotonic() + 10
        while poller.state != "configuration_error" and time.monotonic() < deadline:
            time.sleep(0.02)
        status = poller.status
    finally:
        assert poller.stop(10)
    assert status.startswith("configuration_error: invalid Kafka client configuration")
    assert "KAFKA_SASL_MECHANISM" in status


def test_the_standalone_poller_refuses_to_start(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "",
        "KAFKA_SASL_PASSWORD": "",
        "KAFKA_SASL_SECRET_ARN": "",
    }
    done = subprocess.run(
        [sys.executable, "-m", "functions.local_app.poller"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD, or KAFKA_SASL_SECRET_ARN" in done.stderr
