"""The paginated lists: a warehouse's stock, movements by filter, and the dead-letter store; a
product across warehouses, the warehouse directory and the header search (issue 23).

Every list answers `{"items": [...], "next_cursor": str | null}`; pass `next_cursor` back as
`cursor` for the next page until it is null. Lists are read straight from PostgreSQL (no cache):
they are operator tools, not the hot path. Each list is the one query its concept owns
(`common.reads.stock.warehouse_stock`, `common.reads.movements.list_movements`,
`common.dead_letters.store.list_page`): the console's pages call the same functions. Every list
also answers CSV (`format=csv` or `Accept: text/csv`): every page with the same filters.

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
from common.reads.export import EXPORT_PAGE, export_items, export_pages
from common.reads.models import (
    MovementPage,
    MovementStatus,
    MovementView,
    ProductStock,
    SearchResult,
    StockPage,
    StockView,
    WarehouseDirectory,
    WarehouseEntry,
    answer_json,
)
from common.reads.movements import list_movements, parse_duration
from common.reads.search import search
from common.reads.stock import (
    BeforeRetainedLog,
    nowhere,
    product_prefix_range,
    product_stock,
    warehouse_stock,
)
from common.reads.warehouses import directory
from functions.http.docs import doc, invalid_example
from functions.http.errors import ErrorBody, InvalidRequest, error_response, invalid_parameter
from functions.http.export import CSV_RESPONSE, Format, csv_download, wants_csv
from functions.http.guards import require_operator

STOCK_LIST_PATH = "/api/v1/warehouse/{warehouse_id}/products"
MOVEMENTS_PATH = "/api/v1/movements"
REJECTED_PATH = "/api/v1/rejected-events"
REJECTED_ONE_PATH = "/api/v1/rejected-events/{rejected_event_id}"
PRODUCT_STOCK_PATH = "/api/v1/products/{product_id}/stock"
WAREHOUSES_PATH = "/api/v1/warehouses"
SEARCH_PATH = "/api/v1/search"

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
    return Response(answer_json(page), media_type="application/json")


def _csv(
    fetch: Callable[[psycopg.Connection, str | None], Any], model: type[BaseModel], name: str
) -> Response:
    """Every page of a list as one streamed CSV download (the first page read before answering)."""
    return csv_download(export_pages(get_pool().connection, fetch, model), name)


@router.get(
    STOCK_LIST_PATH,
    tags=["stock"],
    summary="Stock of every product of a warehouse",
    response_model=StockPage,
    responses={**_INVALID, **CSV_RESPONSE},
)
def list_warehouse_stock(
    request: Request,
    warehouse_id: UUID,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    as_of: AsOf = None,
    q: Annotated[
        str, Query(max_length=40, description="Only products whose id starts with these hexadecimal digits.")
    ] = "",
    format: Format = None,
) -> Response:
    """Products an applied event has touched in this warehouse, by product id.

    With `as_of`, the stock as it was at that time, computed from the event log (see `as_of`).
    """
    at = None if as_of is None else (as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=UTC))
    try:
        product_range = product_prefix_range(q)
    except ValueError as exc:
        raise invalid_parameter("q", "query", str(exc)) from None

    def fetch(conn: psycopg.Connection, after: str | None, n: int = limit) -> StockPage:
        return warehouse_stock(
            conn, warehouse_id, as_of=at, product_range=product_range, limit=n, cursor=after
        )

    try:
        if wants_csv(request, format):
            return _csv(
                lambda conn, after: fetch(conn, after, EXPORT_PAGE), StockView, f"stock-{warehouse_id}"
            )
        return _page(lambda conn: fetch(conn, cursor))
    except BeforeRetainedLog as exc:
        raise invalid_parameter("as_of", "query", str(exc)) from None


@router.get(
    MOVEMENTS_PATH,
    tags=["movements"],
    summary="Movements, filtered",
    response_model=MovementPage,
    responses={**_INVALID, **CSV_RESPONSE},
)
def list_all_movements(
    request: Request,
    status: Annotated[MovementStatus | None, Query(description="Only movements in this state.")] = None,
    warehouse_id: Annotated[UUID | None, Query(description="Source or destination warehouse.")] = None,
    product_id: Annotated[UUID | None, Query(description="Only movements of this product.")] = None,
    older_than: Annotated[
        str | None,
        Query(
            max_length=20,
            description="Only movements in transit that departed longer ago than this (`90s`, `15m`, `2h`, "
            "`3d`): the stuck ones, oldest departure first.",
        ),
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    format: Format = None,
) -> Response:
    """Movements matching every filter given, by movement id (with `older_than`: by departure)."""
    age = None
    if older_than:
        try:
            age = parse_duration(older_than)
        except ValueError as exc:
            raise invalid_parameter("older_than", "query", str(exc)) from None
        if status not in (None, "in_transit"):
            raise invalid_parameter("older_than", "query", "applies to movements in transit only")

    def fetch(conn: psycopg.Connection, after: str | None, n: int = limit) -> MovementPage:
        return list_movements(
            conn, status=status, warehouse_id=warehouse_id, product_id=product_id, older_than=age,
            limit=n, cursor=after,
        )  # fmt: skip

    if wants_csv(request, format):
        return _csv(lambda conn, after: fetch(conn, after, EXPORT_PAGE), MovementView, "movements")
    return _page(lambda conn: fetch(conn, cursor))


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
    responses={**_UNAUTHORIZED, **_INVALID, **CSV_RESPONSE},
    dependencies=[Depends(require_operator)],
)
def list_dead_letters(
    request: Request,
    reason: Annotated[Reason | None, Query(description="Only dead letters refused for this reason.")] = None,
    unresolved: Annotated[
        bool, Query(description="Only those no replay applied and no operator resolved.")
    ] = False,
    movement_id: Annotated[UUID | None, Query(description="Only dead letters of this movement.")] = None,
    order: Annotated[
        dead_letters.Order, Query(description="`oldest` first (default) or `newest`.")
    ] = "oldest",
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    format: Format = None,
) -> Response:
    """Every refused event, oldest first, with the first 4 KiB of its raw payload (text, or base64 when
    not UTF-8) and the link to the whole one; a page ends early at about 1 MiB."""

    def fetch(conn: psycopg.Connection, after: str | None, n: int = limit) -> RejectedEventPage:
        return dead_letters.list_page(
            conn, reason=reason, unresolved=unresolved, movement_id=movement_id, order=order, limit=n,
            cursor=after,
        )  # fmt: skip

    if wants_csv(request, format):
        return _csv(lambda conn, after: fetch(conn, after, EXPORT_PAGE), RejectedEventView, "dead-letters")
    return _page(lambda conn: fetch(conn, cursor))


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


# --- issue 23: a product everywhere, the warehouse directory, the search --------------------------


@router.get(
    PRODUCT_STOCK_PATH,
    tags=["stock"],
    summary="A product in every warehouse and in transit",
    response_model=ProductStock,
    responses={
        422: doc(
            InvalidRequest,
            "The product id is not a UUID.",
            invalid_example("product_id", "Input should be a valid UUID", "uuid_parsing"),
        ),
    },
)
def get_product_stock(product_id: UUID) -> Response:
    """On hand per warehouse (with each warehouse's code), the movements of it in transit (departed,
    not arrived: listed oldest first, at most 100, all counted and summed) and the total of both. A
    product no applied event named is nowhere: empty lists, total 0."""
    with get_pool().connection() as conn:
        found = product_stock(conn, product_id) or nowhere(product_id)
    return Response(found.model_dump_json(), media_type="application/json")


@router.get(
    WAREHOUSES_PATH,
    tags=["stock"],
    summary="The warehouse directory: codes learnt from events",
    response_model=WarehouseDirectory,
    responses={
        **CSV_RESPONSE,
        422: doc(
            InvalidRequest,
            "`format` is neither json nor csv.",
            invalid_example("format", "Input should be 'json' or 'csv'", "literal_error"),
        ),
    },
)
def list_warehouses(request: Request, format: Format = None) -> Response:
    """Every warehouse with stock or a known code, most recently updated first: the code last seen
    in its events' `source` (else `subject`), every code it was seen with (more than one: it
    changed), and the other warehouses seen with the same code (two claiming one code)."""
    with get_pool().connection() as conn:
        items = directory(conn)
    if wants_csv(request, format):
        return csv_download(export_items(WarehouseEntry, items, {}), "warehouses")
    return Response(WarehouseDirectory(items=items).model_dump_json(), media_type="application/json")


@router.get(
    SEARCH_PATH,
    tags=["stock"],
    summary="Find warehouses, products, movements",
    response_model=SearchResult,
    responses={
        422: doc(
            InvalidRequest,
            "`q` is missing, empty or over 100 characters.",
            invalid_example("q", "Field required", "missing"),
        )
    },
)
def find(
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=100,
            description="A warehouse code or its start (any case), or an id or its first 4+ hex digits.",
        ),
    ],
) -> Response:
    """Warehouses by code, then warehouses, products and movements by whole id or id prefix."""
    with get_pool().connection() as conn:
        result = search(conn, q)
    return Response(result.model_dump_json(), media_type="application/json")
