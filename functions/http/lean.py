"""The lean path: the two hot GETs (stock, movement) answered in front of FastAPI's routing.

A cache hit costs one Redis round trip, yet FastAPI's per-request machinery (route matching over
every route, path parameter validation, the endpoint's dependency solving, the response model
checks) costs more than that several times over. Endpoints marked `@lean(answer)` keep their
FastAPI route, which the OpenAPI document lists with its schemas and which still answers every
request the lean path does not take, but a GET whose path is that route's template with canonical
UUIDs in it is answered here, by the very `answer` coroutine the endpoint itself awaits: one
function decides the status and the body, whichever way the request came in.

Anything else (an id that is not a canonical UUID, a trailing slash, another method) falls through
to FastAPI unchanged, so its 422 and 404 answers stay FastAPI's own. The lean path serves only the
routes the app mounts (a Lambda function serves its own routes only). `functions.http.app.App`
hands a claimed request to it before FastAPI's own stack, wrapped in the same
`RequestContextMiddleware` (request id, 500 JSON, latency metric under the route's template); it
answers a PostgreSQL outage 503 like the app's exception handler.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from fastapi import Request, Response
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from functions.http.errors import on_database_unavailable

# (status, JSON body): what an endpoint answers, decided once for both paths.
Answer = tuple[int, bytes]
AnswerFn = Callable[..., Awaitable[Answer]]
E = TypeVar("E", bound=Callable[..., Any])

_UUID = "([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
_PARAM = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_JSON = b"application/json"
_MATCH = "warehouse.lean_match"
_answers: dict[Callable[..., Any], AnswerFn] = {}


def lean(answer: AnswerFn) -> Callable[[E], E]:
    """Serve this GET endpoint on the lean path too, with `answer(*uuids)` (its path's ids, in order)."""

    def mark(endpoint: E) -> E:
        _answers[endpoint] = answer
        return endpoint

    return mark


def json_response(answer: Answer) -> Response:
    """The FastAPI endpoint's response for an `Answer`: the same bytes the lean path sends."""
    status, body = answer
    return Response(body, status, media_type="application/json")


class _LeanRoute:
    __slots__ = ("answer", "pattern", "route")

    def __init__(self, path: str, route: BaseRoute, answer: AnswerFn) -> None:
        self.route = route
        self.answer = answer
        # The template's literal parts as they are, each {parameter} a canonical UUID.
        self.pattern = re.compile(_UUID.join(re.escape(part) for part in _PARAM.split(path)))


class LeanPath:
    """The `@lean` GET routes among `routes` (an app's, included routers walked), and the ASGI app
    answering the requests `claim` took."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = [
            _LeanRoute(context.path, context.original_route, _answers[context.endpoint])
            for context in iter_route_contexts(routes)
            if context.endpoint in _answers and context.path and "GET" in (context.methods or ())
        ]

    def claim(self, scope: Scope) -> bool:
        """Whether this request is one of ours (the match is kept in the scope for `__call__`)."""
        if scope["method"] != "GET" or not self.routes:
            return False
        path = _route_path(scope)
        for lean_route in self.routes:
            found = lean_route.pattern.fullmatch(path)
            if found is not None:
                scope[_MATCH] = (lean_route, found.groups())
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lean_route, ids = scope[_MATCH]
        scope["route"] = lean_route.route  # the latency metric's label, as FastAPI's routing sets it
        try:
            status, body = await lean_route.answer(*(UUID(text) for text in ids))
        except psycopg.OperationalError as exc:  # the app's own 503 (PoolTimeout included)
            await (await on_database_unavailable(Request(scope), exc))(scope, receive, send)
            return
        headers = [(b"content-length", str(len(body)).encode()), (b"content-type", _JSON)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _route_path(scope: Scope) -> str:
    """The path the routes match: without the app's root path, as Starlette's routing strips it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path
