"""The Lambda handlers, invoked in-process with API Gateway HTTP API (payload 2.0) events.

Each answers exactly as the local app does for the same request (status and JSON body), which is
what lets the local app stand in for the deployment. The sample events in infra/events/ (the ones
`sam local invoke` uses) are each played against their own handler.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from common.adapters.config import get_settings
from functions.get_movement.handler import handler as get_movement_handler
from functions.get_stock.handler import handler as get_stock_handler
from functions.list_resources.handler import handler as list_handler
from functions.webhook.handler import handler as webhook_handler
from tests.e2e.support import PROJECT_ROOT, body, envelope, free_port

SAMPLE_BODY = json.loads(json.loads((PROJECT_ROOT / "infra/events/apigw_webhook.json").read_text())["body"])
W, P, M = (SAMPLE_BODY["data"][k] for k in ("warehouse_id", "product_id", "movement_id"))
WEBHOOK = "/api/v1/kafka/webhook"


def same_answer(lam: Any, loc: Any, *, ignore: tuple[str, ...] = ()) -> None:
    """Same status, JSON content type and body; `ignore`d keys need only have the same type."""
    assert lam.status == loc.status, (lam.body, loc.body)
    assert lam.headers["content-type"] == loc.headers["content-type"] == "application/json"
    lam_body, loc_body = lam.json(), loc.json()
    for key in ignore:
        assert type(lam_body.pop(key)) is type(loc_body.pop(key))
    assert lam_body == loc_body


@pytest.fixture
def sample_applied(call_lambda: Any, load_event: Any) -> None:
    """The sample arrival is in the ledger (applied now, or by an earlier run)."""
    answer = call_lambda(webhook_handler, load_event("apigw_webhook.json"))
    assert answer.status == 200, answer.body
    assert answer.json()["status"] in {"applied", "duplicate"}


# --- the sample events, each against its handler ------------------------------------------------


def test_sample_webhook_event(
    call_lambda: Any, call_local: Any, load_event: Any, sample_applied: None
) -> None:
    event = load_event("apigw_webhook.json")
    lam = call_lambda(webhook_handler, event)
    assert lam.status == 200
    assert lam.json()["status"] == "duplicate"
    assert lam.json()["quantity"] == 98
    assert lam.headers["x-request-id"] == event["requestContext"]["requestId"]
    same_answer(lam, call_local(event))


def test_sample_get_stock_event(
    call_lambda: Any, call_local: Any, load_event: Any, sample_applied: None
) -> None:
    event = load_event("apigw_get_stock.json")
    lam = call_lambda(get_stock_handler, event)
    assert lam.status == 200
    assert (lam.json()["warehouse_id"], lam.json()["product_id"]) == (W, P)
    assert lam.json()["quantity"] >= 98 and lam.json()["updated_at"]
    same_answer(lam, call_local(event))


def test_sample_get_movement_event(
    call_lambda: Any, call_local: Any, load_event: Any, sample_applied: None
) -> None:
    event = load_event("apigw_get_movement.json")
    lam = call_lambda(get_movement_handler, event)
    assert lam.status == 200
    answer = lam.json()
    assert (answer["movement_id"], answer["status"], answer["arrived_quantity"]) == (M, "arrival_only", 98)
    same_answer(lam, call_local(event))


def test_sample_list_stock_event(
    call_lambda: Any, call_local: Any, load_event: Any, make_event: Any, sample_applied: None
) -> None:
    for _ in range(2):  # at least three products in the warehouse: the page of 2 has a successor
        arrival = envelope("arrival", movement_id=str(uuid.uuid4()), warehouse_id=W,
                           product_id=str(uuid.uuid4()), quantity=1)  # fmt: skip
        made = call_lambda(
            webhook_handler, make_event("apigw_webhook.json", "POST", WEBHOOK, body=body(arrival))
        )
        assert made.status == 200
    event = load_event("apigw_list_stock.json")
    lam = call_lambda(list_handler, event)
    assert lam.status == 200
    page = lam.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    same_answer(lam, call_local(event))

    following = make_event("apigw_list_stock.json", "GET", event["rawPath"],
                           query=f"limit=2&cursor={page['next_cursor']}")  # fmt: skip
    lam_next = call_lambda(list_handler, following)
    assert lam_next.status == 200
    assert not {i["product_id"] for i in lam_next.json()["items"]} & {i["product_id"] for i in page["items"]}
    same_answer(lam_next, call_local(following))


# --- other requests: Lambda and local app agree ---------------------------------------------------


@pytest.mark.parametrize(
    ("handler", "template", "method", "path", "query", "status"),
    [
        (
            get_movement_handler,
            "apigw_get_movement.json",
            "GET",
            f"/api/v1/movements/{uuid.uuid4()}",
            "",
            404,
        ),
        (get_movement_handler, "apigw_get_movement.json", "GET", "/api/v1/movements/not-a-uuid", "", 422),
        (
            get_stock_handler,
            "apigw_get_stock.json",
            "GET",
            f"/api/v1/warehouse/{uuid.uuid4()}/products/x",
            "",
            422,
        ),
        (
            get_stock_handler,
            "apigw_get_stock.json",
            "GET",
            f"/api/v1/warehouse/{uuid.uuid4()}/products/{uuid.uuid4()}",
            "",
            200,
        ),
        (list_handler, "apigw_list_stock.json", "GET", "/api/v1/movements", f"warehouse_id={W}&limit=5", 200),
        (list_handler, "apigw_list_stock.json", "GET", "/api/v1/movements", "cursor=bm9wZQ", 422),
        (list_handler, "apigw_list_stock.json", "GET", "/api/v1/movements", "limit=501", 422),
        (
            list_handler,
            "apigw_list_stock.json",
            "GET",
            "/api/v1/rejected-events",
            "reason=conflict&limit=3",
            200,
        ),
        (list_handler, "apigw_list_stock.json", "GET", "/api/v1/rejected-events", "reason=lost", 422),
    ],  # fmt: skip
    ids=[
        "movement-404",
        "movement-bad-uuid",
        "stock-bad-uuid",
        "stock-never-seen",
        "movements-by-warehouse",
        "movements-bad-cursor",
        "movements-limit-too-big",
        "rejected-by-reason",
        "rejected-bad-reason",
    ],  # fmt: skip
)
def test_reads_answer_like_the_local_app(
    call_lambda: Any, call_local: Any, make_event: Any, handler: Any, template: str, method: str,
    path: str, query: str, status: int, sample_applied: None,
) -> None:  # fmt: skip
    event = make_event(template, method, path, query=query)
    lam = call_lambda(handler, event)
    assert lam.status == status, lam.body
    same_answer(lam, call_local(event))


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"{not json", 422),
        (b"", 422),
        (body(envelope("arrival", movement_id=M, warehouse_id=W, product_id=P, quantity=0)), 422),
        (body(envelope("arrival", movement_id=M, warehouse_id=W, product_id=P, quantity=97)), 409),
        (
            body(
                envelope(
                    "departure",
                    movement_id=str(uuid.uuid4()),
                    warehouse_id=str(uuid.uuid4()),
                    product_id=P,
                    quantity=1,
                )
            ),
            409,
        ),  # fmt: skip
        (b" " * (1024 * 1024 + 1), 413),
    ],
    ids=["bad-json", "empty", "quantity-zero", "conflict", "insufficient-stock", "too-large"],
)
def test_webhook_refusals_answer_like_the_local_app(
    call_lambda: Any, call_local: Any, make_event: Any, payload: bytes, status: int, sample_applied: None
) -> None:
    event = make_event("apigw_webhook.json", "POST", WEBHOOK, body=payload)
    lam = call_lambda(webhook_handler, event)
    assert lam.status == status, lam.body
    # Each refusal parks its own dead letter, so the ids differ; everything else is the same.
    same_answer(lam, call_local(event), ignore=("rejected_event_id",) if status == 409 else ())


def test_webhook_token_is_enforced_alike(
    call_lambda: Any, call_local: Any, make_event: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_TOKEN", "lambda-s3cret")
    get_settings.cache_clear()
    try:
        raw = body(
            envelope("arrival", movement_id=str(uuid.uuid4()), warehouse_id=W, product_id=P, quantity=1)
        )
        refused = make_event("apigw_webhook.json", "POST", WEBHOOK, body=raw,
                             headers={"authorization": "Bearer wrong"})  # fmt: skip
        lam = call_lambda(webhook_handler, refused)
        assert lam.status == 401
        same_answer(lam, call_local(refused))
        allowed = make_event("apigw_webhook.json", "POST", WEBHOOK, body=raw,
                             headers={"authorization": "Bearer lambda-s3cret"})  # fmt: skip
        assert call_lambda(webhook_handler, allowed).json()["status"] == "applied"
        assert call_local(allowed).json()["status"] == "duplicate"
    finally:
        monkeypatch.delenv("WEBHOOK_TOKEN")
        get_settings.cache_clear()


def test_a_function_serves_only_its_own_routes(call_lambda: Any, make_event: Any) -> None:
    event = make_event("apigw_get_stock.json", "GET", f"/api/v1/movements/{M}")
    answer = call_lambda(get_stock_handler, event)
    assert answer.status == 404
    assert answer.json() == {"detail": "Not Found"}
    docs = call_lambda(get_stock_handler, make_event("apigw_get_stock.json", "GET", "/openapi.json"))
    assert docs.status == 404, "no API document or docs pages behind API Gateway"


def test_metrics_are_flushed_as_emf_each_invocation(
    call_lambda: Any, load_event: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    capsys.readouterr()
    assert call_lambda(webhook_handler, load_event("apigw_webhook.json")).status == 200
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    events = [
        blob
        for blob in blobs
        for d in blob["_aws"]["CloudWatchMetrics"]
        if "warehouse_events_total" in {m["Name"] for m in d["Metrics"]}
    ]
    # The Prometheus name, with the Prometheus labels as dimensions, in the service's namespace.
    assert len(events) == 1, blobs
    [event] = events
    assert event["origin"] == "webhook" and event["outcome"] in ("applied", "duplicate")
    assert event["warehouse_events_total"] in (1.0, [1.0])
    assert event["_aws"]["CloudWatchMetrics"][0]["Namespace"] == os.environ["POWERTOOLS_METRICS_NAMESPACE"]
    # A read adds no metric of its own: the flush must not raise SchemaValidationError.
    assert call_lambda(get_stock_handler, load_event("apigw_get_stock.json")).status == 200


def test_importing_a_handler_does_no_io() -> None:
    """Any socket connect during import fails the import: pool and Redis open on first use."""
    script = """
