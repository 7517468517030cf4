"""OpenAPI helpers shared by the routers: documented responses with examples, extra schemas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from functions.http.errors import ErrorBody


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
            "PostgreSQL is unreachable, or a row lock or statement took longer than its limit; retry after "
            "the Retry-After seconds (safe: nothing was committed, and writes are idempotent).",
            {"detail": "database unavailable, retry later", "request_id": "5f0c1a9e2b7d4c1e8f3a6b9d0e2c4a7f"},
        ),
        "headers": {
            "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
        },
    },
}


def add_schemas(app: FastAPI, models: Sequence[type[BaseModel]]) -> None:
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


# The bearer tokens of the API, as OpenAPI security schemes: Swagger UI's Authorize button sends
# them with "Try it out" (the console's /docs). Operator routes: the operator token locally and
# with OperatorAuth=Token, the identity provider's access token with OperatorAuth=JWT (the
# gateway checks it; docs/deployment.md#who-may-call-what). SigV4 (OperatorAuth=IAM) has no
# OpenAPI scheme a browser can fill in: it is for machines.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "OperatorBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "Operator routes (dead letters, replay): `Authorization: Bearer <operator token>`, or "
            "in AWS with OperatorAuth=JWT the access token of the company's identity provider."
        ),
    },
    "WebhookBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The producers' webhook token (`WEBHOOK_TOKEN`): `Authorization: Bearer <token>`.",
    },
}


def add_security_schemes(app: FastAPI, operator_routes: Sequence[str], webhook_route: str) -> None:
    """Declare the bearer schemes and require them on the routes that check them ("METHOD /path")."""
    generate = app.openapi
    required = {route: "OperatorBearer" for route in operator_routes} | {webhook_route: "WebhookBearer"}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            used = False
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    scheme = required.get(f"{method.upper()} {path}")
                    if scheme is not None:
                        operation["security"] = [{scheme: []}]
                        used = True
            if used:
                schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
