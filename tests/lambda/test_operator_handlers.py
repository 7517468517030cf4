"""The operator functions in process, in both OPERATOR_AUTH modes, and fail-closed start-up.

`token`: the function checks `Authorization: Bearer <operator token>` (the webhook's is refused).
`gateway`: API Gateway's IAM or JWT authorizer checks operators; the function still refuses an
event that did not pass one. In Lambda, a function whose routes would be open does not start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from common.adapters.config import get_settings
from functions.list_resources.handler import handler as list_handler
from functions.replay.handler import handler as replay_handler
from tests.e2e.support import PROJECT_ROOT

OPERATOR = "operator-lambda-58e2a1"
WEBHOOK = "webhook-lambda-0c7d94"
LIST = "/api/v1/rejected-events"
UNKNOWN = 9223372036854775807
IAM = {"iam": {"accountId": "123456789012", "userArn": "arn:aws:iam::123456789012:user/ops"}}
JWT = {"jwt": {"claims": {"sub": "ops", "aud": "operators"}, "scopes": None}}


@pytest.fixture(autouse=True)
def auth(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("OPERATOR_TOKEN", "OPERATOR_TOKEN_SECRET_ARN", "OPERATOR_AUTH", "WEBHOOK_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def configure(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def request(make_event: Any, method: str, path: str, *, token: str | None = None,
            authorizer: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    event = make_event("apigw_list_stock.json", method, path, headers={"authorization": f"Bearer {token}"}
                       if token else {})  # fmt: skip
    if method == "POST":
        event["headers"]["content-length"] = "0"
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    return event


def test_token_mode_lists_dead_letters_for_the_operator_token_only(
    monkeypatch: pytest.MonkeyPatch, make_event: Any, call_lambda: Any
) -> None:
    configure(monkeypatch, OPERATOR_TOKEN=OPERATOR, WEBHOOK_TOKEN=WEBHOOK)
    for token in (None, WEBHOOK, OPERATOR.upper()):
        refused = call_lambda(list_handler, request(make_event, "GET", LIST, token=token))
        assert refused.status == 401, refused.body
        assert refused.headers["www-authenticate"] == "Bearer"
    # Even an event that passed a gateway authorizer needs the token in this mode.
    assert call_lambda(list_handler, request(make_event, "GET", LIST, authorizer=IAM)).status == 401

    allowed = call_lambda(list_handler, request(make_event, "GET", LIST, token=OPERATOR))
    assert allowed.status == 200 and "items" in allowed.json()
    one = call_lambda(list_handler, request(make_event, "GET", f"{LIST}/{UNKNOWN}", token=OPERATOR))
    assert one.status == 404
    assert call_lambda(list_handler, request(make_event, "GET", f"{LIST}/{UNKNOWN}")).status == 401


def test_token_mode_replays_for_the_operator_token_only(
    monkeypatch: pytest.MonkeyPatch, make_event: Any, call_lambda: Any
) -> None:
    configure(monkeypatch, OPERATOR_TOKEN=OPERATOR, WEBHOOK_TOKEN=WEBHOOK)
    path = f"{LIST}/{UNKNOWN}/replay"
    for token in (None, WEBHOOK):
        assert call_lambda(replay_handler, request(make_event, "POST", path, token=token)).status == 401
    assert call_lambda(replay_handler, request(make_event, "POST", path, token=OPERATOR)).status == 404


@pytest.mark.parametrize("authorizer", [IAM, JWT], ids=["iam", "jwt"])
def test_gateway_mode_serves_what_the_authorizer_passed(
    monkeypatch: pytest.MonkeyPatch, make_event: Any, call_lambda: Any, authorizer: dict[str, Any]
) -> None:
    configure(monkeypatch, OPERATOR_AUTH="gateway")
    listed = call_lambda(list_handler, request(make_event, "GET", LIST, authorizer=authorizer))
    assert listed.status == 200
    replayed = call_lambda(
        replay_handler, request(make_event, "POST", f"{LIST}/{UNKNOWN}/replay", authorizer=authorizer)
    )
    assert replayed.status == 404


def test_gateway_mode_refuses_an_event_without_an_authorizer(
    monkeypatch: pytest.MonkeyPatch, make_event: Any, call_lambda: Any
) -> None:
    """A route that lost its authorizer in the template still does not serve raw payloads."""
    configure(monkeypatch, OPERATOR_AUTH="gateway", OPERATOR_TOKEN=OPERATOR)
    for method, path, handler in (("GET", LIST, list_handler), ("GET", f"{LIST}/1", list_handler),
                                  ("POST", f"{LIST}/1/replay", replay_handler)):  # fmt: skip
        answer = call_lambda(handler, request(make_event, method, path, token=OPERATOR))
        assert answer.status == 401, (path, answer.body)


def start(module: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Import a handler module as a Lambda cold start would (AWS_LAMBDA_FUNCTION_NAME set)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBHOOK_TOKEN", "OPERATOR_"))}
    env |= {"AWS_LAMBDA_FUNCTION_NAME": "warehouse-test", "POWERTOOLS_TRACE_DISABLED": "true", **variables}
    return subprocess.run([sys.executable, "-c", f"import {module}"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_in_lambda_the_webhook_does_not_start_without_a_token() -> None:
    refused = start("functions.webhook.handler")
    assert refused.returncode != 0
    assert "the webhook refuses to start in Lambda without a token" in refused.stderr
    assert start("functions.webhook.handler", WEBHOOK_TOKEN_SECRET_ARN="arn:aws:x").returncode == 0


@pytest.mark.parametrize("module", ["functions.list_resources.handler", "functions.replay.handler"])
def test_in_lambda_operator_functions_need_a_token_in_token_mode(module: str) -> None:
    refused = start(module, OPERATOR_AUTH="token")
    assert refused.returncode != 0
    assert "OPERATOR_TOKEN_SECRET_ARN is not set" in refused.stderr
    assert start(module, OPERATOR_AUTH="token", OPERATOR_TOKEN_SECRET_ARN="arn:aws:x").returncode == 0
    assert start(module, OPERATOR_AUTH="gateway").returncode == 0
