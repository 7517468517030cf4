"""Losses per route over an arrival-time window."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from common.reads import losses as routes_report
from common.reads.warehouses import codes_for
from functions.console.i18n import Locale
from functions.console.pages.params import BadParameter, local_input, local_time, parse_limit
from functions.console.pages.rendering import export_url, page

router = APIRouter(include_in_schema=False)


@router.get("/ui/losses", response_class=HTMLResponse)
def losses(request: Request) -> HTMLResponse:
    """Per route: delivered movements, units lost, transit p50/p95, over an arrival-time window."""
    params = request.query_params

    def build(conn: psycopg.Connection, locale: Locale) -> dict[str, Any]:
        since, until, limit = losses_filters(locale, params)
        report = routes_report.routes_report(conn, since=since, until=until, limit=limit)
        ids = [w for r in report.items for w in (r.source_warehouse_id, r.destination_warehouse_id)]
        return {
            "title": locale.t("title.losses"),
            "nav": "losses",
            "report": report,
            "codes": codes_for(conn, ids),
            "from_input": local_input(locale, since),
            "to_input": local_input(locale, until),
            "limit": limit,
            "export_url": export_url(request, "/ui/export/losses", drop=()),
        }

    return page(request, "losses.html", build)


def losses_filters(locale: Locale, params: Any) -> tuple[datetime | None, datetime | None, int]:
    since = local_time(locale, "from", params.get("from"))
    until = local_time(locale, "to", params.get("to"))
    if since is not None and until is not None and until <= since:
        raise BadParameter("to", "must be later than from")
    limit = parse_limit(params.get("limit"), default=100, most=routes_report.MAX_ROUTES)
    return since, until, limit
