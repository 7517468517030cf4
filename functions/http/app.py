"""The app factory and the middleware every HTTP entry point shares.

One FastAPI app is built per deployment unit from the route groups it serves: a Lambda function
gets only its own router, the local app gets all of them.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

import psycopg
from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common import observability
from functions.http.docs import COMMON_RESPONSES, add_schemas
from functions.http.errors import on_database_unavailable, on_validation_error
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
            text = value.decode("latin-1")
            if _SAFE_ID.match(text):
                return text
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Tags each request with an id, turns any escaped exception into a JSON 500, times requests.

    Pure ASGI (not BaseHTTPMiddleware) so it adds no task or buffering per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
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


def make_app(
    routers: Sequence[APIRouter],
    *,
    lambda_mode: bool,
    schema_models: Sequence[type[BaseModel]] = (),
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """An app serving `routers`. In Lambda no docs routes and no Prometheus: API Gateway fronts it."""
    app = FastAPI(
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
    )
    for router in routers:
        app.include_router(router)
    if not lambda_mode:
        app.include_router(docs_router(API_TITLE))
    app.add_exception_handler(RequestValidationError, on_validation_error)
    # PoolTimeout, connection failures and server shutdowns are all OperationalError subclasses.
    app.add_exception_handler(psycopg.OperationalError, on_database_unavailable)
    app.add_middleware(RequestContextMiddleware)
    add_schemas(app, schema_models)
    return app
