"""POST /api/v1/kafka/webhook: one movement event over HTTP, answered with what became of it.

The body is read raw (not through a FastAPI body model) so that the size limit applies before
parsing and the exact bytes reach `parse_event`, the same validation the Kafka path uses. An
invalid event is answered 422 and not stored: the caller is told and can fix it. A valid event
that breaks a rule (conflict, insufficient stock) is parked in the dead-letter store and answered
409 with the id of the dead letter.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from common.adapters.config import get_settings
from common.adapters.observability import record_outcomes
from common.domain.events import Envelope, Origin, parse_event
from common.domain.examples import example as _first_example
from common.domain.outcomes import Outcome, Reason, Status
from common.intake.group_commit import ingest_one
from functions.http.docs import doc, invalid_example
from functions.http.errors import ErrorBody, InvalidRequest, error_response, invalid_response
from functions.http.guards import (
    CROSS_SITE_DETAIL,
    PayloadTooLarge,
    bearer_token_ok,
    json_content_type,
    read_body_limited,
    require_same_site,
    webhook_token,
)
from functions.http.lean import lean_post

WEBHOOK_PATH = "/api/v1/kafka/webhook"

router = APIRouter(tags=["events"])
# Models the OpenAPI document needs although no route parses them through FastAPI.
schema_models = (Envelope,)


_ENVELOPE_EXAMPLE: dict[str, Any] = _first_example(Envelope)
_ARRIVAL_EXAMPLE: dict[str, Any] = {
    **_ENVELOPE_EXAMPLE,
    "subject": "WH-3323:ARRIVAL",
    "data": {
        **_ENVELOPE_EXAMPLE["data"],
        "warehouse_id": "c1d70455-7e14-11e9-812a-70106f431230",
        "timestamp": "2025-02-18T14:34:56Z",
        "event": "arrival",
        "quantity": 98,
    },
}


class WebhookAccepted(BaseModel):
    """200: the event is in the ledger, now (`applied`) or from an earlier delivery (`duplicate`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "applied",
                    "movement_id": "c6290746-790e-43fa-8270-014dc90e02e0",
                    "event": "departure",
                    "warehouse_id": "25718666-6af6-4281-b5a6-3016e36fa557",
                    "product_id": "4705204f-498f-4f96-b4ba-df17fb56bf55",
                    "quantity": 100,
                    "stock": 20,
                }
            ]
        }
    )

    status: Literal[Status.APPLIED, Status.DUPLICATE]
    movement_id: UUID
    event: Literal["arrival", "departure"]
    warehouse_id: UUID
    product_id: UUID
    quantity: int
    stock: int


