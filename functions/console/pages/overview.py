"""The overview (/ui/) and the redirect to it from /ui."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from common.reads import summary as reports
from functions.console.api import in_lambda
from functions.console.i18n import Locale
from functions.console.pages.rendering import page

router = APIRouter(include_in_schema=False)


@router.get("/ui/", response_class=HTMLResponse)
def overview(request: Request) -> HTMLResponse:
    """Events per minute, poller lag, dead letters, warehouses and products, movements in transit."""

    def build(conn: psycopg.Connection, locale: Locale) -> dict[str, Any]:
        summary = reports.summary(conn, in_lambda=in_lambda())
        series: dict[str, list[int]] = {
            "t": [int(m.minute.timestamp()) for m in summary.events_per_minute],
            **{o: [getattr(m, o) for m in summary.events_per_minute] for o in reports.OUTCOMES},
        }
        return {
            "title": locale.t("title.overview"),
            "nav": "overview",
            "summary": summary,
            "series": series,
            "codes": summary.warehouse_codes,
        }

    return page(request, "overview.html", build)


@router.get("/ui")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=308)
