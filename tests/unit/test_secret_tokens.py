"""Bearer tokens and the database URL from a Secrets Manager mocked by moto: no AWS account.

The routes read the tokens through Powertools Parameters with a short cache: a rotated token takes
effect within TOKEN_MAX_AGE_SECONDS, an empty or unreadable secret closes the route (503), and the
webhook's token never opens an operator route.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from fastapi import APIRouter, Depends
from starlette.testclient import TestClient

from common.adapters import (
    db,
    secrets,
)
from common.adapters.config import get_settings
from functions.http import guards
from functions.http.app import make_app

REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A mocked Secrets Manager, fake credentials, clean settings and Powertools caches."""
    for name in (
        "AWS_PROFILE", "AWS_SESSION_TOKEN", "DATABASE_URL", "DB_SECRET_ARN", "DB_PROXY_ENDPOINT",
        "WEBHOOK_TOKEN", "OPERATOR_TOKEN", "WEBHOOK_TOKEN_SECRET_ARN", "OPERATOR_TOKEN_SECRET_ARN",
        "OPERATOR_AUTH",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    reset()
    with moto.mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)
    reset()


def reset() -> None:
    get_settings.cache_clear()
    parameters.clear_caches()
    DEFAULT_PROVIDERS.clear()


def use(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def secret(client: Any, name: str, value: str) -> str:
    return client.create_secret(Name=name, SecretString=value)["ARN"]


def operator_app() -> TestClient:
    """An operator route, guarded as the real ones are."""
    router = APIRouter()

    @router.get("/ops", dependencies=[Depends(guards.require_operator)])
    def ops() -> dict[str, bool]:
        return {"ok": True}

    return TestClient(make_app([router], lambda_mode=True), raise_server_exceptions=False)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_come_from_their_secrets(aws, monkeypatch) -> None:
    webhook_arn = secret(aws, "ws/webhook-token", "producers-7f3a")
    operator_arn = secret(aws, "ws/operator-token", "operators-c41d\n")  # a pasted newline is dropped
    use(monkeypatch, WEBHOOK_TOKEN_SECRET_ARN=webhook_arn, OPERATOR_TOKEN_SECRET_ARN=operator_arn)

    assert guards.webhook_token() == "producers-7f3a"
    assert guards.operator_token() == "operators-c41d"
    ops = operator_app()
    assert ops.get("/ops", headers=bearer("operators-c41d")).status_code == 200
    assert ops.get("/ops", headers=bearer("producers-7f3a")).status_code == 401
    assert ops.get("/ops").status_code == 401


def test_a_rotated_token_takes_effect_within_the_cache_age(aws, monkeypatch) -> None:
    arn = secret(aws, "ws/operator-token", "before-rotation")
    use(monkeypatch, OPERATOR_TOKEN_SECRET_ARN=arn)
    monkeypatch.setattr(secrets, "TOKEN_MAX_AGE_SECONDS", 1)
    ops = operator_app()
    assert ops.get("/ops", headers=bearer("before-rotation")).status_code == 200

    aws.put_secret_value(SecretId=arn, SecretString="after-rotation")
    # Within the max age the cached token still holds (no Secrets Manager call per request)...
    assert ops.get("/ops", headers=bearer("before-rotation")).status_code == 200
    time.sleep(1.2)
    # ...and past it the new one is required.
    assert ops.get("/ops", headers=bearer("before-rotation")).status_code == 401
    assert ops.get("/ops", headers=bearer("after-rotation")).status_code == 200


def test_token_reads_are_cached_with_the_short_max_age(aws, monkeypatch) -> None:
    arn = secret(aws, "ws/webhook-token", "producers-7f3a")
    use(monkeypatch, WEBHOOK_TOKEN_SECRET_ARN=arn)
    calls: list[dict[str, Any]] = []
    real = parameters.get_secret

    def spy(name: str, **kwargs: Any) -> Any:
        calls.append({"name": name, **kwargs})
        return real(name, **kwargs)

    monkeypatch.setattr(parameters, "get_secret", spy)
    guards.webhook_token()
    assert calls == [{"name": arn, "max_age": secrets.TOKEN_MAX_AGE_SECONDS}]


@pytest.mark.parametrize("value", [" ", "   \n"])
def test_an_empty_token_secret_closes_the_route(aws, monkeypatch, value) -> None:
    arn = secret(aws, "ws/operator-token", value)
    use(monkeypatch, OPERATOR_TOKEN_SECRET_ARN=arn)
    response = operator_app().get("/ops", headers=bearer(""))
    assert response.status_code == 503  # never "no token configured, open"


def test_a_missing_token_secret_closes_the_route_and_logs_no_value(aws, monkeypatch, caplog) -> None:
    use(monkeypatch, OPERATOR_TOKEN_SECRET_ARN=f"arn:aws:secretsmanager:{REGION}:123456789012:secret:nope")
    caplog.set_level(logging.DEBUG, logger="functions")
    response = operator_app().get("/ops", headers=bearer("guess"))
    assert response.status_code == 503
    assert "cannot read the operator token" in caplog.text


# --- the database secret: proxy host, forced refresh --------------------------------------------

RDS_SECRET = {"host": "db.internal", "port": 5432, "username": "app", "password": "pw-1", "dbname": "wh"}


def test_db_proxy_endpoint_replaces_the_secrets_host(aws, monkeypatch) -> None:
    arn = secret(aws, "ws/db", json.dumps(RDS_SECRET))
    use(monkeypatch, DB_SECRET_ARN=arn, DB_PROXY_ENDPOINT="ws-db.proxy-abc.eu-west-1.rds.amazonaws.com")
    assert db.database_url() == "postgresql://app:pw-1@ws-db.proxy-abc.eu-west-1.rds.amazonaws.com:5432/wh"


def test_a_refresh_bypasses_the_secret_cache(aws, monkeypatch) -> None:
    arn = secret(aws, "ws/db", json.dumps(RDS_SECRET))
    use(monkeypatch, DB_SECRET_ARN=arn)
    assert ":pw-1@" in db.database_url()
    aws.put_secret_value(SecretId=arn, SecretString=json.dumps({**RDS_SECRET, "password": "pw-2"}))
    assert ":pw-1@" in db.database_url()  # cached
    assert ":pw-2@" in db.database_url(refresh=True)
    assert ":pw-2@" in db.database_url()  # and the cache now holds the new one


def test_session_guards_travel_in_the_startup_packet_unless_behind_a_proxy(aws, monkeypatch) -> None:
    use(monkeypatch, DB_STATEMENT_TIMEOUT_MS="4000", DB_LOCK_TIMEOUT_MS="700")
    direct = db.connection_kwargs(get_settings())
    assert direct["options"] == (
        "-c statement_timeout=4000 -c lock_timeout=700 -c idle_in_transaction_session_timeout=30000 "
        "-c TimeZone=UTC"
    )
    assert "prepare_threshold" not in direct
    use(monkeypatch, DB_PROXY_ENDPOINT="proxy.internal")
    proxied = db.connection_kwargs(get_settings())
    assert "options" not in proxied  # RDS Proxy refuses startup options
    assert proxied["prepare_threshold"] is None  # and pins sessions that prepare statements


def test_two_token_secrets_holding_the_same_value_open_no_operator_route(aws, monkeypatch, caplog) -> None:
    """The producers' token must never open the operator routes, also when both come from secrets
    (or one is plain and one a secret): compared as resolved, refused, and said in the log."""
    webhook_arn = secret(aws, "ws/webhook-token", "same-value")
    operator_arn = secret(aws, "ws/operator-token", "same-value\n")
    use(monkeypatch, WEBHOOK_TOKEN_SECRET_ARN=webhook_arn, OPERATOR_TOKEN_SECRET_ARN=operator_arn)
    caplog.set_level(logging.ERROR, logger="functions.http.guards")
    ops = operator_app()
    assert ops.get("/ops", headers=bearer("same-value")).status_code == 401
    assert "operator token equals the webhook token" in caplog.text

    monkeypatch.delenv("WEBHOOK_TOKEN_SECRET_ARN")
    use(monkeypatch, WEBHOOK_TOKEN="same-value")  # one plain, one from a secret
    assert ops.get("/ops", headers=bearer("same-value")).status_code == 401

    monkeypatch.delenv("WEBHOOK_TOKEN")
    use(monkeypatch, WEBHOOK_TOKEN_SECRET_ARN=secret(aws, "ws/webhook-token-2", "another-value"))
    assert ops.get("/ops", headers=bearer("same-value")).status_code == 200  # they differ: open to it
    assert ops.get("/ops", headers=bearer("another-value")).status_code == 401


def test_one_secret_for_both_tokens_is_warned_about_at_start(monkeypatch) -> None:
    use(monkeypatch, WEBHOOK_TOKEN_SECRET_ARN="arn:aws:x:same", OPERATOR_TOKEN_SECRET_ARN="arn:aws:x:same")
    warnings = guards.open_route_warnings(get_settings())
    assert any("OPERATOR_TOKEN_SECRET_ARN is WEBHOOK_TOKEN_SECRET_ARN" in w for w in warnings), warnings
