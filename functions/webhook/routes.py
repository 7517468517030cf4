"""POST /api/v1/kafka/webhook: one movement event over HTTP, answered with what became of it.

The body is read raw (not through a FastAPI body model) so that the size limit applies before
parsing and the exact bytes reach `parse_event`, the same validation the Kafka path uses. An
invalid event is answered 422 and not stored: the caller is told and can fix it. A valid event
that breaks a rule (conflict, insufficient stock) is parked in the dead-letter store and answered
409 with the id of the dead letter.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from common.adapters.config import get_settings
from common.domain.outcomes import Outcome, Reason, Status
from common.intake.webhook import receive
from functions.http.errors import error_response, invalid_response
from functions.http.guards import (
    PayloadTooLarge,
    bearer_token_ok,
    json_content_type,
    read_body_limited,
    require_same_site,
    webhook_token,
)
from functions.http.hot_paths import lean_post
from functions.webhook.models import REQUEST_BODY, RESPONSES, WebhookAccepted, WebhookRejected

WEBHOOK_PATH = "/api/v1/kafka/webhook"

router = APIRouter(tags=["events"])


def _answer(outcome: Outcome) -> Response:
    """200 when the event is in the ledger; 409 when it was refused (and parked as a dead letter)."""
    event = outcome.event
    if outcome.status is Status.REJECTED:
        # Invalid: the body did not parse, or the database refused a value validation let through.
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
    responses=RESPONSES,
    openapi_extra=REQUEST_BODY,
    dependencies=[Depends(require_same_site)],
)
# Served in front of FastAPI's routing too (functions.http.hot_paths), by this very function. `guards`
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
    return _answer(await receive(raw))