import socket
def refuse(*args, **kwargs):
    raise AssertionError(f"network I/O at import: {args}")
socket.socket.connect = refuse
socket.create_connection = refuse
import functions.webhook.handler, functions.get_movement.handler
import functions.get_stock.handler, functions.list_resources.handler
from common.adapters import cache, db
assert db._pool is None and cache._writer is None and not cache._readers
print("no-io")
"""
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": "postgresql://nobody:x@192.0.2.1:5432/none",
        "REDIS_URL": "redis://192.0.2.1:6379/0",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no-io" in result.stdout


def test_in_lambda_an_outage_is_503_logged_as_json_with_the_correlation_id() -> None:
    """A fresh 'container' (subprocess) with AWS_LAMBDA_FUNCTION_NAME set and PostgreSQL unreachable."""
    code = """
import json
import os
from functions.get_stock.handler import handler

class Context:
    function_name = "warehouse-get-stock"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    aws_request_id = "c0ffee00-0000-4000-8000-000000000001"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:warehouse-get-stock"
    def get_remaining_time_in_millis(self):
        return 29000

event = json.load(open("infra/events/apigw_get_stock.json"))
result = handler(event, Context())
print("RESULT " + json.dumps(result))
"""
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_FUNCTION_NAME": "warehouse-get-stock",
        "DATABASE_URL": f"postgresql://warehouse:warehouse@127.0.0.1:{free_port()}/nowhere",
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True,
                            text=True, timeout=90, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    (answer,) = [json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")]
    assert answer["statusCode"] == 503
    assert answer["headers"]["retry-after"]
    assert json.loads(answer["body"])["request_id"] == "Xk3qFj0FFiAEJXg="
    logs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    outage = [entry for entry in logs if "database unavailable" in entry.get("message", "")]
    assert outage, out[-3000:]
    assert outage[0]["correlation_id"] == "Xk3qFj0FFiAEJXg="
    assert outage[0]["service"] == "get_stock"
    assert "Traceback" not in out
