"""The operator routes of a real app: closed by OPERATOR_TOKEN, never opened by the webhook's token.

A second app is started with both tokens set ("a second app started with OPERATOR_TOKEN set
answers 401 to the dead-letter list without it and 200 with it"). The suite's main app has no
token at all: it must say so at start, once per group of open routes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import WEBHOOK, AppProcess, body, envelope, new_id, start_app

OPERATOR_TOKEN = "operator-e2e-6b1f0c"
WEBHOOK_TOKEN = "webhook-e2e-a93d27"
LIST = "/api/v1/rejected-events"


@pytest.fixture(scope="module")
def guarded(app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    log = Path(tmp_path_factory.mktemp("guarded-app")) / "uvicorn.log"
    process = start_app({**app_env, "OPERATOR_TOKEN": OPERATOR_TOKEN, "WEBHOOK_TOKEN": WEBHOOK_TOKEN}, log)
    yield process
    process.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def parked_id(guarded: AppProcess) -> int:
    """A dead letter of this module: a departure with no stock, sent with the webhook token."""
    departure = envelope("departure", movement_id=new_id(), warehouse_id=new_id(), product_id=new_id(),
                         quantity=3)  # fmt: skip
    response = httpx.post(f"{guarded.url}{WEBHOOK}", content=body(departure), headers=bearer(WEBHOOK_TOKEN))
    assert response.status_code == 409, response.text
    return int(response.json()["rejected_event_id"])


def test_the_dead_letter_list_wants_the_operator_token(guarded: AppProcess, parked_id: int) -> None:
    with httpx.Client(base_url=guarded.url, timeout=30) as client:
        without = client.get(LIST)
        assert without.status_code == 401
        assert without.headers["www-authenticate"] == "Bearer"
        assert without.json()["detail"] == "missing or wrong bearer token"

        with_token = client.get(LIST, params={"reason": "insufficient_stock", "limit": 500},
                                headers=bearer(OPERATOR_TOKEN))  # fmt: skip
        assert with_token.status_code == 200
        assert "items" in with_token.json()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", LIST),
        ("GET", f"{LIST}?reason=bored"),  # 401, not 422: validation waits for the token
        ("GET", f"{LIST}/1"),
        ("GET", f"{LIST}/not-an-id"),
        ("POST", f"{LIST}/1/replay"),
        ("POST", f"{LIST}/not-an-id/replay"),
        ("POST", "/api/v1/pollers/partitions/warehouse-movements/1/skip"),
        ("POST", "/api/v1/pollers/partitions/warehouse-movements/1/resume"),
        ("POST", "/api/v1/pollers/partitions/bad topic!/x/nonsense"),
    ],
)
@pytest.mark.parametrize("token", [None, WEBHOOK_TOKEN, OPERATOR_TOKEN + "x"])
def test_every_operator_route_refuses_without_the_operator_token(
    guarded: AppProcess, method: str, path: str, token: str | None
) -> None:
    headers = bearer(token) if token else {}
    response = httpx.request(method, f"{guarded.url}{path}", headers=headers, timeout=30)
    assert response.status_code == 401, response.text
    assert OPERATOR_TOKEN not in response.text and WEBHOOK_TOKEN not in response.text


def test_one_dead_letter_and_its_replay_with_the_operator_token(guarded: AppProcess, parked_id: int) -> None:
    with httpx.Client(base_url=guarded.url, timeout=30, headers=bearer(OPERATOR_TOKEN)) as client:
        one = client.get(f"{LIST}/{parked_id}")
        assert one.status_code == 200
        assert one.json()["id"] == parked_id and one.json()["reason"] == "insufficient_stock"
        assert client.get(f"{LIST}/9223372036854775807").status_code == 404

        replay = client.post(f"{LIST}/{parked_id}/replay")
        assert replay.status_code == 200
        assert (replay.json()["status"], replay.json()["reason"]) == ("rejected", "insufficient_stock")


def test_the_webhook_wants_its_own_token_not_the_operators(guarded: AppProcess) -> None:
    arrival = body(envelope("arrival", movement_id=new_id(), warehouse_id=new_id(), product_id=new_id(),
                            quantity=1))  # fmt: skip
    with httpx.Client(base_url=guarded.url, timeout=30) as client:
        assert client.post(WEBHOOK, content=arrival, headers=bearer(OPERATOR_TOKEN)).status_code == 401
        assert client.post(WEBHOOK, content=arrival, headers=bearer(WEBHOOK_TOKEN)).status_code == 200


def test_a_guarded_app_warns_about_nothing(guarded: AppProcess) -> None:
    assert " is open" not in guarded.log() and " are open" not in guarded.log()


def test_an_app_without_tokens_warns_once_per_group_of_open_routes(app: AppProcess) -> None:
    httpx.get(f"{app.url}/health", timeout=10)  # started: its lifespan ran
    log = app.log()
    assert log.count("POST /api/v1/kafka/webhook is open") == 1, log
    assert log.count("are open: OPERATOR_TOKEN is not set") == 1, log
