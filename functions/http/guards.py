"""Guards that run before any work: the bearer tokens, the operator routes, the body size limit,
cross-site requests and the webhook's Content-Type.

Two tokens, never interchangeable: producers send the webhook token (WEBHOOK_TOKEN, or the secret
WEBHOOK_TOKEN_SECRET_ARN) to write events; operators send the operator token (OPERATOR_TOKEN or
OPERATOR_TOKEN_SECRET_ARN) to read dead letters, which carry raw payloads, and to replay them.
With OPERATOR_AUTH=gateway, API Gateway's authorizer (IAM or JWT) checks operators instead and
the app only makes sure, in Lambda, that the request did pass one.

Fail closed: in Lambda a function refuses to start without the token it needs
(`check_lambda_start`); locally a route left open is allowed for development, with one warning
at start (`open_route_warnings`). A token secret that cannot be read answers 503, never "open".
"""

from __future__ import annotations

import hmac
import logging
import os
from typing import Any

from fastapi import HTTPException, Request

from common.adapters.config import ConfigError, Settings, get_settings

logger = logging.getLogger(__name__)

OPERATOR_ROUTES = (
    "GET /api/v1/rejected-events",
    "GET /api/v1/rejected-events/{rejected_event_id}",
    "POST /api/v1/rejected-events/{rejected_event_id}/replay",
    "GET /ui/dead-letters/rows",
)
WEBHOOK_ROUTE = "POST /api/v1/kafka/webhook"
BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}
TOKEN_UNAVAILABLE_RETRY_AFTER_SECONDS = 5


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


# --- cross-site requests ------------------------------------------------------------------------
# A page on another site can make a browser send a "simple" POST (no preflight) to a route it can
# reach, an open local app included. Browsers say where such a request comes from (`Origin`, and
# `Sec-Fetch-Site` in current ones); other clients (producers, curl, the CLIs) send neither.

SAME_SITE_FETCH = frozenset({"same-origin", "none"})  # `none`: the user's own navigation
CROSS_SITE_DETAIL = "cross-site request refused: this route changes data (see TRUSTED_ORIGINS)"


def trusted_origins(settings: Settings) -> frozenset[str]:
    """TRUSTED_ORIGINS as a set of lower-case origins without a trailing slash."""
    text = settings.trusted_origins or ""
    return frozenset(o.strip().lower().rstrip("/") for o in text.split(",") if o.strip())


def cross_site_refused(
    origin: str | None, fetch_site: str | None, host: str | None, settings: Settings | None = None
) -> bool:
    """Whether a state-changing request comes from another site's page and must be refused.

    A plain function of three header values, so any entry point (a FastAPI dependency, an ASGI
    fast path) applies the same rule: an `Origin` other than the request's own host, or a
    `Sec-Fetch-Site` other than same-origin/none, is refused unless TRUSTED_ORIGINS allows it.
    """
    trusted = trusted_origins(settings or get_settings())
    if "*" in trusted:
        return False
    if origin:
        claimed = origin.strip().lower().rstrip("/")
        if claimed in trusted:
            return False
        own = bool(host) and claimed.partition("://")[2] == (host or "").strip().lower()
        return not own or (fetch_site is not None and fetch_site.strip().lower() not in SAME_SITE_FETCH)
    return fetch_site is not None and fetch_site.strip().lower() not in SAME_SITE_FETCH


def require_same_site(request: Request) -> None:
    """FastAPI dependency of every state-changing route: 403 for a cross-site browser request."""
    headers = request.headers
    if cross_site_refused(headers.get("origin"), headers.get("sec-fetch-site"), headers.get("host")):
        logger.warning(
            "cross-site %s %s refused (Origin %r, Sec-Fetch-Site %r)", request.method, request.url.path,
            headers.get("origin"), headers.get("sec-fetch-site"),
        )  # fmt: skip
        raise HTTPException(403, CROSS_SITE_DETAIL)


def json_content_type(value: str | None) -> bool:
    """Whether a body declared with this Content-Type may be read as JSON: `application/json`
    (any parameters), or none declared. `text/plain` and forms, which a page on another site
    can send without a preflight, are not."""
    if value is None:
        return True
    return value.partition(";")[0].strip().lower() == "application/json"


# --- the tokens ----------------------------------------------------------------------------------


def _token(plain: str | None, secret_arn: str | None, name: str) -> str | None:
    """The configured token: the plain value, else the secret's; None when neither is configured.

    A secret that cannot be read (AWS unreachable, no permission, empty) is a 503 for the caller.
    """
    if plain:
        return plain
    if not secret_arn:
        return None
    from common.adapters.secrets import token_from_secret

    try:
        return token_from_secret(secret_arn)
    except Exception as exc:  # any failure to read the token must close the route, not open it
        logger.error("cannot read the %s from its secret: %s: %s", name, type(exc).__name__, exc)
        raise HTTPException(
            503,
            "authentication is temporarily unavailable, retry later",
            headers={"Retry-After": str(TOKEN_UNAVAILABLE_RETRY_AFTER_SECONDS)},
        ) from None


def webhook_token(settings: Settings | None = None) -> str | None:
    """The producers' token (WEBHOOK_TOKEN or WEBHOOK_TOKEN_SECRET_ARN); None = not configured."""
    s = settings or get_settings()
    return _token(s.webhook_token, s.webhook_token_secret_arn, "webhook token")


