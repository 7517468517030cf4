"""Operations endpoints, the API document, and behaviour while PostgreSQL is unreachable."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.support import WEBHOOK, AppProcess, body, envelope, free_port, new_id, start_app


def metric_value(text: str, name: str, labels: dict[str, str]) -> float:
    """The value of one sample of the Prometheus text, 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        if found == labels:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_health(api: httpx.Client) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_postgres_answers(api: httpx.Client) -> None:
    response = api.get("/ready")
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "ok" and answer["postgres"] == "ok"
    assert answer["redis"] == "ok"
    assert answer["kafka"] in {"reachable", "unreachable"}  # reported, never fatal


def test_metrics_count_outcomes_and_time_routes(api: httpx.Client) -> None:
    before = api.get("/metrics").text
    labels = {"origin": "webhook", "outcome": "applied", "reason": ""}
    invalid = {"origin": "webhook", "outcome": "rejected", "reason": "invalid"}
    w, p = new_id(), new_id()
    assert api.post(WEBHOOK, content=body(envelope("arrival", movement_id=new_id(), warehouse_id=w,
                                                   product_id=p, quantity=1))).status_code == 200  # fmt: skip
    assert api.post(WEBHOOK, content=b"{}").status_code == 422
    assert api.get(f"/api/v1/warehouse/{w}/products/{p}").status_code == 200

    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        metric_value(text, "warehouse_events_total", labels)
        == metric_value(before, "warehouse_events_total", labels) + 1
    )
    assert (
        metric_value(text, "warehouse_events_total", invalid)
        == metric_value(before, "warehouse_events_total", invalid) + 1
    )
    route = {
        "method": "GET",
        "route": "/api/v1/warehouse/{warehouse_id}/products/{product_id}",
        "status": "200",
    }
    assert metric_value(text, "http_request_duration_seconds_count", route) >= 1
    assert "# TYPE http_request_duration_seconds histogram" in text
    assert "# TYPE warehouse_poller_lag gauge" in text


def test_docs_pages_are_served(api: httpx.Client) -> None:
    assert "swagger" in api.get("/docs").text.lower()
    assert "redoc" in api.get("/redoc").text.lower()


def test_openapi_documents_every_body_with_an_example(api: httpx.Client) -> None:
    spec = api.get("/openapi.json").json()
    post = spec["paths"][WEBHOOK]["post"]
    request = post["requestBody"]["content"]["application/json"]
    assert request["schema"] == {"$ref": "#/components/schemas/Envelope"}
    assert "Envelope" in spec["components"]["schemas"] and "MovementData" in spec["components"]["schemas"]
    assert request["examples"]["departure"]["value"]["data"]["quantity"] == 100
    assert set(post["responses"]) >= {"200", "401", "409", "413", "422", "500", "503"}
    schemas = spec["components"]["schemas"]

    def has_example(media: dict[str, Any]) -> bool:
        if "example" in media or "examples" in media:
            return True
        ref = media.get("schema", {}).get("$ref", "")
        return bool(ref) and "examples" in schemas[ref.rsplit("/", 1)[1]]

    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                for media_type, media in response.get("content", {}).items():
                    assert has_example(media), f"{method.upper()} {path} {status} {media_type} has no example"
            assert "HTTPValidationError" not in str(operation), f"{path} documents FastAPI's 422, not ours"


@pytest.fixture(scope="module")
def app_without_postgres(
    app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppProcess]:
    """An app whose DATABASE_URL points at a port nothing listens on."""
    dead = f"postgresql://warehouse:warehouse@127.0.0.1:{free_port()}/nowhere"
    log = Path(tmp_path_factory.mktemp("no-postgres")) / "uvicorn.log"
    process = start_app({**app_env, "DATABASE_URL": dead}, log)
    yield process
    process.stop()


def test_postgres_unreachable_is_503_with_retry_after(app_without_postgres: AppProcess) -> None:
    w, p, m = new_id(), new_id(), new_id()
    requests = [
        ("POST", WEBHOOK, body(envelope("arrival", movement_id=m, warehouse_id=w, product_id=p, quantity=1))),
        ("GET", f"/api/v1/warehouse/{w}/products/{p}", None),
        ("GET", f"/api/v1/movements/{m}", None),
        ("GET", "/api/v1/movements", None),
        ("GET", "/api/v1/rejected-events", None),
    ]
    with httpx.Client(base_url=app_without_postgres.url, timeout=60) as client, ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda r: client.request(r[0], r[1], content=r[2]), requests))
        ready = client.get("/ready")
        invalid = client.post(WEBHOOK, content=b"{}")
    for (method, path, _), response in zip(requests, responses, strict=True):
        assert response.status_code == 503, f"{method} {path}: {response.status_code} {response.text}"
        assert int(response.headers["retry-after"]) > 0
        answer = response.json()
        assert answer["detail"] == "database unavailable, retry later"
        assert answer["request_id"] == response.headers["x-request-id"]
    assert ready.status_code == 503
    assert ready.headers["retry-after"]
    assert ready.json()["status"] == "unavailable" and ready.json()["postgres"] == "unavailable"
    assert invalid.status_code == 422, "validation does not need the database"
    assert "Traceback" not in app_without_postgres.log()
