"""A Lambda entry point for HTTP functions: Mangum over the function's own routers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from fastapi import APIRouter
from mangum import Mangum

from common.observability import LambdaHandler, lambda_entry
from functions.http.app import make_app


def lambda_handler(routers: Sequence[APIRouter], *, service: str) -> LambdaHandler:
    """The handler serving `routers` through Mangum, wrapped like every function (observability).

    Built at import time without I/O: the pool and the Redis client open on first use and are kept
    for the container's life.
    """
    # HTTP API with the $default stage: no stage prefix to strip from the path.
    asgi = Mangum(make_app(routers, lambda_mode=True), lifespan="off", api_gateway_base_path="/")

    @lambda_entry(service, correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return asgi(event, context)

    return handler
