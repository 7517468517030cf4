"""The app factory and the middleware every HTTP entry point shares.

One FastAPI app is built per deployment unit from the route groups it serves: a Lambda function
gets only its own router, the local app gets all of them. The hot GETs it mounts are answered on
the lean path (`functions.http.hot_paths`) in front of FastAPI's routing, in Lambda too.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

import psycopg
from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.adapters import observability, tracing
from functions.http.docs import COMMON_RESPONSES, add_schemas, add_security_schemes
from functions.http.errors import on_database_unavailable, on_validation_error
from functions.http.guards import OPERATOR_ROUTES, WEBHOOK_ROUTE
from functions.http.hot_paths import LeanPath
from functions.http.offline_docs import docs_router

logger = logging.getLogger(__name__)

API_TITLE = "Warehouse stock API"
API_VERSION = "1.0.0"

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(scope: Scope) -> str:
    """API Gateway's request id in Lambda, else a sane client X-Request-ID, else a new one."""
    event = scope.get("aws.event")
    if isinstance(event, dict):
        rid = event.get("requestContext", {}).get("requestId")
        if isinstance(rid, str) and rid:
            return rid
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = bytes(value).decode("latin-1")
            if _SAFE_ID.match(text):
                return text
    return f"{_new_ids.getrandbits(128):032x}"  # a uuid4's hex in size and spread, with no syscall


# Request ids from a generator seeded from the OS (os.urandom) at start-up and again in a forked
# child: ids, not secrets, so a getrandom() call per request (os.urandom) buys nothing.
_new_ids = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_ids.seed)


class TracingMiddleware:
    """One OpenTelemetry span per request of the local app (common.adapters.tracing; added only when
    an OTLP endpoint is configured). In Lambda the invocation's span is the request's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        with tracing.span(f"{method} {path}", {"http.request.method": method, "url.path": path}):
            await self.app(scope, receive, send)


class RequestContextMiddleware:
    """Tags each request with an id, turns any escaped exception into a JSON 500, times requests.

    Pure ASGI (not BaseHTTPMiddleware) so it adds no task or buffering per request; a few
    microseconds in all (the header is appended, not merged through a headers object).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode("latin-1"))
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        began = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception(
                "unhandled error in %s %s [request_id=%s]",
                scope.get("method"),
                scope.get("path"),
                request_id,
                extra={"request_id": request_id},
            )
            if started:
                raise  # the status line is gone: let the server drop the connection
            body = {"detail": "internal server error", "request_id": request_id}
            await JSONResponse(body, 500)(scope, receive, send_with_id)
        finally:
            if observability.prometheus_enabled():
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                observability.observe_http(
                    scope.get("method", ""), template, status, time.perf_counter() - began
                )


class App(FastAPI):
    """FastAPI with the lean path in front: a GET the lean path claims skips FastAPI's stack.

    Still a FastAPI app for everything else (routes, OpenAPI, lifespan, `app.state`, Mangum, test
    clients). The lean routes are collected on the first request, when the routes are all in.
    """

    _lean: LeanPath | None = None
    _lean_stack: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lean, stack = self._lean, self._lean_stack
        if lean is None or stack is None:
            lean = self._lean = LeanPath(self.routes)
            stack = self._lean_stack = RequestContextMiddleware(lean)
        if scope["type"] == "http" and lean.claim(scope):
            scope["app"] = self
            await stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def make_app(
    routers: Sequence[APIRouter],
    *,
    lambda_mode: bool,
    schema_models: Sequence[type[BaseModel]] = (),
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """An app serving `routers`. In Lambda no docs routes and no Prometheus: API Gateway fronts it."""
    app = App(
        title=API_TITLE,
        version=API_VERSION,
        description=(
            "Stock of products per warehouse, fed by movement events (departure/arrival) from Kafka "
            "or this webhook. Every write is idempotent; every error body is JSON."
        ),
        openapi_url=None if lambda_mode else "/openapi.json",
        # FastAPI's own /docs and /redoc load their assets from public CDNs: see offline_docs.
        docs_url=None,
        redoc_url=None,
        responses=COMMON_RESPONSES,
        lifespan=lifespan,
        # No OpenTelemetry here (Prometheus locally, Powertools in Lambda): off, FastAPI skips
        # looking up the global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    for router in routers:
        app.include_router(router)
    if not lambda_mode:
        app.include_router(docs_router(API_TITLE))
    app.add_exception_handler(RequestValidationError, on_validation_error)
    # PoolTimeout, connection failures and server shutdowns are all OperationalError subclasses.
    app.add_exception_handler(psycopg.OperationalError, on_database_unavailable)
    app.add_middleware(RequestContextMiddleware)
    if not lambda_mode and tracing.enabled():
        app.add_middleware(TracingMiddleware)
    add_schemas(app, schema_models)
    add_security_schemes(app, OPERATOR_ROUTES, WEBHOOK_ROUTE)
    return app
