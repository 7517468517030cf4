"""The two cached GET endpoints over real HTTP: answers, freshness after writes, Redis outages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.e2e.support import (
    REDIS_URL,
    WEBHOOK,
    AppProcess,
    RedisProcess,
    body,
    envelope,
    new_id,
    start_app,
    start_redis,
)


def post(client: httpx.Client, env: dict[str, Any]) -> httpx.Response:
    return client.post(WEBHOOK, content=body(env))


def stock_of(client: httpx.Client, w: str, p: str) -> int:
    response = client.get(f"/api/v1/warehouse/{w}/products/{p}")
    assert response.status_code == 200, response.text
    return int(response.json()["quantity"])


def cached_keys(url: str, pattern: str) -> list[bytes]:
    return list(redis.Redis.from_url(url).scan_iter(match=pattern))


def test_never_seen_pair_reads_as_zero(api: httpx.Client) -> None:
    w, p = new_id(), new_id()
    response = api.get(f"/api/v1/warehouse/{w}/products/{p}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"warehouse_id": w, "product_id": p, "quantity": 0, "updated_at": None}


def test_pair_refused_before_any_write_still_reads_as_never_seen(api: httpx.Client) -> None:
    """A refused departure leaves a lock placeholder row behind; it must not show as touched."""
    w, p = new_id(), new_id()
    assert (
        post(
            api, envelope("departure", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=1)
        ).status_code
        == 409
    )
    assert api.get(f"/api/v1/warehouse/{w}/products/{p}").json()["updated_at"] is None


def test_unknown_movement_is_404_json(api: httpx.Client) -> None:
    m = new_id()
    response = api.get(f"/api/v1/movements/{m}")
    assert response.status_code == 404
    assert response.json()["detail"] == f"movement {m} not found"
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/movements/not-a-uuid", "movement_id"),
        ("/api/v1/movements/12345", "movement_id"),
        (f"/api/v1/warehouse/WH-1/products/{new_id()}", "warehouse_id"),
        (f"/api/v1/warehouse/{new_id()}/products/xyz", "product_id"),
        ("/api/v1/warehouse/nope/products", "warehouse_id"),
    ],
)
def test_malformed_uuid_paths_are_422_naming_the_field(api: httpx.Client, path: str, field: str) -> None:
    response = api.get(path)
    assert response.status_code == 422
    answer = response.json()
    assert answer["reason"] == "invalid"
    assert [e["field"] for e in answer["errors"]] == [field]
    assert "UUID" in answer["errors"][0]["message"]


def test_unknown_route_is_json_404(api: httpx.Client) -> None:
    response = api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_read_after_write_is_fresh_with_the_cache_on(api: httpx.Client) -> None:
    w, p = new_id(), new_id()
    expected = 0
    for round_ in range(40):
        assert stock_of(api, w, p) == expected  # warms (or hits) the cache
        assert stock_of(api, w, p) == expected
        quantity = round_ % 3 + 1
        response = post(
            api, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=quantity)
        )
        assert response.status_code == 200
        expected += quantity
        assert stock_of(api, w, p) == expected, f"stale read in round {round_}"
    # The reads really went through Redis: the entries are there.
    assert cached_keys(REDIS_URL, f"val:stock:{w}:{p}*")


def test_movement_read_after_each_half_is_fresh(api: httpx.Client) -> None:
    for _ in range(10):
        a, b, p, m = new_id(), new_id(), new_id(), new_id()
        assert (
            post(
                api, envelope("arrival", movement_id=new_id(), warehouse_id=a, product_id=p, quantity=9)
            ).status_code
            == 200
        )
        assert (
            post(
                api, envelope("departure", movement_id=m, warehouse_id=a, product_id=p, quantity=9)
            ).status_code
            == 200
        )
        assert api.get(f"/api/v1/movements/{m}").json()["status"] == "in_transit"
        assert api.get(f"/api/v1/movements/{m}").json()["status"] == "in_transit"
        assert post(api, envelope("arrival", movement_id=m, warehouse_id=b, product_id=p, quantity=9,
                                  timestamp="2025-02-18T13:12:56Z")).status_code == 200  # fmt: skip
        view = api.get(f"/api/v1/movements/{m}").json()
        assert (view["status"], view["transit_seconds"]) == ("delivered", 3600)
    assert cached_keys(REDIS_URL, f"val:movement:{m}*")


@pytest.fixture
def private_redis() -> Iterator[RedisProcess]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def app_on_private_redis(
    app_env: dict[str, str], private_redis: RedisProcess, tmp_path: Path
) -> Iterator[AppProcess]:
    process = start_app({**app_env, "REDIS_URL": private_redis.url}, tmp_path / "uvicorn.log")
    yield process
    process.stop()


def test_reads_and_writes_survive_redis_stopping(
    app_on_private_redis: AppProcess, private_redis: RedisProcess
) -> None:
    w, p, m = new_id(), new_id(), new_id()
    with httpx.Client(base_url=app_on_private_redis.url, timeout=30) as client:
        assert (
            post(
                client, envelope("arrival", movement_id=m, warehouse_id=w, product_id=p, quantity=10)
            ).status_code
            == 200
        )
        assert stock_of(client, w, p) == 10
        assert client.get(f"/api/v1/movements/{m}").status_code == 200
        assert cached_keys(private_redis.url, f"val:stock:{w}:{p}*"), "the cache was not in use"

        private_redis.stop()

        for i in range(1, 6):
            started = time.monotonic()
            assert stock_of(client, w, p) == 10 + 5 * (i - 1)
            assert client.get(f"/api/v1/movements/{m}").json()["arrived_quantity"] == 10
            write = post(
                client, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=5)
            )
            assert write.status_code == 200
            assert stock_of(client, w, p) == 10 + 5 * i
            assert time.monotonic() - started < 2.0, "a Redis outage must not stall requests"
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["redis"] == "unavailable"