def operator_token(settings: Settings | None = None) -> str | None:
    """The operators' token (OPERATOR_TOKEN or OPERATOR_TOKEN_SECRET_ARN); None = not configured."""
    s = settings or get_settings()
    return _token(s.operator_token, s.operator_token_secret_arn, "operator token")


def webhook_token_configured(settings: Settings) -> bool:
    return bool(settings.webhook_token or settings.webhook_token_secret_arn)


def operator_token_configured(settings: Settings) -> bool:
    return bool(settings.operator_token or settings.operator_token_secret_arn)


def unauthorized() -> HTTPException:
    return HTTPException(401, "missing or wrong bearer token", headers=BEARER_CHALLENGE)


# --- the operator routes -------------------------------------------------------------------------


def authorized_by_gateway(event: Any) -> bool:
    """Whether an API Gateway HTTP API event passed an authorizer (IAM: `authorizer.iam`, JWT:
    `authorizer.jwt`, Lambda authorizer: `authorizer.lambda`)."""
    if not isinstance(event, dict):
        return False
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    return isinstance(authorizer, dict) and any(authorizer.get(k) for k in ("iam", "jwt", "lambda"))


def require_operator(request: Request) -> None:
    """FastAPI dependency of every operator route: 401 unless the caller is an operator.

    A route dependency runs before the path and query are validated, so a caller without the
    token learns nothing, not even whether an id is well formed.
    """
    settings = get_settings()
    if settings.operator_auth == "gateway":
        event = request.scope.get("aws.event")
        # In Lambda (Mangum puts the event in the scope) the event must show the gateway's
        # authorizer: a second line of defence should a route lose its authorizer.
        if event is not None and not authorized_by_gateway(event):
            logger.error("operator route %s reached without an API Gateway authorizer", request.url.path)
            raise HTTPException(401, "this route requires the API Gateway's authorization")
        return
    expected = operator_token(settings)
    if expected is None:
        if in_lambda():  # a second line behind check_lambda_start: never open in Lambda
            logger.error("operator route %s reached in Lambda without an operator token", request.url.path)
            raise unauthorized()
        return  # open: allowed outside Lambda only, with a warning at start
    if same_as_webhook_token(expected, settings):
        # The producers' token must never open the operator routes: refuse everyone instead.
        logger.error("the operator token equals the webhook token: operator routes refused until they differ")
        raise unauthorized()
    if not bearer_token_ok(request.headers.get("authorization"), expected):
        raise unauthorized()


def same_as_webhook_token(operator: str, settings: Settings) -> bool:
    """Whether the producers' token, as resolved (plain or from its secret), is the operators' one.

    Compared as resolved, not as configured: two secrets holding the same value are the same token.
    A webhook secret that cannot be read is a 503 (`_token`), never "they differ".
    """
    webhook = webhook_token(settings)
    return webhook is not None and hmac.compare_digest(webhook.encode(), operator.encode())


# --- start-up ------------------------------------------------------------------------------------


def in_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def check_lambda_start(*, webhook: bool = False, operator: bool = False) -> None:
    """In Lambda, refuse to start a function whose routes would be open (no I/O: the secret is read
    on the first request). Outside Lambda nothing is checked (see `open_route_warnings`)."""
    if not in_lambda():
        return
    settings = get_settings()
    if webhook and not webhook_token_configured(settings):
        raise ConfigError(
            "WEBHOOK_TOKEN_SECRET_ARN is not set: the webhook refuses to start in Lambda without a token "
            "(it would accept stock writes from anyone)"
        )
    if operator and settings.operator_auth == "token" and not operator_token_configured(settings):
        raise ConfigError(
            "OPERATOR_AUTH=token but OPERATOR_TOKEN_SECRET_ARN is not set: the operator routes refuse "
            "to start in Lambda without a token (or set OPERATOR_AUTH=gateway behind an authorizer)"
        )


def open_route_warnings(settings: Settings) -> list[str]:
    """One message per group of routes that anyone reaching the app could call (local app start)."""
    warnings = []
    if not webhook_token_configured(settings):
        warnings.append(
            f"{WEBHOOK_ROUTE} is open: WEBHOOK_TOKEN is not set, anyone who reaches the app can write stock"
        )
    operators = ", ".join(OPERATOR_ROUTES)
    if settings.operator_auth == "gateway":
        warnings.append(
            f"OPERATOR_AUTH=gateway: the app does not check {operators}; outside API Gateway they are open"
        )
    elif not operator_token_configured(settings):
        warnings.append(
            f"{operators} are open: OPERATOR_TOKEN is not set, anyone who reaches the app can read raw "
            "dead letters and replay them"
        )
    elif settings.webhook_token and settings.webhook_token == settings.operator_token:
        warnings.append("OPERATOR_TOKEN equals WEBHOOK_TOKEN: the operator routes refuse every request")
    elif settings.webhook_token_secret_arn and (
        settings.webhook_token_secret_arn == settings.operator_token_secret_arn
    ):
        warnings.append(
            "OPERATOR_TOKEN_SECRET_ARN is WEBHOOK_TOKEN_SECRET_ARN: the operator routes refuse every request"
        )
    return warnings
