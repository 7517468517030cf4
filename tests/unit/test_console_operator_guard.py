"""Who may read the console's dead-letter rows: the operator routes' rule, from the settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from common.config import get_settings
from functions.console.pages import operator_allowed, token_required

VARIABLES = ("OPERATOR_AUTH", "OPERATOR_TOKEN", "OPERATOR_TOKEN_SECRET_ARN", "WEBHOOK_TOKEN")
SECRET = "arn:aws:secretsmanager:eu-central-1:111122223333:secret:ws/operator-AbCdEf"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in VARIABLES:
        monkeypatch.setenv(name, "")  # empty counts as unset, and hides `.env`
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def configure(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def test_open_when_no_token_is_configured(settings: pytest.MonkeyPatch) -> None:
    assert operator_allowed(None) and not token_required()


def test_the_operator_token_when_set(settings: pytest.MonkeyPatch) -> None:
    configure(settings, OPERATOR_TOKEN="op-secret", WEBHOOK_TOKEN="producer-secret")
    assert operator_allowed("Bearer op-secret")
    assert not operator_allowed("Bearer producer-secret")  # the producers' token is not enough
    assert not operator_allowed(None) and not operator_allowed("op-secret")
    assert token_required()


def test_closed_when_the_token_is_in_a_secret_not_read(settings: pytest.MonkeyPatch) -> None:
    configure(settings, OPERATOR_TOKEN_SECRET_ARN=SECRET)
    assert not operator_allowed(None) and not operator_allowed("Bearer anything")
    assert token_required()


def test_the_webhook_token_as_the_replay_route_checks_today(settings: pytest.MonkeyPatch) -> None:
    configure(settings, WEBHOOK_TOKEN="producer-secret")
    assert operator_allowed("Bearer producer-secret") and not operator_allowed("Bearer other")


def test_gateway_mode_trusts_api_gateways_authorizer(settings: pytest.MonkeyPatch) -> None:
    configure(settings, OPERATOR_AUTH="gateway", OPERATOR_TOKEN="op-secret")
    assert operator_allowed(None)
    assert token_required()  # the browser still has to bring the JWT the gateway checks
