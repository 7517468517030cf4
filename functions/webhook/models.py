"""The webhook's answers and its OpenAPI document: the bodies, their examples, the request body.

No logic here: functions/webhook/routes.py is the route, common/intake/webhook.py what it calls.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from common.domain.events import Envelope
from common.domain.examples import example as _first_example
from common.domain.outcomes import Reason, Status
from functions.http.docs import doc, invalid_example
from functions.http.errors import ErrorBody, InvalidRequest
from functions.http.guards import CROSS_SITE_DETAIL

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


REQUEST_BODY: dict[str, Any] = {
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

RESPONSES: dict[int | str, dict[str, Any]] = {
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
