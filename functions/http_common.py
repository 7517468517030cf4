"""What every HTTP entry point shares: the app factory, JSON errors, request ids, Lambda wrapping.

One FastAPI app is built per deployment unit from the route groups it serves: a Lambda function
gets only its own router, the local app gets all of them. Either way a client only ever sees
JSON: validation errors name the field, a PostgreSQL outage is a 503 with Retry-After (the
request can be repeated safely: ingest is idempotent), and anything unexpected is a generic 500
carrying a request id that is also in the log line with the traceback.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

import psycopg
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
API_TITLE = "Warehouse stock API"
API_VERSION = "1.0.0"


# --- error bodies (also the OpenAPI schemas of the error responses) ---------------------------


class FieldError(BaseModel):
    """One problem with the request: `field` is dotted (`data.quantity`) or a parameter name."""

    field: str
    message: str
    type: str


class InvalidRequest(BaseModel):
    """422: the request was refused as invalid and nothing was stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "rejected",
                    "reason": "invalid",
                    "detail": "data.quantity: Input should be greater than or equal to 1",
                    "errors": [
                        {
                            "field": "data.quantity",
                            "message": "Input should be greater than or equal to 1",
                            "type": "greater_than_equal",
                        }
                    ],
                }
            ]
        }
    )

    status: Literal["rejected"] = "rejected"
    reason: Literal["invalid"] = "invalid"
    detail: str
    errors: list[FieldError]


class ErrorBody(BaseModel):
    """Any other error: what went wrong, and the request id to quote when it is ours (5xx)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "movement c6290746-... not found", "request_id": None}]}
    )

    detail: str
    request_id: str | None = None


def doc(model: type[BaseModel] | None, description: str, example: Any) -> dict[str, Any]:
    """One entry of a route's `responses`, with its schema and an example."""
    entry: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"example": example}},
    }
    if model is not None:
        entry["model"] = model
    return entry


def invalid_example(field: str, message: str, kind: str) -> dict[str, Any]:
    return {
        "status": "rejected",
        "reason": "invalid",
        "detail": f"{field}: {message}",
        "errors": [{"field": field, "message": message, "type": kind}],
    }


# Responses any route can give, documented on every operation.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    500: doc(
        ErrorBody,
        "Unexpected server error; quote the request id (also in the x-request-id header).",
        {"detail": "internal server error", "request_id": "5f0c1a9e2b7d4c1e8f3a6b9d0e2c4a7f"},
    ),
    503: {
        **doc(
            ErrorBody,
            "PostgreSQL is unreachable; retry after the Retry-After seconds (safe: writes are idempotent).",
            {"detail": "database unavailable, retry later", "request_id": "5f0c1a9e2b7d4c1e8f3a6b9d0e2c4a7f"},
        ),
        "headers": {
            "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
        },
    },
}


def error_response(
    status_code: int, detail: str, *, request: Request | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An ErrorBody response; the request id only on 5xx, where the client needs it to report ours."""
    request_id = None
    if request is not None and status_code >= 500:
        request_id = request.scope.get("state", {}).get("request_id")
    return JSONResponse({"detail": detail, "request_id": request_id}, status_code, headers=headers)


def invalid_response(errors: list[dict[str, Any]], status_code: int = 422) -> JSONResponse:
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse(
        {"status": "rejected", "reason": "invalid", "detail": detail, "errors": errors}, status_code
    )


def invalid_parameter(field: str, location: str, message: str) -> RequestValidationError:
    """An error for a parameter checked in the route (e.g. a cursor): answered like FastAPI's own."""
    return RequestValidationError([{"loc": (location, field), "msg": message, "type": "value_error"}])


def _field_name(loc: Sequence[int | str]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("path", "query", "header", "cookie", "body"):
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "request"


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": _field_name(e.get("loc", ())),
            "message": str(e.get("msg", "invalid")),
            "type": e.get("type"),
        }
        for e in exc.errors()
    ]
    return invalid_response(errors)


