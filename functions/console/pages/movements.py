"""Movements by state (in transit first) and one movement with both halves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from common.reads import movements as movement_reads
from common.reads.warehouses import codes_for
from functions.console.i18n import Locale
from functions.console.pages.params import BadParameter, parse_cursor, parse_limit, parse_uuid
from functions.console.pages.rendering import export_url, page
from functions.console.pages.warehouses import warehouse_param

MOVEMENT_STATUSES = ("in_transit", "delivered", "arrival_only")
DEFAULT_STUCK = "1h"

router = APIRouter(include_in_schema=False)


def movement_filters(conn: psycopg.Connection, params: Any) -> dict[str, Any]:
    status = params.get("status") or "in_transit"
    if status not in MOVEMENT_STATUSES:
        raise BadParameter("status", "one of " + ", ".join(MOVEMENT_STATUSES))
    older_than_text = params.get("older_than", "").strip()
    older_than: timedelta | None = None
    if older_than_text:
        if status != "in_transit":
            raise BadParameter("older_than", "applies to movements in transit only")
        try:
            older_than = movement_reads.parse_duration(older_than_text)
        except ValueError as exc:
            raise BadParameter("older_than", str(exc)) from None
    elif status == "in_transit":
        older_than = timedelta(0)  # in transit: oldest departure first
    warehouse_text = params.get("warehouse", "").strip() or params.get("warehouse_id", "").strip()
    return {
        "status": status,
        "older_than_text": older_than_text,
        "older_than": older_than,
        "warehouse_text": warehouse_text,
        "warehouse_id": warehouse_param(conn, warehouse_text),
    }


@router.get("/ui/movements", response_class=HTMLResponse)
def movements(request: Request) -> HTMLResponse:
    """Movements by state; in transit (the default) oldest first, with `older_than` (e.g. 2h) and a
    warehouse (code or id: from or to it)."""
    params = request.query_params

    def build(conn: psycopg.Connection, locale: Locale) -> dict[str, Any]:
        f = movement_filters(conn, params)
        limit = parse_limit(params.get("limit"))
        cursor = parse_cursor(params.get("cursor"))
        result = movement_reads.list_movements(
            conn,
            status=f["status"] if f["older_than"] is None else None,
            warehouse_id=f["warehouse_id"],
            older_than=f["older_than"],
            limit=limit,
            cursor=cursor,
        )
        total = None
        if f["status"] == "in_transit":
            count, units = movement_reads.in_transit_totals(
                conn, warehouse_id=f["warehouse_id"], older_than=f["older_than"]
            )
            total = {"movements": count, "units": units}
        row = conn.execute("SELECT now()").fetchone()
        codes = dict(result.warehouse_codes)
        if f["warehouse_id"] is not None:
            codes.update(codes_for(conn, [f["warehouse_id"]]))
        return {
            "title": locale.t("movements.heading." + f["status"]),
            "nav": "movements",
            "status": f["status"],
            "statuses": MOVEMENT_STATUSES,
            "older_than": f["older_than_text"],
            "warehouse_text": f["warehouse_text"],
            "warehouse_id": f["warehouse_id"],
            "default_stuck": DEFAULT_STUCK,
            "page": result,
            "total": total,
            "codes": codes,
            "now": row[0] if row else datetime.now(UTC),
            "limit": limit,
            "first_page": cursor is None,
            "export_url": export_url(request, "/ui/export/movements"),
        }

    return page(request, "movements.html", build)


@router.get("/ui/movements/{movement_id}", response_class=HTMLResponse)
def movement(request: Request, movement_id: str) -> HTMLResponse:
    """Both halves side by side, transit time, quantity difference, the events and dead letters."""

    def build(conn: psycopg.Connection, locale: Locale) -> dict[str, Any]:
        mid = parse_uuid("movement_id", movement_id)
        detail = movement_reads.movement_detail(conn, mid)
        if detail is None:
            return {"not_found": locale.t("error.unknown_movement", id=mid)}
        m = detail.movement
        codes = codes_for(
            conn,
            [m.source_warehouse_id, m.destination_warehouse_id, *(e.warehouse_id for e in detail.events)],
        )
        return {
            "title": locale.t("title.movement", id=mid),
            "nav": "movements",
            "detail": detail,
            "m": m,
            "codes": codes,
        }

    return page(request, "movement.html", build)
