"""The error answers every HTTP entry point gives: JSON bodies, also the OpenAPI schemas.

A client only ever sees JSON: validation errors name the field; a PostgreSQL outage, a lock
wait past DB_LOCK_TIMEOUT_MS or a statement past DB_STATEMENT_TIMEOUT_MS is a 503 with
Retry-After (the request can be repeated safely: writes are idempotent), and anything unexpected
is a generic 500 carrying a request id that is also in the log line with the traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg import errors as pg_errors
from pydantic import BaseModel, ConfigDict

from common.domain.outcomes import FieldError, describe_errors, dotted_field

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
# A row lock held past DB_LOCK_TIMEOUT_MS is usually a batch about to commit: retry sooner.
LOCK_RETRY_AFTER_SECONDS = 1


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


def error_response(
    status_code: int, detail: str, *, request: Request | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An ErrorBody response; the request id only on 5xx, where the client needs it to report ours."""
    request_id = None
    if request is not None and status_code >= 500:
        request_id = request.scope.get("state", {}).get("request_id")
    return JSONResponse({"detail": detail, "request_id": request_id}, status_code, headers=headers)


def invalid_response(errors: Sequence[FieldError], status_code: int = 422) -> JSONResponse:
    body = {
        "status": "rejected",
        "reason": "invalid",
        "detail": describe_errors(list(errors)),
        "errors": errors,
    }
    return JSONResponse(body, status_code)


def invalid_parameter(field: str, location: str, message: str) -> RequestValidationError:
    """An error for a parameter checked in the route (e.g. a cursor): answered like FastAPI's own."""
    return RequestValidationError([{"loc": (location, field), "msg": message, "type": "value_error"}])


def _field_name(loc: Sequence[int | str]) -> str:
    """FastAPI's location without its first part (where: path, query, ...), dotted like the body's."""
    parts = list(loc)
    if parts and parts[0] in ("path", "query", "header", "cookie", "body"):
        parts = parts[1:]
    return dotted_field(parts, whole="request")


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: list[FieldError] = [
        {
            "field": _field_name(e.get("loc", ())),
            "message": str(e.get("msg", "invalid")),
            "type": str(e.get("type")),
        }
        for e in exc.errors()
    ]
    return invalid_response(errors)


async def on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Every psycopg.OperationalError: an outage, a lock wait or a statement past its limit, or a
    race still lost after the retries (`common.adapters.db.LostRace`, a serialization failure).

    All are 503 with Retry-After: nothing was committed, and repeating the request is safe.
    The connection went back to the pool at once (no request holds one longer than the limits).
    """
    if isinstance(exc, pg_errors.LockNotAvailable):
        logger.warning("lock wait over DB_LOCK_TIMEOUT_MS on %s %s", request.method, request.url.path)
        detail = "the data is locked by another transaction, retry shortly"
        retry_after = LOCK_RETRY_AFTER_SECONDS
    elif isinstance(exc, pg_errors.TransactionRollback):  # LostRace included: lost beyond the retries
        logger.warning("transaction still losing its race after the retries on %s %s", request.method,
                       request.url.path)  # fmt: skip
        detail = "the data changed concurrently, retry shortly"
        retry_after = LOCK_RETRY_AFTER_SECONDS
    elif isinstance(exc, pg_errors.QueryCanceled):
        logger.warning("statement over DB_STATEMENT_TIMEOUT_MS on %s %s", request.method, request.url.path)
        detail, retry_after = "the database did not answer in time, retry later", RETRY_AFTER_SECONDS
    else:
        logger.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        detail, retry_after = "database unavailable, retry later", RETRY_AFTER_SECONDS
    return error_response(503, detail, request=request, headers={"Retry-After": str(retry_after)})
