"""The paginated lists: a warehouse's stock, movements by filter, and the dead-letter store.

Every list answers `{"items": [...], "next_cursor": str | null}`; pass `next_cursor` back as
`cursor` for the next page until it is null. Lists are read straight from PostgreSQL (no cache):
they are operator tools, not the hot path.

The dead-letter routes are operator routes (raw event payloads): `require_operator` runs before
anything else, path and query validation included. The list shows the first 4 KiB of each payload
and stops at about 1 MiB per page; `GET /api/v1/rejected-events/{id}` answers one whole.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

import psycopg
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from common.adapters.cursor import DEFAULT_LIMIT, MAX_LIMIT, BadCursor
from common.adapters.db import get_pool
from common.dead_letters import store as dead_letters
from common.dead_letters.models import RejectedEventPage, RejectedEventView
from common.domain.outcomes import Reason
from common.reads.models import MovementPage, MovementStatus, StockPage
from common.reads.stock_and_movements import list_movements, list_stock
from common.reads.warehouse_stock import BeforeRetainedLog, stock_as_of
from functions.http.docs import doc, invalid_example
from functions.http.errors import ErrorBody, InvalidRequest, error_response, invalid_parameter
from functions.http.guards import require_operator

STOCK_LIST_PATH = "/api/v1/warehouse/{warehouse_id}/products"
MOVEMENTS_PATH = "/api/v1/movements"
REJECTED_PATH = "/api/v1/rejected-events"
REJECTED_ONE_PATH = "/api/v1/rejected-events/{rejected_event_id}"

router = APIRouter()

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="`next_cursor` of the previous page; omit for the first page."),
]

# Issue 15: stock as of a past time, from the event log.
AsOf = Annotated[
    datetime | None,
    Query(
        description=(
            "ISO-8601 time (no offset means UTC). The stock as of that time: for each product, the "
            "quantities of its arrivals minus those of its departures in this warehouse, over the "
            "events applied at or before it (`received_at`, the start of the applying transaction). "
            "Products with no such event are left out; `updated_at` is when the last of them was "
            "applied. Computed from the event log plus the opening balance its retention "
            "(EVENT_LOG_RETENTION_DAYS) folded old events into; a time before that fold is refused (422)."
        ),
        examples=["2025-02-18T14:00:00Z"],
    ),
]

_INVALID: dict[int | str, dict[str, Any]] = {
    422: doc(
        InvalidRequest,
        "A parameter is invalid: not a UUID, a limit outside 1..500, a cursor not from this list, "
        "or an `as_of` that is not an ISO-8601 time.",
        invalid_example("cursor", "not a cursor returned by this list", "value_error"),
    )
}

P = TypeVar("P", bound=BaseModel)


def _page(query: Callable[[psycopg.Connection], P]) -> Response:
    """Run one page query on a pooled connection; a foreign cursor is the client's error (422)."""
    try:
        with get_pool().connection() as conn:
            page = query(conn)
    except BadCursor as exc:
        raise invalid_parameter("cursor", "query", str(exc)) from None
    return Response(page.model_dump_json(), media_type="application/json")


@router.get(
    STOCK_LIST_PATH,
    tags=["stock"],
    summary="Stock of every product of a warehouse",
    response_model=StockPage,
    responses=_INVALID,
)
def list_warehouse_stock(
    warehouse_id: UUID, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None, as_of: AsOf = None
) -> Response:
    """Products an applied event has touched in this warehouse, by product id.

    With `as_of`, the stock as it was at that time, computed from the event log (see `as_of`).
    """
    if as_of is not None:  # issue 15: stock as of a past time
        at = as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=UTC)
        try:
            return _page(lambda conn: stock_as_of(conn, warehouse_id, at, limit=limit, cursor=cursor))
        except BeforeRetainedLog as exc:
            raise invalid_parameter("as_of", "query", str(exc)) from None
    return _page(lambda conn: list_stock(conn, warehouse_id, limit=limit, cursor=cursor))


@router.get(
    MOVEMENTS_PATH,
    tags=["movements"],
    summary="Movements, filtered",
    response_model=MovementPage,
    responses=_INVALID,
)
def list_all_movements(
    status: Annotated[MovementStatus | None, Query(description="Only movements in this state.")] = None,
    warehouse_id: Annotated[UUID | None, Query(description="Source or destination warehouse.")] = None,
    product_id: Annotated[UUID | None, Query(description="Only movements of this product.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """Movements matching every filter given, by movement id."""
    return _page(
        lambda conn: list_movements(
            conn, status=status, warehouse_id=warehouse_id, product_id=product_id, limit=limit, cursor=cursor
        )
    )


_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: doc(
        ErrorBody,
        "An operator route: `Authorization: Bearer <operator token>` is missing or wrong (OPERATOR_AUTH="
        "token), or in AWS the request did not pass the API Gateway's authorizer. Checked before anything "
        "else. The webhook's token is never accepted here.",
        {"detail": "missing or wrong bearer token"},
    )
}


@router.get(
    REJECTED_PATH,
    tags=["dead letters"],
    summary="Rejected events (the dead-letter store)",
    response_model=RejectedEventPage,
    responses={**_UNAUTHORIZED, **_INVALID},
    dependencies=[Depends(require_operator)],
)
def list_dead_letters(
    reason: Annotated[Reason | None, Query(description="Only dead letters refused for this reason.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """Every refused event, oldest first, with the first 4 KiB of its raw payload (text, or base64 when
    not UTF-8) and the link to the whole one; a page ends early at about 1 MiB."""
    return _page(lambda conn: dead_letters.list_page(conn, reason=reason, limit=limit, cursor=cursor))


@router.get(
    REJECTED_ONE_PATH,
    tags=["dead letters"],
    summary="One rejected event, with its whole raw payload",
    response_model=RejectedEventView,
    responses={
        **_UNAUTHORIZED,
        404: doc(ErrorBody, "No dead letter has this id.", {"detail": "rejected event 42 not found"}),
        422: doc(
            InvalidRequest,
            "The id is not a positive integer.",
            invalid_example(
                "rejected_event_id", "Input should be greater than or equal to 1", "greater_than_equal"
            ),
        ),
    },
    dependencies=[Depends(require_operator)],
)
async def get_dead_letter(
    request: Request, rejected_event_id: Annotated[int, Path(ge=1, le=dead_letters.MAX_ID)]
) -> Response:
    """The dead letter with its whole raw payload (base64 when not UTF-8, or when its escaped text would
    be over 2 MiB of JSON)."""
    view = await run_in_threadpool(_one, rejected_event_id)
    if view is None:
        return error_response(404, f"rejected event {rejected_event_id} not found", request=request)
    return Response(view.model_dump_json(), media_type="application/json")


def _one(rejected_event_id: int) -> RejectedEventView | None:
    with get_pool().connection() as conn:
        return dead_letters.get_one(conn, rejected_event_id)
