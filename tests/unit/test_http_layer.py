"""The shared HTTP layer in-process: JSON for unexpected errors, request ids, cursors, tokens."""

from __future__ import annotations

import logging

import pytest
from fastapi import APIRouter
from starlette.testclient import TestClient

from common.adapters.cursor import BadCursor, decode_cursor, encode_cursor
from functions.http.app import make_app
from functions.http.guards import bearer_token_ok


def _app() -> TestClient:
    router = APIRouter()

    @router.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    return TestClient(make_app([router], lambda_mode=True), raise_server_exceptions=False)


def test_unexpected_error_is_generic_json_500_with_the_logged_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="functions.http.app"):
        response = _app().get("/boom", headers={"x-request-id": "req-42"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error", "request_id": "req-42"}
    assert response.headers["x-request-id"] == "req-42"
    assert "secret internals" not in response.text
    assert any("req-42" in r.getMessage() and r.exc_info for r in caplog.records)


def test_an_unusable_client_request_id_is_replaced() -> None:
    response = _app().get("/boom", headers={"x-request-id": "bad id with spaces"})
    rid = response.json()["request_id"]
    assert rid and " " not in rid and response.headers["x-request-id"] == rid


@pytest.mark.parametrize("kind", ["stock", "movements", "rejected"])
def test_cursor_round_trip_and_tamper(kind: str) -> None:
    cursor = encode_cursor(kind, "4705204f-498f-4f96-b4ba-df17fb56bf55")  # type: ignore[arg-type]
    assert "=" not in cursor
    assert decode_cursor(kind, cursor) == "4705204f-498f-4f96-b4ba-df17fb56bf55"  # type: ignore[arg-type]
    other = "stock" if kind != "stock" else "movements"
    with pytest.raises(BadCursor):
        decode_cursor(other, cursor)  # type: ignore[arg-type]
    for forged in ("", "!!!", cursor + "*", "c3RvY2s"):
        with pytest.raises(BadCursor):
            decode_cursor(kind, forged)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "expected", "ok"),
    [
        (None, None, True),
        ("anything", None, True),
        (None, "t0k", False),
        ("Bearer t0k", "t0k", True),
        ("bearer t0k", "t0k", True),
        ("Bearer t0k2", "t0k", False),
        ("Basic t0k", "t0k", False),
        ("t0k", "t0k", False),
    ],
)
def test_bearer_token(header: str | None, expected: str | None, ok: bool) -> None:
    assert bearer_token_ok(header, expected) is ok
