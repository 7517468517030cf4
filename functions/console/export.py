"""CSV downloads of every console list and report: the same filters as the page, every row.

Under /ui/export/ (each a route of its own in template.yaml); the dead letters' CSV, an operator
route like their rows, is /ui/dead-letters/export.

Written by common.reads.export (UTF-8 with a byte-order mark, so spreadsheet software reads
Cyrillic right; cells a spreadsheet would run as formulas kept as text), with what the console adds:
column names in the operator's language, warehouse codes beside ids, times ISO 8601 in the
operator's zone with the offset, numbers bare, and the delimiter a Russian spreadsheet expects
(`;`, where `,` is the decimal separator). Streamed: each page of the list function is read on a
pooled connection, written and dropped, so an export of 100,000 rows never sits in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from common.adapters.cursor import BadCursor
from common.adapters.db import get_pool
from common.dead_letters import store as dead_letter_store
from common.reads import losses as routes_report
from common.reads import movements as movement_reads
from common.reads import stock as stock_reads
from common.reads.export import CSV_MEDIA_TYPE, EXPORT_PAGE, rows_csv
from common.reads.stock import BeforeRetainedLog
from common.reads.warehouses import codes_for, directory
from functions.console.i18n import Locale, locale_of
from functions.console.pages.dead_letters import (
    DEAD_LETTER_EXPORT_PATH,
    dead_letter_filters,
    dead_letter_source,
    dead_letter_state,
)
from functions.console.pages.losses import losses_filters
from functions.console.pages.movements import movement_filters
from functions.console.pages.params import BadParameter, local_time, parse_uuid
from functions.console.pages.rendering import render
from functions.console.pages.warehouses import product_range_of
from functions.http.guards import require_operator

router = APIRouter(include_in_schema=False)

Rows = Callable[[Locale], Iterable[list[Any]]]


def _delimiter(locale: Locale) -> str:
    return ";" if locale.lang == "ru" else ","


def _rows_csv(locale: Locale, header: list[str], rows: Iterable[list[Any]]) -> Iterator[bytes]:
    return rows_csv(header, rows, delimiter=_delimiter(locale))


def csv_response(
    request: Request,
    name: str,
    header_keys: list[str],
    rows: Rows,
    check: Callable[[psycopg.Connection], Any],
) -> StreamingResponse | HTMLResponse:
    """`check` validates the filters first (a bad one is the page's 422, not a broken download)."""
    locale = locale_of(request)
    try:
        with get_pool().connection() as conn:
            check(conn)
    except BadParameter as exc:
        return render(
            request, "error.html", 422, title=locale.t("title.invalid"), field=exc.field, message=exc.message
        )
    except (BadCursor, BeforeRetainedLog) as exc:
        return render(
            request, "error.html", 422, title=locale.t("title.invalid"), field=None, message=str(exc)
        )
    header = [locale.t(k) for k in header_keys]
    stamp = datetime.now(locale.zone).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        _rows_csv(locale, header, rows(locale)),
        media_type=CSV_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{name}-{stamp}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _pages(fetch: Callable[[psycopg.Connection, str | None], Any]) -> Iterator[Any]:
    """Every page of a cursor-paginated list, each read on a pooled connection of its own."""
    cursor: str | None = None
    while True:
        with get_pool().connection() as conn:
            result = fetch(conn, cursor)
        yield result
        cursor = result.next_cursor
        if not cursor:
            return


def _code(codes: dict[UUID, str], warehouse_id: UUID | None) -> str:
    return codes.get(warehouse_id, "") if warehouse_id is not None else ""


def _id(value: object) -> str:
    return "" if value is None else str(value)


@router.get("/ui/export/warehouses", response_model=None)
def warehouses_csv(request: Request) -> StreamingResponse | HTMLResponse:
    def rows(locale: Locale) -> Iterator[list[Any]]:
        with get_pool().connection() as conn:
            entries = directory(conn)
        for e in entries:
            codes = ", ".join(c.code for c in e.codes)
            yield [e.code or "", codes, e.warehouse_id, e.products, e.units, locale.iso(e.updated_at)]

    header = ["col.code", "col.codes", "col.warehouse_id", "col.products", "col.units", "col.last_change"]
    return csv_response(request, "warehouses", header, rows, lambda conn: None)


@router.get("/ui/export/warehouses/{warehouse_id}", response_model=None)
def warehouse_csv(request: Request, warehouse_id: str) -> StreamingResponse | HTMLResponse:
    params = request.query_params
    found: dict[str, Any] = {}

    def check(conn: psycopg.Connection) -> None:
        found["wid"] = parse_uuid("warehouse_id", warehouse_id)
        found["range"] = product_range_of(params.get("q", "").strip())
        found["as_of"] = local_time(locale_of(request), "as_of", params.get("as_of"))
        stock_reads.warehouse_stock(conn, found["wid"], as_of=found["as_of"], limit=1)  # before the log?

    def rows(locale: Locale) -> Iterator[list[Any]]:
        for result in _pages(
            lambda conn, cursor: stock_reads.warehouse_stock(
                conn,
                found["wid"],
                as_of=found["as_of"],
                product_range=found["range"],
                limit=EXPORT_PAGE,
                cursor=cursor,
            )
        ):
            code = result.warehouse_codes.get(found["wid"], "")
            for s in result.items:
                yield [code, found["wid"], s.product_id, s.quantity, locale.iso(s.updated_at)]

    header = ["col.code", "col.warehouse_id", "col.product", "col.quantity", "col.updated"]
    return csv_response(request, "stock-" + warehouse_id[:8], header, rows, check)


@router.get("/ui/export/movements", response_model=None)
def movements_csv(request: Request) -> StreamingResponse | HTMLResponse:
    params = request.query_params
    found: dict[str, Any] = {}

    def check(conn: psycopg.Connection) -> None:
        found.update(movement_filters(conn, params))

    def rows(locale: Locale) -> Iterator[list[Any]]:
        f = found
        for result in _pages(
            lambda conn, cursor: movement_reads.list_movements(
                conn,
                status=f["status"] if f["older_than"] is None else None,
                warehouse_id=f["warehouse_id"],
                older_than=f["older_than"],
                limit=EXPORT_PAGE,
                cursor=cursor,
            )
        ):
            codes = result.warehouse_codes
            for m in result.items:
                yield [
                    m.movement_id,
                    m.status,
                    m.product_id,
                    _code(codes, m.source_warehouse_id),
                    _id(m.source_warehouse_id),
                    _code(codes, m.destination_warehouse_id),
                    _id(m.destination_warehouse_id),
                    locale.iso(m.departed_at),
                    locale.iso(m.arrived_at),
                    _id(m.departed_quantity),
                    _id(m.arrived_quantity),
                    _id(m.quantity_difference),
                    _id(m.transit_seconds),
                ]

    header = [
        "col.movement",
        "col.state",
        "col.product",
        "col.from",
        "col.warehouse_id",
        "col.to",
        "col.warehouse_id",
        "col.departed",
        "col.arrived",
        "col.departed_qty",
        "col.arrived_qty",
        "col.difference",
        "col.transit",
    ]
    return csv_response(request, "movements", header, rows, check)


@router.get("/ui/export/losses", response_model=None)
def losses_csv(request: Request) -> StreamingResponse | HTMLResponse:
    found: dict[str, Any] = {}

    def check(conn: psycopg.Connection) -> None:
        found["f"] = losses_filters(locale_of(request), request.query_params)

    def rows(locale: Locale) -> Iterator[list[Any]]:
        since, until, limit = found["f"]
        with get_pool().connection() as conn:
            report = routes_report.routes_report(conn, since=since, until=until, limit=limit)
            codes = codes_for(
                conn, [w for r in report.items for w in (r.source_warehouse_id, r.destination_warehouse_id)]
            )
        for r in report.items:
            yield [
                _code(codes, r.source_warehouse_id),
                r.source_warehouse_id,
                _code(codes, r.destination_warehouse_id),
                r.destination_warehouse_id,
                r.movements,
                r.movements_with_loss,
                r.units_departed,
                r.units_arrived,
                r.units_lost,
                f"{r.loss_rate:.6f}".replace(".", "," if locale.lang == "ru" else "."),
                _id(r.transit_p50_seconds),
                _id(r.transit_p95_seconds),
                _id(r.transit_max_seconds),
            ]

    header = [
        "col.from",
        "col.warehouse_id",
        "col.to",
        "col.warehouse_id",
        "col.movements",
        "col.with_loss",
        "col.units_departed",
        "col.units_arrived",
        "col.units_lost",
        "col.loss_rate",
        "col.transit_p50",
        "col.transit_p95",
        "col.transit_max",
    ]
    return csv_response(request, "losses", header, rows, check)


@router.get("/ui/export/products/{product_id}", response_model=None)
def product_csv(request: Request, product_id: str) -> StreamingResponse | HTMLResponse:
    found: dict[str, Any] = {}

    def check(conn: psycopg.Connection) -> None:
        found["pid"] = parse_uuid("product_id", product_id)

    def rows(locale: Locale) -> Iterator[list[Any]]:
        with get_pool().connection() as conn:
            stock = stock_reads.product_stock(conn, found["pid"], in_transit_limit=100_000)
        if stock is None:
            return
        for w in stock.warehouses:
            yield [
                found["pid"],
                locale.t("product.on_hand"),
                w.warehouse_code or "",
                w.warehouse_id,
                "",
                w.quantity,
                locale.iso(w.updated_at),
            ]
        for m in stock.in_transit:
            yield [
                found["pid"],
                locale.t("product.in_transit"),
                m.source_warehouse_code or "",
                _id(m.source_warehouse_id),
                m.movement_id,
                m.quantity,
                locale.iso(m.departed_at),
            ]

    header = [
        "col.product",
        "col.state",
        "col.code",
        "col.warehouse_id",
        "col.movement",
        "col.quantity",
        "col.updated",
    ]
    return csv_response(request, "product-" + product_id[:8], header, rows, check)


@router.get(DEAD_LETTER_EXPORT_PATH, response_model=None, dependencies=[Depends(require_operator)])
def dead_letters_csv(request: Request) -> StreamingResponse | HTMLResponse:
    """An operator route, like the rows: the page's script downloads it with the bearer token."""
    found: dict[str, Any] = {}

    def check(conn: psycopg.Connection) -> None:
        found.update(dead_letter_filters(request.query_params))

    def rows(locale: Locale) -> Iterator[list[Any]]:
        f = found
        for result in _pages(
            lambda conn, cursor: dead_letter_store.list_page(
                conn,
                reason=f["reason"],
                unresolved=f["unresolved"],
                movement_id=f["movement_id"],
                order="newest",
                limit=EXPORT_PAGE,
                cursor=cursor,
            )
        ):
            for d in result.items:
                yield [
                    d.id,
                    d.reason,
                    locale.iso(d.received_at),
                    dead_letter_source(d),
                    _id(d.movement_id),
                    d.event or "",
                    dead_letter_state(locale, d),
                    d.detail,
                    d.raw_payload,
                ]

    header = [
        "col.id",
        "col.reason",
        "col.received",
        "col.source",
        "col.movement",
        "col.event",
        "col.state",
        "col.detail",
        "col.payload",
    ]
    return csv_response(request, "dead-letters", header, rows, check)
