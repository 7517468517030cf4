"""The console's dead-letter rows (raw payloads) are an operator route like the API's: the same guard."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from common.adapters import db
from common.adapters.config import get_settings
from functions.console.pages.dead_letters import DEAD_LETTER_ROWS_PATH, token_required
from functions.console.routes import router
from functions.http.app import make_app

pytestmark = pytest.mark.integration

VARIABLES = ("OPERATOR_AUTH", "OPERATOR_TOKEN", "OPERATOR_TOKEN_SECRET_ARN", "WEBHOOK_TOKEN")


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[pytest.MonkeyPatch]:
    for name in VARIABLES:
        monkeypatch.setenv(name, "")  # empty counts as unset, and hides `.env`
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    db.close_pool()
    yield monkeypatch
    db.close_pool()
    get_settings.cache_clear()


def rows(authorization: str | None = None) -> int:
    headers = {"Authorization": authorization} if authorization else {}
    with TestClient(make_app([router], lambda_mode=False)) as client:
        return client.get(DEAD_LETTER_ROWS_PATH, headers=headers).status_code


def test_the_operator_token_opens_the_rows_and_the_producers_token_does_not(
    configure: pytest.MonkeyPatch,
) -> None:
    configure.setenv("OPERATOR_TOKEN", "op-secret")
    configure.setenv("WEBHOOK_TOKEN", "producer-secret")
    get_settings.cache_clear()
    assert rows() == 401
    assert rows("Bearer producer-secret") == 401
    assert rows("Bearer op-secret") == 200
    assert token_required()


def test_open_without_a_token_only_outside_lambda(configure: pytest.MonkeyPatch) -> None:
    assert rows() == 200 and not token_required()
