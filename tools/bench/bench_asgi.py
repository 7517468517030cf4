"""The apps the HTTP rows measure: the service with a no-op route, and two same-run ceilings.

- `app`: the local app plus `GET /bench/noop`, a constant JSON body through the same app and
  middleware as `GET /api/v1/warehouse/.../products/...` (an async route, like it), with no cache,
  query or serialisation: the gap between the two is what reading stock costs. `POST /bench/noop`
  reads the body and parses it as JSON, then answers a constant: the ceiling of the webhook on the
  same server (row 4c). Both routes exist only in this module, never in the app the project ships.
- `fastapi_noop`: a bare FastAPI app with one async route answering that constant: FastAPI's own
  ceiling on this machine, with the same uvicorn and worker count.
- `bare_noop`: an ASGI callable answering it: the server's ceiling (uvicorn, httptools, uvloop).

Served with `uvicorn tools.bench.bench_asgi:app` (or `:fastapi_noop`, `:bare_noop`).
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request, Response
from starlette.types import Receive, Scope, Send

from functions.local_app.main import app

NOOP_PATH = "/bench/noop"
NOOP_BODY = b'{"warehouse_id":"00000000-0000-4000-8000-000000000000","quantity":0}'
NOOP_POST_BODY = b'{"status":"applied"}'


@app.get(NOOP_PATH, include_in_schema=False)
async def noop() -> Response:
    """An async route like get_stock, through the same middleware, doing nothing."""
    return Response(NOOP_BODY, media_type="application/json")


@app.post(NOOP_PATH, include_in_schema=False)
async def noop_post(request: Request) -> Response:
    """The webhook's floor on this server: the same body read and JSON-parsed, nothing applied."""
    json.loads(await request.body())
    return Response(NOOP_POST_BODY, media_type="application/json")


fastapi_noop = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@fastapi_noop.get(NOOP_PATH)
async def fastapi_constant() -> Response:
    return Response(NOOP_BODY, media_type="application/json")


@fastapi_noop.get("/health")
async def fastapi_health() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(NOOP_BODY)).encode())]


async def bare_noop(scope: Scope, receive: Receive, send: Send) -> None:
    """The constant for every HTTP request (health checks included), nothing else."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": NOOP_BODY})


__all__ = ["NOOP_PATH", "app", "bare_noop", "fastapi_noop"]
