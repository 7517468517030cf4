"""Guards that run before any work: the bearer tokens and the body size limit."""

from __future__ import annotations

import hmac

from fastapi import Request


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
