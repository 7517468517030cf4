"""The language and time-zone switch, kept in cookies."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from functions.console.i18n import (
    AUTO,
    BROWSER_TZ_COOKIE,
    COOKIE_MAX_AGE,
    LANG_COOKIE,
    LANGUAGES,
    TZ_COOKIE,
    locale_of,
    zone,
    zone_choices,
)
from functions.console.pages.rendering import render

router = APIRouter(include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Back to a console page only (never to another site)."""
    if value and value.startswith("/ui") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/"


@router.get("/ui/settings", response_model=None)
def settings(request: Request) -> HTMLResponse | RedirectResponse:
    """The language and time-zone switch: with `lang` or `tz`, kept in cookies, back to `next`."""
    params = request.query_params
    lang, tz = params.get("lang"), params.get("tz")
    if lang is None and tz is None:
        locale = locale_of(request)
        return render(
            request,
            "settings.html",
            title=locale.t("title.settings"),
            next=_safe_next(params.get("next")),
            zones=zone_choices(),
            browser_zone=request.cookies.get(BROWSER_TZ_COOKIE, ""),
        )
    response = RedirectResponse(_safe_next(params.get("next")), status_code=303)
    cookie = {"max_age": COOKIE_MAX_AGE, "path": "/", "samesite": "lax", "httponly": True}
    if lang is not None:
        if lang not in LANGUAGES:
            return render(
                request, "error.html", 422, title="Invalid request", field="lang", message="ru or en"
            )
        response.set_cookie(LANG_COOKIE, lang, **cookie)  # type: ignore[arg-type]
    if tz is not None:
        if tz != AUTO and zone(tz) is None:
            return render(
                request,
                "error.html",
                422,
                title="Invalid request",
                field="tz",
                message="a time zone name, UTC or auto",
            )
        response.set_cookie(TZ_COOKIE, tz, **cookie)  # type: ignore[arg-type]
    return response
