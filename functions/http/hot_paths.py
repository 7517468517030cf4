"""The lean path: the two hot GETs (stock, movement) and the webhook's POST, in front of FastAPI's routing.

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

A POST endpoint marked `@lean_post(guards=...)` (the webhook: it reads its body raw, so FastAPI
parses nothing for it) is called with the request itself on a POST to its exact path. Its FastAPI
dependencies (the request guards of `functions.http.guards`) are the only thing FastAPI would run
before it: the lean path calls the same functions, named in `guards`, in `claim`; a request one of
them refuses is left to FastAPI, which refuses it in its own words. A route with a dependency not
named there is never taken lean (fail-safe: a guard added to the route but not here keeps working,
at FastAPI's cost).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast
from uuid import UUID, SafeUUID

import psycopg
from fastapi import HTTPException, Request, Response
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
Guard = Callable[[Request], object]  # a route dependency taking the request; raises HTTPException to refuse
PostEndpoint = Callable[[Request], Awaitable[Response]]
_posts: dict[Callable[..., Any], tuple[Guard, ...]] = {}
logger = logging.getLogger(__name__)


def lean(answer: AnswerFn) -> Callable[[E], E]:
    """Serve this GET endpoint on the lean path too, with `answer(*uuids)` (its path's ids, in order)."""

    def mark(endpoint: E) -> E:
        _answers[endpoint] = answer
        return endpoint

    return mark


def lean_post(*, guards: Sequence[Guard] = ()) -> Callable[[E], E]:
    """Serve this POST endpoint (`endpoint(request) -> Response`) on the lean path too, after `guards`:
    the route's FastAPI dependencies, every one of them (else the route is not taken lean)."""

    def mark(endpoint: E) -> E:
        _posts[endpoint] = tuple(guards)
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
        contexts = list(iter_route_contexts(routes))
        self.routes = [
            _LeanRoute(context.path, context.original_route, _answers[context.endpoint])
            for context in contexts
            if context.endpoint in _answers and context.path and "GET" in (context.methods or ())
        ]
        self.posts: dict[str, _LeanPost] = {}
        for context in contexts:
            if context.endpoint in _posts and context.path and "POST" in (context.methods or ()):
                post = _LeanPost.of(context, _posts[context.endpoint])
                if post is not None:
                    self.posts[context.path] = post

    def claim(self, scope: Scope) -> bool:
        """Whether this request is one of ours (the match is kept in the scope for `__call__`)."""
        if scope["method"] == "POST" and self.posts:
            post = self.posts.get(_route_path(scope))
            if post is not None and post.admits(scope):
                scope[_MATCH] = post
                return True
            return False
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
        match = scope[_MATCH]
        if isinstance(match, _LeanPost):
            await match(scope, receive, send)
            return
        lean_route, ids = match
        scope["route"] = lean_route.route  # the latency metric's label, as FastAPI's routing sets it
        try:
            status, body = await lean_route.answer(*[_path_uuid(text) for text in ids])
        except psycopg.OperationalError as exc:  # the app's own 503 (PoolTimeout included)
            await (await on_database_unavailable(Request(scope), exc))(scope, receive, send)
            return
        headers = [(b"content-length", str(len(body)).encode()), (b"content-type", _JSON)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _LeanPost:
    """A `@lean_post` route: its endpoint, called with the request once its guards admitted it."""

    __slots__ = ("endpoint", "guards", "route")

    def __init__(self, route: BaseRoute, endpoint: PostEndpoint, guards: tuple[Guard, ...]) -> None:
        self.route = route
        self.endpoint = endpoint
        self.guards = guards

    @classmethod
    def of(cls, context: Any, guards: tuple[Guard, ...]) -> _LeanPost | None:
        """The lean POST for a route, or None when the lean path could skip one of its dependencies."""
        dependant = getattr(context, "dependant", None)
        calls = {dep.call for dep in dependant.dependencies} if dependant is not None else None
        named = set(guards)
        if calls is None or not calls <= named or any(inspect.iscoroutinefunction(g) for g in guards):
            logger.warning(
                "POST %s is served by FastAPI only: the lean path does not call all its dependencies "
                "(name each one in @lean_post(guards=...), synchronous)",
                context.path,
            )
            return None
        return cls(context.original_route, context.endpoint, guards)

    def admits(self, scope: Scope) -> bool:
        """Every guard passes (a refused request goes to FastAPI, which answers it as always)."""
        if not self.guards:
            return True
        request = Request(scope)
        try:
            for guard in self.guards:
                guard(request)
        except HTTPException:
            return False
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # the latency metric's label, as FastAPI's routing sets it
        request = Request(scope, receive)
        try:
            response = await self.endpoint(request)
        except psycopg.OperationalError as exc:  # the app's own 503 (PoolTimeout included)
            response = await on_database_unavailable(request, exc)
        await response(scope, receive, send)


class _PathUUID(UUID):
    """A UUID from a path the lean pattern matched (canonical form): its text kept for `str`.

    A cached GET turns each id back into text for its cache key: `UUID()`'s re-parsing and
    `UUID.__str__` were ~2 us of the request. Equal to, hashed and dumped like the `UUID` itself;
    a copy or a pickle is a plain `UUID`.
    """

    __slots__ = ("_text",)
    _text: str

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"UUID('{self._text}')"

    def __reduce__(self) -> tuple[type[UUID], tuple[str]]:
        return UUID, (self._text,)


def _path_uuid(
    text: str,
    _new: Any = object.__new__,
    _set: Any = object.__setattr__,
    _unknown: SafeUUID = SafeUUID.unknown,
) -> UUID:
    """`UUID(text)` for a canonical `text` (8-4-4-4-12 hex digits), as `_PathUUID` (~0.6 us, not 1.6)."""
    canonical = text.lower()
    found = _new(_PathUUID)
    _set(found, "int", int(canonical.replace("-", ""), 16))
    _set(found, "is_safe", _unknown)
    _set(found, "_text", canonical)
    return cast(UUID, found)


def _route_path(scope: Scope) -> str:
    """The path the routes match: without the app's root path, as Starlette's routing strips it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path
