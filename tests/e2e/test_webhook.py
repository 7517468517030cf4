"""POST /api/v1/kafka/webhook over real HTTP: outcomes, the brief's scenario, races, and refusals."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.support import (
    WEBHOOK,
    AppProcess,
    body,
    envelope,
    new_id,
    rejected_cursor_before,
    start_app,
)


def post(api: httpx.Client, env: dict[str, Any]) -> httpx.Response:
    return api.post(WEBHOOK, content=body(env), headers={"content-type": "application/json"})


def stock(api: httpx.Client, warehouse_id: str, product_id: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/warehouse/{warehouse_id}/products/{product_id}")
    assert response.status_code == 200, response.text
    return response.json()


def arrival(api: httpx.Client, warehouse_id: str, product_id: str, quantity: int) -> None:
    """Put stock in place with an arrival-only movement."""
    response = post(
        api,
        envelope(
            "arrival",
            movement_id=new_id(),
            warehouse_id=warehouse_id,
            product_id=product_id,
            quantity=quantity,
        ),
    )
    assert response.status_code == 200, response.text


def dead_letters(api: httpx.Client, reason: str, *, from_id: int | None = None) -> list[dict[str, Any]]:
    """The dead letters of `reason` (from `from_id` on, when given), all pages."""
    items: list[dict[str, Any]] = []
    cursor = rejected_cursor_before(from_id) if from_id is not None else None
    while True:
        params: dict[str, str | int] = {
            "reason": reason,
            "limit": 500,
            **({"cursor": cursor} if cursor else {}),
        }
        page = api.get("/api/v1/rejected-events", params=params).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_applied_event_answers_with_the_new_stock(api: httpx.Client) -> None:
    w, p, m = new_id(), new_id(), new_id()
    response = post(api, envelope("arrival", movement_id=m, warehouse_id=w, product_id=p, quantity=7))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "status": "applied",
        "movement_id": m,
        "event": "arrival",
        "warehouse_id": w,
        "product_id": p,
        "quantity": 7,
        "stock": 7,
    }
    assert stock(api, w, p)["quantity"] == 7


def test_brief_example_departure_then_arrival(api: httpx.Client) -> None:
    a, b, product, movement = new_id(), new_id(), new_id(), new_id()
    arrival(api, a, product, 150)

    departure = post(
        api,
        envelope(
            "departure",
            movement_id=movement,
            warehouse_id=a,
            product_id=product,
            quantity=100,
            timestamp="2025-02-18T12:12:56Z",
        ),  # fmt: skip
    )
    assert departure.status_code == 200
    assert departure.json()["stock"] == 50
    in_transit = api.get(f"/api/v1/movements/{movement}").json()
    assert in_transit["status"] == "in_transit"
    assert in_transit["arrived_at"] is None

    arrived = post(
        api,
        envelope(
            "arrival",
            movement_id=movement,
            warehouse_id=b,
            product_id=product,
            quantity=98,
            timestamp="2025-02-18T14:34:56Z",
        ),  # fmt: skip
    )
    assert arrived.status_code == 200
    assert arrived.json()["stock"] == 98

    view = api.get(f"/api/v1/movements/{movement}").json()
    assert view["status"] == "delivered"
    assert view["source_warehouse_id"] == a
    assert view["destination_warehouse_id"] == b
    assert view["departed_quantity"] == 100
    assert view["arrived_quantity"] == 98
    assert view["quantity_difference"] == -2
    assert view["transit_seconds"] == 8520
    assert stock(api, a, product)["quantity"] == 50
    assert stock(api, b, product)["quantity"] == 98


def test_arrival_before_departure(api: httpx.Client) -> None:
    a, b, product, movement = new_id(), new_id(), new_id(), new_id()
    arrival(api, a, product, 100)
    first = post(
        api,
        envelope(
            "arrival",
            movement_id=movement,
            warehouse_id=b,
            product_id=product,
            quantity=98,
            timestamp="2025-02-18T14:34:56Z",
        ),  # fmt: skip
    )
    assert first.status_code == 200
    assert api.get(f"/api/v1/movements/{movement}").json()["status"] == "arrival_only"
    assert stock(api, b, product)["quantity"] == 98

    second = post(
        api,
        envelope(
            "departure",
            movement_id=movement,
            warehouse_id=a,
            product_id=product,
            quantity=100,
            timestamp="2025-02-18T12:12:56Z",
        ),  # fmt: skip
    )
    assert second.status_code == 200
    view = api.get(f"/api/v1/movements/{movement}").json()
    assert (view["status"], view["quantity_difference"], view["transit_seconds"]) == ("delivered", -2, 8520)
    assert stock(api, a, product)["quantity"] == 0


def test_five_exact_duplicates_apply_once(api: httpx.Client) -> None:
    w, p, m = new_id(), new_id(), new_id()
    payload = body(envelope("arrival", movement_id=m, warehouse_id=w, product_id=p, quantity=3))
    with ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(lambda _: api.post(WEBHOOK, content=payload), range(5)))
    assert [r.status_code for r in responses] == [200] * 5
    assert Counter(r.json()["status"] for r in responses) == {"applied": 1, "duplicate": 4}
    assert [r.json()["stock"] for r in responses if r.json()["status"] == "applied"] == [3]
    assert stock(api, w, p)["quantity"] == 3


def test_redelivery_is_duplicate_reporting_the_current_stock(api: httpx.Client) -> None:
    w, p, m = new_id(), new_id(), new_id()
    env = envelope("arrival", movement_id=m, warehouse_id=w, product_id=p, quantity=3)
    assert post(api, env).json()["status"] == "applied"
    arrival(api, w, p, 4)
    for _ in range(3):
        again = post(api, {**env, "id": new_id()})  # the envelope id is not a key: same event
        assert again.status_code == 200
        assert (again.json()["status"], again.json()["stock"]) == ("duplicate", 7)
    assert stock(api, w, p)["quantity"] == 7


def test_200_concurrent_departures_against_stock_100(app: AppProcess) -> None:
    w, p = new_id(), new_id()
    with httpx.Client(base_url=app.url, timeout=60, limits=httpx.Limits(max_connections=32)) as client:
        arrival(client, w, p, 100)
        payloads = [
            body(envelope("departure", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=1))
            for _ in range(200)
        ]
        with ThreadPoolExecutor(32) as pool:
            responses = list(pool.map(lambda raw: client.post(WEBHOOK, content=raw), payloads))
        codes = Counter(r.status_code for r in responses)
        assert codes == {200: 100, 409: 100}
        assert {r.json()["reason"] for r in responses if r.status_code == 409} == {"insufficient_stock"}
        assert sorted(r.json()["stock"] for r in responses if r.status_code == 200) == list(range(100))
        assert stock(client, w, p)["quantity"] == 0


def test_insufficient_stock_is_409_and_parked(api: httpx.Client) -> None:
    w, p, m = new_id(), new_id(), new_id()
    arrival(api, w, p, 5)
    response = post(api, envelope("departure", movement_id=m, warehouse_id=w, product_id=p, quantity=6))
    assert response.status_code == 409
    answer = response.json()
    assert answer["status"] == "rejected"
    assert answer["reason"] == "insufficient_stock"
    assert "exceeds the 5 on hand" in answer["detail"]
    assert isinstance(answer["rejected_event_id"], int)
    rid = answer["rejected_event_id"]
    parked = [d for d in dead_letters(api, "insufficient_stock", from_id=rid) if d["id"] == rid]
    assert len(parked) == 1
    assert parked[0]["movement_id"] == m
    assert parked[0]["origin"] == "webhook"
    assert json.loads(parked[0]["raw_payload"])["data"]["movement_id"] == m
    assert stock(api, w, p)["quantity"] == 5


def test_conflicting_redelivery_is_409_conflict(api: httpx.Client) -> None:
    w, p, m = new_id(), new_id(), new_id()
    assert (
        post(api, envelope("arrival", movement_id=m, warehouse_id=w, product_id=p, quantity=10)).status_code
        == 200
    )
    response = post(api, envelope("arrival", movement_id=m, warehouse_id=w, product_id=p, quantity=11))
    assert response.status_code == 409
    assert response.json()["reason"] == "conflict"
    rid = response.json()["rejected_event_id"]
    assert rid in {d["id"] for d in dead_letters(api, "conflict", from_id=rid)}
    assert stock(api, w, p)["quantity"] == 10


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b"   ", "body"),
        (b"[]", "body"),
    ],
    ids=["bad-json", "empty", "blank", "not-an-object"],
)
def test_unparseable_bodies_are_422(api: httpx.Client, raw: bytes, field: str) -> None:
    response = api.post(WEBHOOK, content=raw)
    assert response.status_code == 422
    answer = response.json()
    assert (answer["status"], answer["reason"]) == ("rejected", "invalid")
    assert answer["errors"] and answer["errors"][0]["field"] == field
    assert answer["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e["data"].update(quantity="5"), "data.quantity"),
        (lambda e: e["data"].update(quantity=0), "data.quantity"),
        (lambda e: e["data"].update(warehouse_id="WH-1"), "data.warehouse_id"),
        (lambda e: e["data"].update(event="teleport"), "data.event"),
        (lambda e: e["data"].update(timestamp="yesterday"), "data.timestamp"),
        (lambda e: e["data"].update(timestamp="0001-01-01T00:00:00+01:00"), "data.timestamp"),
        (lambda e: e["data"].pop("product_id"), "data.product_id"),
        (lambda e: e.update(type="something.else"), "type"),
        (lambda e: e.update(id="a\x00b"), "id"),
    ],
    ids=[
        "quantity-string",
        "quantity-zero",
        "warehouse-not-uuid",
        "bad-event",
        "bad-timestamp",
        "timestamp-out-of-range",
        "missing-product",
        "wrong-type",
        "nul-in-id",
    ],  # fmt: skip
)
def test_invalid_events_are_422_naming_the_field_and_not_parked(
    api: httpx.Client, change: Any, field: str
) -> None:
    m = new_id()
    env = envelope("arrival", movement_id=m, warehouse_id=new_id(), product_id=new_id(), quantity=1)
    change(env)
    response = post(api, env)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["status"] == "rejected" and answer["reason"] == "invalid"
    assert field in [e["field"] for e in answer["errors"]]
    assert all(set(e) == {"field", "message", "type"} for e in answer["errors"])
    assert not [d for d in dead_letters(api, "invalid") if m in d["raw_payload"]]
    assert api.get(f"/api/v1/movements/{m}").status_code == 404


def test_body_over_one_mib_is_413(api: httpx.Client) -> None:
    w, p, m = new_id(), new_id(), new_id()
    env = envelope("arrival", movement_id=m, warehouse_id=w, product_id=p, quantity=1)
    padded = body({**env, "padding": "x" * (1024 * 1024)})
    response = api.post(WEBHOOK, content=padded)
    assert response.status_code == 413
    assert "1048576" in response.json()["detail"]
    assert api.get(f"/api/v1/movements/{m}").status_code == 404


def test_chunked_body_over_limit_is_413(api: httpx.Client) -> None:
    """Without Content-Length the limit applies while the body streams in."""

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * (64 * 1024)

    response = api.post(WEBHOOK, content=chunks())
    assert response.status_code == 413
    assert response.json()["detail"].startswith("body larger than")


def test_body_just_under_the_limit_is_parsed(api: httpx.Client) -> None:
    w, p, m = new_id(), new_id(), new_id()
    env = envelope("arrival", movement_id=m, warehouse_id=w, product_id=p, quantity=1)
    raw = body(env)
    padded = raw[:-1] + b"," + b'"padding":"' + b"x" * (1024 * 1024 - len(raw) - 13) + b'"}'
    assert len(padded) == 1024 * 1024
    assert api.post(WEBHOOK, content=padded).status_code == 200


@pytest.fixture(scope="module")
def token_app(app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    log = Path(tmp_path_factory.mktemp("token-app")) / "uvicorn.log"
    process = start_app({**app_env, "WEBHOOK_TOKEN": "s3cret-token", "MAX_BODY_BYTES": "2048"}, log)
    yield process
    process.stop()


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", "Basic czNjcmV0LXRva2Vu", "Bearer", "s3cret-token"]
)
def test_token_required_when_configured(token_app: AppProcess, authorization: str | None) -> None:
    env = envelope("arrival", movement_id=new_id(), warehouse_id=new_id(), product_id=new_id(), quantity=1)
    headers = {"authorization": authorization} if authorization else {}
    response = httpx.post(f"{token_app.url}{WEBHOOK}", content=body(env), headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "missing or wrong bearer token"
    assert response.headers["www-authenticate"] == "Bearer"


def test_right_token_is_accepted_and_limit_is_configurable(token_app: AppProcess) -> None:
    w, p = new_id(), new_id()
    env = envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=4)
    ok = httpx.post(
        f"{token_app.url}{WEBHOOK}", content=body(env), headers={"authorization": "Bearer s3cret-token"}
    )
    assert ok.status_code == 200
    assert ok.json()["stock"] == 4
    big = httpx.post(
        f"{token_app.url}{WEBHOOK}",
        content=body({**env, "padding": "x" * 2048}),
        headers={"authorization": "bearer s3cret-token"},
    )
    assert big.status_code == 413
