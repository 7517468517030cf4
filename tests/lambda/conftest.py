"""Lambda handler fixtures: the handlers and the local app in this process, on the test database.

Both read the process-wide settings, pool and Redis client, so the session first points those at
the test database and the suite's Redis (another suite's conftest may have repointed them).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.e2e.support import PROJECT_ROOT, REDIS_URL

os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "WarehouseTest")

EVENTS_DIR = PROJECT_ROOT / "infra" / "events"


@dataclass
class FakeLambdaContext:
    """The attributes Powertools and Mangum read from the real LambdaContext."""

    function_name: str = "warehouse-http"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/warehouse-http"
    log_stream_name: str = "2025/02/18/[$LATEST]0123456789abcdef0123456789abcdef"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:eu-central-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@pytest.fixture(scope="session", autouse=True)
def process_settings(database_url: str) -> Iterator[None]:
    """Point settings, pool and cache of this process at the test database and the suite's Redis."""
    from common.adapters import cache, db
    from common.adapters.config import get_settings

    saved = {name: os.environ.get(name) for name in ("DATABASE_URL", "REDIS_URL", "WEBHOOK_TOKEN")}
    os.environ.update(DATABASE_URL=database_url, REDIS_URL=REDIS_URL)
    os.environ.pop("WEBHOOK_TOKEN", None)
    get_settings.cache_clear()
    db.close_pool()
    cache.reset()
    yield
    db.close_pool()
    cache.reset()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()


@dataclass
class Answer:
    """Status, headers (lower-case names) and body of one response, from either side."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text())


@pytest.fixture
def load_event() -> Any:
    """A sample event from infra/events/ by file name (a fresh copy each call)."""
    return _load_event


def _make_event(template: str, method: str, path: str, *, query: str = "", body: bytes | None = None,
               headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Another request in the shape of a sample event (new request id, path, query, body)."""
    event = copy.deepcopy(_load_event(template))
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["requestId"] = uuid.uuid4().hex[:16] + "="
    event["rawQueryString"] = query
    event.pop("queryStringParameters", None)
    event.pop("pathParameters", None)
    event["headers"].update(headers or {})
    if body is None:
        event.pop("body", None)
        event["headers"].pop("content-length", None)
    else:
        event["body"] = body.decode()
        event["headers"]["content-length"] = str(len(body))
    return event


@pytest.fixture
def make_event() -> Any:
    return _make_event


@pytest.fixture
def call_lambda() -> Any:
    """Invoke a handler with an event as Lambda would; the result as an Answer."""

    def call(handler: Any, event: dict[str, Any]) -> Answer:
        result = handler(event, FakeLambdaContext())
        assert set(result) <= {"statusCode", "headers", "body", "isBase64Encoded", "cookies"}
        raw = result.get("body", "")
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        headers = {k.lower(): v for k, v in result.get("headers", {}).items()}
        return Answer(result["statusCode"], headers, body)

    return call


@pytest.fixture(scope="session")
def local_client() -> Iterator[Any]:
    """The local app in this process (no lifespan: no poller; the pool opens on first use)."""
    from starlette.testclient import TestClient

    from functions.local_app.main import app

    yield TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def call_local(local_client: Any) -> Any:
    """Send the request an API Gateway event describes to the local app."""

    def call(event: dict[str, Any]) -> Answer:
        url = event["rawPath"] + (f"?{event['rawQueryString']}" if event.get("rawQueryString") else "")
        body = event.get("body")
        content: bytes | None
        if body is not None and event.get("isBase64Encoded"):
            content = base64.b64decode(body)
        else:
            content = body.encode() if body is not None else None
        headers = {k: v for k, v in event["headers"].items() if k not in ("host", "content-length")}
        response = local_client.request(event["requestContext"]["http"]["method"], url, content=content,
                                        headers=headers)  # fmt: skip
        return Answer(response.status_code, dict(response.headers), response.content)

    return call
