"""A Lambda entry point for HTTP functions: Mangum over the function's own routers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from fastapi import APIRouter
from mangum import Mangum

from common.adapters.observability import LambdaHandler, lambda_entry
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
        _use_container_loop()
        return asgi(event, context)

    return handler


_loops = threading.local()


def _use_container_loop() -> None:
    """Mangum runs an invocation on the thread's current event loop: make it one loop, kept for the
    container's life, so the async Redis client and pool (one per loop) outlive an invocation.

    Set explicitly because "the current loop" may be gone: `asyncio.run` (in-process callers,
    tests) leaves none behind, and Mangum's `get_event_loop()` then raises.
    """
    loop: asyncio.AbstractEventLoop | None = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
