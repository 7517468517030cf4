"""common.adapters.secrets against a Secrets Manager mocked by moto: no AWS account, no network."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import boto3
import moto
import psycopg
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from common.adapters import (
    db,
    secrets,
)
from common.adapters.config import get_settings

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit

REGION = "eu-west-1"
RDS_SECRET = {
    "engine": "postgres",
    "host": "warehouse.cluster-abc.eu-west-1.rds.amazonaws.com",
    "port": 5432,
    "username": "warehouse_app",
    "password": "plain-password",
    "dbname": "warehouse",
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A mocked AWS with fake credentials, a clean settings cache and clean Powertools caches."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    _reset_caches()
    with moto.mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)
    _reset_caches()


def _reset_caches() -> None:
    get_settings.cache_clear()
    parameters.clear_caches()
    # The default SecretsProvider keeps the boto3 client it made; drop it so the next test's
    # provider is built inside that test's mock.
    DEFAULT_PROVIDERS.clear()


def _debug_our_loggers(caplog: pytest.LogCaptureFixture) -> None:
    """Capture everything this service and Powertools log. (botocore's own DEBUG wire log does print
    response bodies, secrets included: never enable DEBUG on the root or botocore loggers.)"""
    for name in ("common", "aws_lambda_powertools"):
        caplog.set_level(logging.DEBUG, logger=name)


def _create_secret(client, value: dict[str, object] | str, name: str = "warehouse/db") -> str:
    body = value if isinstance(value, str) else json.dumps(value)
    return client.create_secret(Name=name, SecretString=body)["ARN"]


def test_database_url_comes_from_the_secret_when_db_secret_arn_is_set(aws, monkeypatch) -> None:
    arn = _create_secret(aws, RDS_SECRET)
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    monkeypatch.setenv("DATABASE_URL", "postgresql://ignored:ignored@127.0.0.1/ignored")
    get_settings.cache_clear()

    assert db.database_url() == (
        "postgresql://warehouse_app:plain-password@warehouse.cluster-abc.eu-west-1.rds.amazonaws.com:5432/warehouse"
    )


def test_without_db_secret_arn_database_url_is_used(aws, monkeypatch) -> None:
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/x")
    get_settings.cache_clear()

    assert db.database_url() == "postgresql://u:p@db:5432/x"


@pytest.mark.parametrize(
    "password",
    ["p@ss:w/rd?#[]%", "with space+plus&amp=eq", "ünïcødé-пароль", "a'b\"c\\d"],
)
def test_password_with_special_characters_is_quoted_and_round_trips(aws, monkeypatch, password) -> None:
    arn = _create_secret(aws, {**RDS_SECRET, "password": password, "username": "app@tenant"})
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    get_settings.cache_clear()

    url = db.database_url()

    parts = urlsplit(url)
    assert parts.scheme == "postgresql"
    assert parts.hostname == RDS_SECRET["host"]
    assert parts.port == 5432
    assert unquote(parts.password or "") == password
    assert unquote(parts.username or "") == "app@tenant"
    # libpq (through psycopg) reads the same password back.
    info = psycopg.conninfo.conninfo_to_dict(url)
    assert info["password"] == password
    assert info["user"] == "app@tenant"
    assert info["dbname"] == "warehouse"


def test_secret_is_cached_for_max_age(aws, monkeypatch) -> None:
    arn = _create_secret(aws, RDS_SECRET)
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    get_settings.cache_clear()
    first = db.database_url()

    aws.put_secret_value(SecretId=arn, SecretString=json.dumps({**RDS_SECRET, "password": "rotated"}))

    assert db.database_url() == first  # served from the Powertools cache, no new API call
    parameters.clear_caches()
    assert ":rotated@" in db.database_url()  # a cold cache (or max_age elapsed) sees the rotation


def test_cache_is_keyed_by_arn_with_max_age(aws, monkeypatch) -> None:
    arn = _create_secret(aws, RDS_SECRET)
    calls: list[dict[str, object]] = []
    real_get_secret = parameters.get_secret

    def spy(name, **kwargs):
        calls.append({"name": name, **kwargs})
        return real_get_secret(name, **kwargs)

    monkeypatch.setattr(parameters, "get_secret", spy)  # the module common.adapters.secrets reads it from
    secrets.database_url_from_secret(arn)

    assert calls == [{"name": arn, "transform": "json", "max_age": secrets.SECRET_MAX_AGE_SECONDS}]


def test_port_default_and_db_instance_identifier_fallback(aws, monkeypatch) -> None:
    secret = {k: v for k, v in RDS_SECRET.items() if k not in ("port", "dbname")}
    arn = _create_secret(aws, {**secret, "dbInstanceIdentifier": "warehouse-prod"})
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    get_settings.cache_clear()

    assert db.database_url().endswith(f"@{RDS_SECRET['host']}:5432/warehouse-prod")


def test_port_as_string_and_optional_libpq_parameters(aws) -> None:
    arn = _create_secret(aws, {**RDS_SECRET, "port": "6432", "sslmode": "verify-full"})

    url = secrets.database_url_from_secret(arn)

    assert url.endswith(":6432/warehouse?sslmode=verify-full")
    assert psycopg.conninfo.conninfo_to_dict(url)["sslmode"] == "verify-full"


def test_missing_fields_are_named_without_revealing_values(aws, caplog) -> None:
    arn = _create_secret(aws, {"username": "warehouse_app", "password": "s3cr3t-value"})
    _debug_our_loggers(caplog)

    with pytest.raises(secrets.SecretFormatError) as excinfo:
        secrets.database_url_from_secret(arn)

    assert "host" in str(excinfo.value)
    assert "s3cr3t-value" not in str(excinfo.value)
    assert "s3cr3t-value" not in caplog.text


def test_secret_that_is_not_an_object_is_rejected(aws) -> None:
    arn = _create_secret(aws, json.dumps(["not", "an", "object"]))

    with pytest.raises(secrets.SecretFormatError, match="not a JSON object"):
        secrets.database_url_from_secret(arn)


def test_nothing_is_logged_while_building_the_url(aws, caplog) -> None:
    arn = _create_secret(aws, {**RDS_SECRET, "password": "never-log-me"})
    _debug_our_loggers(caplog)

    url = secrets.database_url_from_secret(arn)

    assert "never-log-me" in url
    assert "never-log-me" not in caplog.text
