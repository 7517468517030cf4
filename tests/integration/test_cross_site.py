"""State-changing routes against a page on another site: an open local app is reachable by any page
the developer's browser shows, with "simple" requests that need no preflight.

The webhook reads only `application/json` (415 for text/plain, forms); every state-changing route
refuses a browser's cross-site request (`Origin`, `Sec-Fetch-Site`) with 403 unless TRUSTED_ORIGINS
allows that origin. Clients that are not browsers send neither header and are not affected.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from common.adapters import cache, db
from common.adapters.config import get_settings
from functions.http.app import make_app
from functions.replay.routes import router as replay_router
from functions.webhook.routes import router as webhook_router
from tests.e2e.support import WEBHOOK, body, envelope, new_id
from tools.corpus import CROSS_SITE_HEADERS, WEBHOOK_CONTENT_TYPES

pytestmark = pytest.mark.integration

REPLAY = "/api/v1/rejected-events/9223372036854775807/replay"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[TestClient]:
    """The webhook and the replay, open (no tokens), as `make run` serves them by default."""
    for name in ("WEBHOOK_TOKEN", "OPERATOR_TOKEN", "OPERATOR_TOKEN_SECRET_ARN", "TRUSTED_ORIGINS"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CACHE_ENABLED", "false")
    get_settings.cache_clear()
    db.close_pool()
    cache.reset()
    app = make_app([webhook_router, replay_router], lambda_mode=False)
    yield TestClient(app, raise_server_exceptions=False)
    db.close_pool()
    get_settings.cache_clear()


def arrival() -> bytes:
    ids = {"movement_id": new_id(), "warehouse_id": new_id(), "product_id": new_id()}
    return body(envelope("arrival", quantity=1, **ids))


def test_a_page_on_another_site_cannot_change_stock_or_replay(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The review's request: text/plain (no preflight) from a foreign Origin.
    simple = {"content-type": "text/plain", "origin": "https://evil.example"}
    answer = client.post(WEBHOOK, content=arrival(), headers=simple)
    assert answer.status_code == 403 and "cross-site" in answer.json()["detail"]
    for headers in CROSS_SITE_HEADERS:
        sent = {"content-type": "application/json", **headers}
        assert client.post(WEBHOOK, content=arrival(), headers=sent).status_code == 403, headers
        assert client.post(REPLAY, headers=headers).status_code == 403, headers
    # A body a form or text/plain can carry is not read as JSON, whatever its origin.
    for content_type, status in WEBHOOK_CONTENT_TYPES.items():
        answer = client.post(WEBHOOK, content=arrival(), headers={"content-type": content_type})
        assert answer.status_code == status, (content_type, answer.text)
        if status == 415:
            assert answer.json()["detail"] == "Content-Type must be application/json"

    # Not refused: clients that are not browsers, the app's own pages, the user's own navigation.
    assert client.post(WEBHOOK, content=arrival()).status_code == 200
    own = {"content-type": "application/json", "origin": "http://testserver", "sec-fetch-site": "same-origin"}
    assert client.post(WEBHOOK, content=arrival(), headers=own).status_code == 200
    assert client.post(REPLAY, headers={"sec-fetch-site": "none"}).status_code == 404

    # TRUSTED_ORIGINS lets a named origin in, and only that one.
    monkeypatch.setenv("TRUSTED_ORIGINS", "https://ops.example.com, https://admin.example.com/")
    get_settings.cache_clear()
    trusted = {"content-type": "application/json", "origin": "https://admin.example.com",
               "sec-fetch-site": "cross-site"}  # fmt: skip
    assert client.post(WEBHOOK, content=arrival(), headers=trusted).status_code == 200
    other = {**trusted, "origin": "https://evil.example"}
    assert client.post(WEBHOOK, content=arrival(), headers=other).status_code == 403


def test_every_state_changing_route_has_the_cross_site_guard() -> None:
    """The local app serves every function's routes: each one that is not a read carries the guard."""
    from functions.http.guards import cross_site_refused, require_same_site
    from functions.local_app.main import app

    writes = [c for c in iter_route_contexts(app.routes) if c.methods and c.methods - {"GET", "HEAD"}]
    assert {c.path for c in writes} >= {WEBHOOK, "/api/v1/rejected-events/{rejected_event_id}/replay"}
    for context in writes:
        route = context.original_route
        assert isinstance(route, APIRoute), context.path
        assert require_same_site in [d.call for d in route.dependant.dependencies], context.path
    # The plain function any other entry point (an ASGI fast path) calls.
    assert cross_site_refused("https://evil.example", None, "127.0.0.1:8000")
    assert not cross_site_refused(None, None, "127.0.0.1:8000")
    assert not cross_site_refused("http://127.0.0.1:8000", "same-origin", "127.0.0.1:8000")