class WebhookRejected(BaseModel):
    """409: the event is valid but breaks a rule; it is kept in the dead-letter store."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "rejected",
                    "reason": "insufficient_stock",
                    "detail": "departure of 100 of product 4705204f-498f-4f96-b4ba-df17fb56bf55 from "
                    "warehouse 25718666-6af6-4281-b5a6-3016e36fa557 exceeds the 20 on hand",
                    "rejected_event_id": 42,
                }
            ]
        }
    )

    status: Literal[Status.REJECTED]
    reason: Literal[Reason.CONFLICT, Reason.INSUFFICIENT_STOCK]
    detail: str
    rejected_event_id: int | None


_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "One movement event in the CloudEvents-style envelope (at most MAX_BODY_BYTES).",
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/Envelope"},
                "examples": {
                    "departure": {"summary": "100 leave warehouse A", "value": _ENVELOPE_EXAMPLE},
                    "arrival": {"summary": "98 of them reach warehouse B", "value": _ARRIVAL_EXAMPLE},
                },
            }
        },
    }
}

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Applied now, or already applied by an identical earlier delivery (idempotent).",
        "content": {
            "application/json": {
                "examples": {
                    "applied": {"value": _first_example(WebhookAccepted)},
                    "duplicate": {
                        "value": {
                            **_first_example(WebhookAccepted),
                            "status": "duplicate",
                        }
                    },
                }
            }
        },
    },
    401: doc(
        ErrorBody,
        "WEBHOOK_TOKEN is set and `Authorization: Bearer <token>` is missing or wrong.",
        {"detail": "missing or wrong bearer token", "request_id": None},
    ),
    409: doc(
        WebhookRejected,
        "Valid but refused: a conflicting version of an applied half, or a departure above the stock.",
        _first_example(WebhookRejected),
    ),
    403: doc(
        ErrorBody,
        "A browser's request from another site's page (Origin, Sec-Fetch-Site) not in TRUSTED_ORIGINS.",
        {"detail": CROSS_SITE_DETAIL},
    ),
    413: doc(
        ErrorBody,
        "The body is larger than MAX_BODY_BYTES.",
        {"detail": "body larger than 1048576 bytes", "request_id": None},
    ),
    415: doc(
        ErrorBody,
        "A Content-Type other than application/json (text/plain, a form): nothing was read.",
        {"detail": "Content-Type must be application/json", "request_id": None},
    ),
    422: doc(
        InvalidRequest,
        "Not a valid movement event (bad JSON, empty body, missing field, wrong type). Not stored.",
        invalid_example("data.quantity", "Input should be greater than or equal to 1", "greater_than_equal"),
    ),
}


def _answer(outcome: Outcome) -> Response:
    """200 when the event is in the ledger; 409 when it was refused (and parked as a dead letter)."""
    event = outcome.event
    if outcome.status is Status.REJECTED:
        # Invalid: only when the database refused a value validation let through.
        if outcome.reason is Reason.INVALID or outcome.reason is None or event is None:
            return invalid_response(outcome.errors)
        body = WebhookRejected(
            status=Status.REJECTED,
            reason=outcome.reason,
            detail=outcome.detail or "",
            rejected_event_id=outcome.rejected_event_id,
        )
        return Response(body.model_dump_json(), 409, media_type="application/json")
    assert event is not None and outcome.stock is not None
    accepted = WebhookAccepted(
        status=outcome.status,
        movement_id=event.movement_id,
        event=event.event,
        warehouse_id=event.warehouse_id,
        product_id=event.product_id,
        quantity=event.quantity,
        stock=outcome.stock,
    )
    return Response(accepted.model_dump_json(), 200, media_type="application/json")


@router.post(
    WEBHOOK_PATH,
    summary="Receive one movement event",
    response_model=WebhookAccepted,
    responses=_RESPONSES,
    openapi_extra=_REQUEST_BODY,
    dependencies=[Depends(require_same_site)],
)
# Served in front of FastAPI's routing too (functions.http.lean), by this very function. `guards`
# must name every dependency of this route (a request guard added above, e.g. Content-Type or
# Origin checks): the lean path runs them itself, and leaves the route to FastAPI until they match.
@lean_post(guards=(require_same_site,))
async def receive_event(request: Request) -> Response:
    """Apply one departure or arrival, exactly once; the answer says what became of it."""
    settings = get_settings()
    if not bearer_token_ok(request.headers.get("authorization"), webhook_token(settings)):
        return error_response(
            401, "missing or wrong bearer token", request=request, headers={"WWW-Authenticate": "Bearer"}
        )
    if not json_content_type(request.headers.get("content-type")):
        return error_response(415, "Content-Type must be application/json", request=request)
    try:
        raw = await read_body_limited(request, settings.max_body_bytes)
    except PayloadTooLarge:
        return error_response(413, f"body larger than {settings.max_body_bytes} bytes", request=request)
    return await _apply(raw)


# A body up to this size is parsed on the event loop (~30 us); a larger one in a thread.
INLINE_PARSE_BYTES = 16 * 1024


async def _apply(raw: bytes) -> Response:
    """Parse, then apply in the next group commit (`common.intake.group_commit`: one transaction for the
    requests that arrive meanwhile, each answered with its own outcome)."""
    if len(raw) <= INLINE_PARSE_BYTES:
        item = parse_event(raw, Origin.webhook())
    else:
        item = await run_in_threadpool(parse_event, raw, Origin.webhook())
    if not item.is_valid:
        record_outcomes([Outcome(Status.REJECTED, reason=Reason.INVALID)], item.origin.kind)
        return invalid_response(item.errors)
    outcome = await ingest_one(item)
    record_outcomes([outcome], item.origin.kind)
    return _answer(outcome)
