"""The guards in-process: operator auth in both modes, fail-closed start, open-route warnings, 503s.

No services: an app with one operator route stands in for the real ones (the real routes are
tested end to end in tests/e2e/test_operator_auth.py and tests/lambda/test_operator_auth.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
import pytest
from fastapi import APIRouter, Depends, Path, Query
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from common.adapters.config import ConfigError, get_settings
from functions.http import guards
from functions.http.app import make_app

OPERATOR = "operator-token-7d2f"
WEBHOOK = "webhook-token-1b9e"
TOKEN_VARIABLES = (
    "WEBHOOK_TOKEN",
    "WEBHOOK_TOKEN_SECRET_ARN",
    "OPERATOR_TOKEN",
    "OPERATOR_TOKEN_SECRET_ARN",
    "OPERATOR_AUTH",
    "AWS_LAMBDA_FUNCTION_NAME",
)


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in TOKEN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def configure(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


class WithEvent:
    """Puts an API Gateway event into the scope, as Mangum does in Lambda."""

    def __init__(self, app: ASGIApp, event: dict[str, Any] | None) -> None:
        self.app, self.event = app, event

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.event is not None and scope["type"] == "http":
            scope["aws.event"] = self.event
        await self.app(scope, receive, send)


def client(event: dict[str, Any] | None = None) -> TestClient:
    router = APIRouter()
    calls: list[int] = []

    @router.get("/ops/{item_id}", dependencies=[Depends(guards.require_operator)])
    def operator_route(
        item_id: Annotated[int, Path(ge=1)], limit: Annotated[int, Query(le=10)] = 1
    ) -> dict[str, int]:
        calls.append(item_id)
        return {"item_id": item_id}

    app = make_app([router], lambda_mode=True)
    test_client = TestClient(WithEvent(app, event), raise_server_exceptions=False)
    test_client.calls = calls
    return test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- OPERATOR_AUTH=token -------------------------------------------------------------------------


def test_operator_token_is_required_and_checked_before_the_path_and_query(monkeypatch) -> None:
    configure(monkeypatch, OPERATOR_TOKEN=OPERATOR, WEBHOOK_TOKEN=WEBHOOK)
    c = client()
    refused = [
        c.get("/ops/1"),
        c.get("/ops/1", headers=bearer(OPERATOR + "x")),
        c.get("/ops/1", headers=bearer(OPERATOR[:-1])),
        c.get("/ops/1", headers={"Authorization": f"Basic {OPERATOR}"}),
        c.get("/ops/1", headers={"Authorization": "Bearer"}),
        c.get("/ops/1", headers=bearer(WEBHOOK)),  # the producers' token never opens these
        c.get("/ops/not-a-number"),  # 401, not 422: nothing is learnt without the token
        c.get("/ops/1?limit=99"),
    ]
    for response in refused:
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"detail": "missing or wrong bearer token"}
        assert OPERATOR not in response.text
    assert c.calls == []

    assert c.get("/ops/7", headers=bearer(OPERATOR)).json() == {"item_id": 7}
    assert c.get("/ops/0", headers=bearer(OPERATOR)).status_code == 422  # validation after the token


def test_operator_token_equal_to_the_webhook_token_refuses_everyone(monkeypatch) -> None:
    configure(monkeypatch, OPERATOR_TOKEN=WEBHOOK, WEBHOOK_TOKEN=WEBHOOK)
    assert client().get("/ops/1", headers=bearer(WEBHOOK)).status_code == 401


def test_no_operator_token_leaves_the_route_open_outside_lambda(monkeypatch) -> None:
    configure(monkeypatch, WEBHOOK_TOKEN=WEBHOOK)
    assert client().get("/ops/3").json() == {"item_id": 3}


def test_a_token_secret_that_cannot_be_read_closes_the_route_with_503(monkeypatch) -> None:
    configure(monkeypatch, OPERATOR_TOKEN_SECRET_ARN="arn:aws:secretsmanager:eu-west-1:1:secret:x")

    def unreadable(arn: str) -> str:
        raise RuntimeError("AccessDenied")

    monkeypatch.setattr("common.adapters.secrets.token_from_secret", unreadable)
    response = client().get("/ops/1", headers=bearer(OPERATOR))
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()


# --- OPERATOR_AUTH=gateway -----------------------------------------------------------------------

IAM_EVENT = {"requestContext": {"authorizer": {"iam": {"userArn": "arn:aws:iam::1:user/ops"}}}}
JWT_EVENT = {"requestContext": {"authorizer": {"jwt": {"claims": {"sub": "ops"}, "scopes": None}}}}


@pytest.mark.parametrize("event", [IAM_EVENT, JWT_EVENT])
def test_gateway_mode_trusts_an_event_the_authorizer_passed(monkeypatch, event) -> None:
    configure(monkeypatch, OPERATOR_AUTH="gateway", OPERATOR_TOKEN=OPERATOR)
    assert client(event).get("/ops/2").json() == {"item_id": 2}  # no bearer token needed


@pytest.mark.parametrize(
    "event",
    [
        {"requestContext": {}},
        {"requestContext": {"authorizer": {}}},
        {"requestContext": {"authorizer": None}},
    ],
)
def test_gateway_mode_in_lambda_refuses_an_event_without_an_authorizer(monkeypatch, event) -> None:
    configure(monkeypatch, OPERATOR_AUTH="gateway")
    c = client(event)
    assert c.get("/ops/2").status_code == 401
    assert c.get("/ops/not-a-number").status_code == 401
    assert c.calls == []


# --- start-up ------------------------------------------------------------------------------------


def test_lambda_functions_refuse_to_start_without_their_token(monkeypatch) -> None:
    configure(monkeypatch, AWS_LAMBDA_FUNCTION_NAME="warehouse-webhook")
    with pytest.raises(ConfigError, match="WEBHOOK_TOKEN_SECRET_ARN"):
        guards.check_lambda_start(webhook=True)
    with pytest.raises(ConfigError, match="OPERATOR_TOKEN_SECRET_ARN"):
        guards.check_lambda_start(operator=True)

    configure(monkeypatch, WEBHOOK_TOKEN_SECRET_ARN="arn:w", OPERATOR_TOKEN_SECRET_ARN="arn:o")
    guards.check_lambda_start(webhook=True, operator=True)
    configure(monkeypatch, OPERATOR_TOKEN_SECRET_ARN="", OPERATOR_AUTH="gateway")
    guards.check_lambda_start(operator=True)  # the gateway's authorizer checks operators


def test_outside_lambda_nothing_refuses_to_start() -> None:
    guards.check_lambda_start(webhook=True, operator=True)


def test_one_warning_per_open_group_of_routes(monkeypatch) -> None:
    warnings = guards.open_route_warnings(get_settings())
    assert len(warnings) == 2
    assert "POST /api/v1/kafka/webhook is open" in warnings[0]
    assert "GET /api/v1/rejected-events/{rejected_event_id}" in warnings[1] and "are open" in warnings[1]

    configure(monkeypatch, WEBHOOK_TOKEN=WEBHOOK, OPERATOR_TOKEN_SECRET_ARN="arn:o")
    assert guards.open_route_warnings(get_settings()) == []
    configure(monkeypatch, OPERATOR_AUTH="gateway")
    (gateway,) = guards.open_route_warnings(get_settings())
    assert gateway.startswith("OPERATOR_AUTH=gateway")


# --- database faults over HTTP -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "detail", "retry_after"),
    [
        (psycopg.errors.LockNotAvailable, "the data is locked by another transaction, retry shortly", "1"),
        (psycopg.errors.QueryCanceled, "the database did not answer in time, retry later", "5"),
        (psycopg.OperationalError, "database unavailable, retry later", "5"),
    ],
)
def test_lock_and_statement_timeouts_are_503_with_retry_after(error, detail, retry_after) -> None:
    router = APIRouter()

    @router.get("/db")
    def db_route() -> None:
        raise error("canceling statement due to lock timeout")

    response = TestClient(make_app([router], lambda_mode=True), raise_server_exceptions=False).get("/db")
    assert response.status_code == 503
    assert response.json()["detail"] == detail
    assert response.headers["retry-after"] == retry_after
