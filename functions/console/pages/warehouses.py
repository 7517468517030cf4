"""The warehouse directory, one warehouse's stock, one product across warehouses; the warehouse filter
the other lists take (a code or an id).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from common.reads import stock as stock_reads
from common.reads.models import WarehouseEntry
from common.reads.warehouses import MAX_WAREHOUSES, by_code, codes_for, directory, directory_entry
from functions.console.i18n import Locale
from functions.console.pages.params import (
    BadParameter,
    local_input,
    local_time,
    parse_cursor,
    parse_limit,
    parse_uuid,
)
from functions.console.pages.rendering import export_url, page

router = APIRouter(include_in_schema=False)


def code_notes(locale: Locale, entries: list[WarehouseEntry]) -> list[str]:
    """What the directory shows and no page may hide: a code that changed, a code two warehouses claim."""
    notes = []
    for e in entries:
        if len(e.codes) > 1:
            notes.append(
                locale.t(
                    "warehouses.code_changed", id=e.warehouse_id, codes=", ".join(c.code for c in e.codes)
                )
            )
        if e.code_shared_with:
            ids = ", ".join(str(i) for i in [e.warehouse_id, *e.code_shared_with])
            notes.append(locale.t("warehouses.code_shared", code=e.code, ids=ids))
    return notes


@router.get("/ui/warehouses", response_class=HTMLResponse)
def warehouse_list(request: Request) -> HTMLResponse:
    def build(conn: psycopg.Connection, locale: Locale) -> dict[str, Any]:
        rows = directory(conn)
        return {
            "title": locale.t("title.warehouses"),
            "nav": "warehouses",
            "warehouses": rows,
            "max_rows": MAX_WAREHOUSES,
            "codes": {w.warehouse_id: w.code for w in rows if w.code},
            "code_notes": code_notes(locale, rows),
            "export_url": export_url(request, "/ui/export/warehouses"),
        }

    return page(request, "warehouses.html", build)


def product_range_of(query: str) -> tuple[UUID, UUID] | None:
    try:
        return stock_reads.product_prefix_range(query)
    except ValueError as exc:
        raise BadParameter("q", str(exc)) from None


@router.get("/ui/warehouses/{warehouse_id}", response_class=HTMLResponse)
def warehouse(request: Request, warehouse_id: str) -> HTMLResponse:
    """The warehouse's stock, every product, searchable by id prefix, paginated, optionally as of
    a past time; each product with its last movements here."""
    params = request.query_params

    def build(conn: psycopg.Connection, locale: Locale) -> dict[str, Any]:
        wid = parse_uuid("warehouse_id", warehouse_id)
        query = params.get("q", "").strip()
        product_range = product_range_of(query)
        as_of = local_time(locale, "as_of", params.get("as_of"))
        limit = parse_limit(params.get("limit"))
        cursor = parse_cursor(params.get("cursor"))
        stock = stock_reads.warehouse_stock(
            conn, wid, as_of=as_of, product_range=product_range, limit=limit, cursor=cursor
        )
        movements = stock_reads.last_movements(conn, wid, [s.product_id for s in stock.items])
        ids = [wid, *(mv.other_warehouse_id for moves in movements.values() for mv in moves)]
        codes = codes_for(conn, ids)
        return {
            "title": locale.t("title.warehouse", code=codes.get(wid) or wid),
            "nav": "warehouses",
            "warehouse_id": wid,
            "totals": stock_reads.warehouse_totals(conn, wid),
            "stock": stock,
            "movements": movements,
            "codes": codes,
            "code_notes": code_notes(locale, [e for e in [directory_entry(conn, wid)] if e is not None]),
            "q": query,
            "as_of": as_of,
            "as_of_input": local_input(locale, as_of),
            "limit": limit,
            "first_page": cursor is None,
            "export_url": export_url(request, f"/ui/export/warehouses/{wid}"),
        }

    return page(request, "warehouse.html", build)


def warehouse_param(conn: psycopg.Connection, text: str) -> UUID | None:
    """A warehouse filter typed as a code (any case) or an id."""
    text = text.strip()
    if not text:
        return None
    try:
        return UUID(text)
    except ValueError:
        pass
    exact = [w for w, code in by_code(conn, text) if code.lower() == text.lower()]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise BadParameter("warehouse", f"code {text} is claimed by more than one warehouse: type the id")
    raise BadParameter("warehouse", f"no warehouse has the code {text}")


@router.get("/ui/products/{product_id}", response_class=HTMLResponse)
def product(request: Request, product_id: str) -> HTMLResponse:
    """Where a product is: on hand per warehouse, in transit, the total."""

    def build(conn: psycopg.Connection, locale: Locale) -> dict[str, Any]:
        pid = parse_uuid("product_id", product_id)
        stock = stock_reads.product_stock(conn, pid)
        if stock is None:
            return {"not_found": locale.t("product.empty")}
        codes = {w.warehouse_id: w.warehouse_code for w in stock.warehouses if w.warehouse_code}
        codes.update(
            {
                m.source_warehouse_id: m.source_warehouse_code
                for m in stock.in_transit
                if m.source_warehouse_id and m.source_warehouse_code
            }
        )
        return {
            "title": locale.t("title.product", id=pid),
            "nav": None,
            "product_id": pid,
            "stock": stock,
            "codes": codes,
            "export_url": f"/ui/export/products/{pid}",
        }

    return page(request, "product.html", build)
