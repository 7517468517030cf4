"""The local app plus one benchmark-only route, so the ceiling is measured on the very same server.

`GET /bench/noop` answers a constant JSON body through the same FastAPI app, middleware and
thread pool as `GET /api/v1/warehouse/.../products/...`, with no cache, query or serialisation:
the gap between the two is what reading stock costs. The route exists only in this module, never
in the app the project ships.

Served with `uvicorn tools.bench.bench_asgi:app`.
"""

from __future__ import annotations

from fastapi import Response

from functions.local_app.main import app

NOOP_PATH = "/bench/noop"
NOOP_BODY = b'{"warehouse_id":"00000000-0000-4000-8000-000000000000","quantity":0}'


@app.get(NOOP_PATH, include_in_schema=False)
def noop() -> Response:
    """A sync route like get_stock (run in the same thread pool), doing nothing."""
    return Response(NOOP_BODY, media_type="application/json")


__all__ = ["NOOP_PATH", "app"]
