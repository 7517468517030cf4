"""The webhook's lean POST path: taken only where FastAPI would run nothing but the endpoint, and
answering exactly as FastAPI's route does (the same function, the same guards)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from starlette.types import Receive, Scope, Send

from functions.http.app import App, make_app
from functions.http.hot_paths import LeanPath, lean_post
from functions.webhook.routes import WEBHOOK_PATH
from functions.webhook.routes import router as webhook_router
from tools.corpus import Case, rejected_cases


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": headers or []}


def test_the_webhook_post_is_claimed_and_nothing_else() -> None:
    lean = LeanPath(make_app([webhook_router], lambda_mode=True).routes)
    assert lean.claim(_scope("POST", WEBHOOK_PATH))
    assert not lean.claim(_scope("POST", WEBHOOK_PATH + "/"))
    assert not lean.claim(_scope("GET", WEBHOOK_PATH))
    assert not lean.claim(_scope("PUT", WEBHOOK_PATH))
    assert not lean.claim(_scope("POST", "/api/v1/kafka"))


def _refuse_xml(request: Request) -> None:
    if request.headers.get("content-type") == "application/xml":
        raise HTTPException(415, "not JSON")


def _app(*, named: bool) -> FastAPI:
    router = APIRouter()

    @router.post("/guarded", dependencies=[Depends(_refuse_xml)])
    @lean_post(guards=(_refuse_xml,) if named else ())
    async def guarded(request: Request) -> Response:
        return Response(b'{"ok": true}', 200, media_type="application/json")

    return make_app([router], lambda_mode=True)


def test_a_route_with_a_guard_the_lean_path_does_not_call_is_left_to_fastapi() -> None:
    lean = LeanPath(_app(named=False).routes)
    assert not lean.claim(_scope("POST", "/guarded"))


def test_a_request_a_guard_refuses_is_left_to_fastapi_which_refuses_it() -> None:
    app = _app(named=True)
    lean = LeanPath(app.routes)
    assert lean.claim(_scope("POST", "/guarded", [(b"content-type", b"application/json")]))
    assert not lean.claim(_scope("POST", "/guarded", [(b"content-type", b"application/xml")]))

    async def both() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            ok = await client.post("/guarded", content=b"{}", headers={"content-type": "application/json"})
            xml = {"content-type": "application/xml"}
            refused = await client.post("/guarded", content=b"<a/>", headers=xml)
            return ok, refused

    ok, refused = asyncio.run(both())
    assert ok.status_code == 200 and ok.json() == {"ok": True}
    assert refused.status_code == 415


class _FastAPIOnly:
    """The same app with the lean path skipped: FastAPI's own routing answers every request."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(self.app, scope, receive, send)


@pytest.mark.parametrize("case", [c for c in rejected_cases() if not c.too_large][:40], ids=lambda c: c.name)
def test_lean_and_fastapi_answer_an_invalid_event_alike(case: Case) -> None:
    app = make_app([webhook_router], lambda_mode=True)
    assert isinstance(app, App)

    async def post(asgi: object) -> httpx.Response:
        transport = httpx.ASGITransport(app=asgi)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            json_body = {"content-type": "application/json"}
            return await client.post(WEBHOOK_PATH, content=case.body, headers=json_body)

    lean, routed = asyncio.run(post(app)), asyncio.run(post(_FastAPIOnly(app)))
    assert lean.status_code == routed.status_code == 422
    strip = lambda body: {k: v for k, v in body.items() if k != "request_id"}  # noqa: E731
    assert strip(lean.json()) == strip(routed.json())