async def _on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    return error_response(
        503,
        "database unavailable, retry later",
        request=request,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


# --- request id, 500 guard and latency --------------------------------------------------------

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

DurationObserver = Callable[[str, str, int, float], None]


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

    def __init__(self, app: ASGIApp, observe: DurationObserver | None = None) -> None:
        self.app = app
        self.observe = observe

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
            if self.observe is not None:
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                self.observe(scope.get("method", ""), template, status, time.perf_counter() - began)


def _observe_prometheus(method: str, route: str, status: int, seconds: float) -> None:
    from common.metrics import HTTP_REQUEST_DURATION

    HTTP_REQUEST_DURATION.labels(method=method, route=route, status=str(status)).observe(seconds)


# --- app factory --------------------------------------------------------------------------------


def _add_schemas(app: FastAPI, models: Sequence[type[BaseModel]]) -> None:
    """Publish models that routes reference by $ref without FastAPI parsing them (raw bodies)."""
    if not models:
        return
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            _, defs = models_json_schema(
                [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


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
        # FastAPI's own /docs and /redoc load their assets from public CDNs: see docs_router().
        docs_url=None,
        redoc_url=None,
        responses=COMMON_RESPONSES,
        lifespan=lifespan,
    )
    for router in routers:
        app.include_router(router)
    if not lambda_mode:
        app.include_router(docs_router())
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    # PoolTimeout, connection failures and server shutdowns are all OperationalError subclasses.
    app.add_exception_handler(psycopg.OperationalError, _on_database_unavailable)
    app.add_middleware(RequestContextMiddleware, observe=None if lambda_mode else _observe_prometheus)
    _add_schemas(app, schema_models)
    return app


# --- API docs without a CDN (issue 15; a self-contained block, movable as it is) ---------------
# Swagger UI and ReDoc from the copies vendored in functions/console/static/vendor/ (pinned, see
# infra/scripts/vendor-assets.sh), which the console's router serves under /static/: an app
# serving these docs must include functions.console.routes.router (the local app does).

DOCS_ASSETS = "/static/vendor"
SWAGGER_UI_ASSETS = f"{DOCS_ASSETS}/swagger-ui-dist@5.35.0"
REDOC_ASSETS = f"{DOCS_ASSETS}/redoc@2.5.4"


def docs_router(openapi_url: str = "/openapi.json") -> APIRouter:
    """GET /docs (Swagger UI) and GET /redoc (ReDoc) for the schema at `openapi_url`, no CDN."""
    router = APIRouter()
    favicon = f"{SWAGGER_UI_ASSETS}/favicon-32x32.png"

    @router.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{API_TITLE} - Swagger UI",
            swagger_js_url=f"{SWAGGER_UI_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_UI_ASSETS}/swagger-ui.css",
            swagger_favicon_url=favicon,
            # The validator badge would send the schema's URL to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @router.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{API_TITLE} - ReDoc",
            redoc_js_url=f"{REDOC_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )

    return router


# --- request helpers ------------------------------------------------------------------------------


class PayloadTooLarge(Exception):
    """The body is over the configured limit (checked before it is all read)."""


async def read_body_limited(request: Request, limit: int) -> bytes:
    """The raw body, refusing early on a large Content-Length and while streaming otherwise."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge
    return bytes(body)


def bearer_token_ok(authorization: str | None, expected: str | None) -> bool:
    """True when no token is configured, or `Authorization: Bearer <token>` matches in constant time."""
    if not expected:
        return True
    if not authorization:
        return False
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


# --- Lambda ---------------------------------------------------------------------------------------

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_handler(routers: Sequence[APIRouter], *, service: str) -> tuple[LambdaHandler, Any]:
    """A Lambda entry point serving `routers` via Mangum, with Powertools logging/metrics/tracing.

    Built at import time without I/O (the pool and Redis client open on first use and are kept
    for the container's life). Returns the handler and its Metrics, for extra metrics.
    """
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
    from mangum import Mangum

    # Read-only functions add no metric of their own: an empty flush is expected, not news.
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    powertools_logger = Logger(service=service)
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        # Our modules' log lines as Powertools JSON with the correlation id. Only inside Lambda:
        # it detaches those loggers from the root logger, which test runners rely on.
        copy_config_to_registered_loggers(
            source_logger=powertools_logger, include={"common", "functions", "mangum"}
        )
    metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Warehouse"), service=service)
    tracer = Tracer(service=service)  # disabled outside Lambda and with POWERTOOLS_TRACE_DISABLED
    # HTTP API with the $default stage: no stage prefix to strip from the path.
    asgi = Mangum(make_app(routers, lambda_mode=True), lifespan="off", api_gateway_base_path="/")

    @powertools_logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics(capture_cold_start_metric=True, raise_on_empty_metrics=False)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return asgi(event, context)

    return handler, metrics
