"""The ConsoleFunction handler, invoked in-process with API Gateway HTTP API (payload 2.0) events:
the pages, their static files, the docs and the whole API's schema, as served in AWS."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from functions.console.handler import handler as console_handler
from functions.console.routes import lambda_routers

TEMPLATE = "apigw_get_stock.json"


def get(call_lambda: Any, make_event: Any, path: str, query: str = "", **headers: str) -> Any:
    """GET `path` from the console handler; uncompressed unless `accept-encoding` says otherwise."""
    headers = {"accept-encoding": "identity", **headers}
    return call_lambda(console_handler, make_event(TEMPLATE, "GET", path, query=query, headers=headers))


def test_overview_in_lambda_points_at_cloudwatch_for_the_lag(
    call_lambda: Any, make_event: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "warehouse-console")
    answer = get(call_lambda, make_event, "/ui/")
    assert answer.status == 200, answer.body[:500]
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    text = answer.body.decode()
    assert "OffsetLag" in text and "CloudWatch" in text
    assert "Served by the ConsoleFunction Lambda" in text
    summary = get(call_lambda, make_event, "/api/v1/stats/summary").json()
    assert "OffsetLag" in summary["poller_lag"]["note"]


def test_openapi_is_the_whole_apis(call_lambda: Any, make_event: Any, call_local: Any) -> None:
    """The console's /openapi.json documents every route of every function (not the local-only
    /health, /ready, /metrics and the local pollers' operator route), the same operations as the
    local app's schema."""
    event = make_event(TEMPLATE, "GET", "/openapi.json")
    lam = call_lambda(console_handler, event).json()
    local = call_local(event).json()
    local_only = {"/health", "/ready", "/metrics", "/api/v1/pollers/partitions/{topic}/{partition}/{action}"}
    assert set(lam["paths"]) == set(local["paths"]) - local_only
    assert {"/api/v1/kafka/webhook", "/api/v1/stats/summary", "/api/v1/reports/routes",
            "/api/v1/rejected-events/{rejected_event_id}/replay"} <= set(lam["paths"])  # fmt: skip
    for path in lam["paths"]:
        assert lam["paths"][path] == local["paths"][path], path
    assert "Envelope" in lam["components"]["schemas"]


def test_docs_and_their_assets_are_served(call_lambda: Any, make_event: Any) -> None:
    for path, marker in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        answer = get(call_lambda, make_event, path)
        assert answer.status == 200 and marker in answer.body.decode(), path
    css = get(call_lambda, make_event, "/static/vendor/swagger-ui-dist@5.35.0/swagger-ui.css")
    assert css.status == 200 and b".swagger-ui" in css.body
    png = get(call_lambda, make_event, "/static/vendor/swagger-ui-dist@5.35.0/favicon-32x32.png")
    assert png.status == 200 and png.body.startswith(b"\x89PNG")
    js = "/static/vendor/redoc@2.5.4/redoc.standalone.js"
    zipped = get(call_lambda, make_event, js, **{"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped.body) == get(call_lambda, make_event, js).body
    assert get(call_lambda, make_event, "/static/nothing.css").status == 404


def test_a_bad_parameter_answers_as_in_the_local_app(
    call_lambda: Any, make_event: Any, call_local: Any
) -> None:
    event = make_event(TEMPLATE, "GET", "/api/v1/reports/routes", query="from=soon")
    lam, loc = call_lambda(console_handler, event), call_local(event)
    assert lam.status == loc.status == 422
    assert lam.json() == loc.json()
    page = get(call_lambda, make_event, "/ui/movements", query="older_than=soon")
    assert page.status == 422 and b"<strong>older_than</strong>" in page.body


def test_the_console_function_serves_no_other_functions_routes() -> None:
    paths = {getattr(route, "path", "") for router in lambda_routers() for route in router.routes}
    assert not [p for p in paths if p.startswith("/api/") and "report" not in p and "stats" not in p]
