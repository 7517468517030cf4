"""Rendering a console page: Jinja2 with autoescaping, the locale's filters, the security headers.

The browser loads only files served by this app (a Content-Security-Policy of 'self' enforces it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import psycopg
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from markupsafe import Markup, escape

from common.adapters.cursor import BadCursor
from common.adapters.db import get_pool
from common.reads.stock import BeforeRetainedLog
from functions.console.api import in_lambda
from functions.console.assets import static_url
from functions.console.i18n import (
    Locale,
    locale_of,
)
from functions.console.messages import MESSAGES
from functions.console.pages.params import BadParameter

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# Only this app's own files; inline scripts and styles are refused, which also keeps injected
# markup inert should escaping ever fail.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def _short(value: object) -> str:
    """The first 8 characters of an id: enough to tell ids apart on a page."""
    return str(value)[:8] if value is not None else "—"


def _locale(ctx: Any) -> Locale:
    found: Locale = ctx["L"]
    return found


@pass_context
def _time_filter(ctx: Any, value: datetime | None) -> str:
    return _locale(ctx).time(value)


@pass_context
def _num_filter(ctx: Any, value: int | None) -> str:
    return _locale(ctx).num(value)


@pass_context
def _dec_filter(ctx: Any, value: float) -> str:
    return _locale(ctx).decimal(value)


@pass_context
def _duration_filter(ctx: Any, value: float | None) -> str:
    return _locale(ctx).duration(value)


@pass_context
def _warehouse_filter(ctx: Any, warehouse_id: UUID | None, link: bool = True) -> Markup:
    """A warehouse by its code (from the directory; the id's first characters when it has none),
    linking to its page, the whole id in the tooltip."""
    if warehouse_id is None:
        return Markup("—")
    codes: dict[UUID, str] = ctx.get("codes") or {}
    code = codes.get(warehouse_id)
    label = escape(code) if code else Markup('<span class="id">{}</span>').format(str(warehouse_id)[:8])
    if not link:
        return Markup('<span class="wh" title="{}">{}</span>').format(str(warehouse_id), label)
    return Markup('<a class="wh" href="/ui/warehouses/{}" title="{}">{}</a>').format(
        str(warehouse_id), str(warehouse_id), label
    )


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    time=_time_filter,
    num=_num_filter,
    dec=_dec_filter,
    duration=_duration_filter,
    short=_short,
    wh=_warehouse_filter,
)
_env.globals.update(static=static_url)
# Cyrillic as itself in the JSON of a page (not escaped to six bytes a letter); <, >, & and ' still are.
_env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}


def js_messages(locale: Locale) -> dict[str, str]:
    """The catalogue's texts the scripts show: `js.*`, and the outcome and reason names."""
    return {
        key: text
        for key, text in MESSAGES[locale.lang].items()
        if key.startswith(("js.", "outcome.", "reason.")) or key == "dead.resolved"
    }


def render(request: Request | None, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    locale = locale_of(request)
    context.setdefault("nav", None)
    context.setdefault("codes", {})
    context.setdefault("export_url", "")
    context.setdefault("code_notes", [])
    here = "/ui/"
    if request is not None:
        here = request.url.path + ("?" + request.url.query if request.url.query else "")
    html = _env.get_template(name).render(
        in_lambda=in_lambda(),
        L=locale,
        t=locale.t,
        here=here,
        js_messages=js_messages(locale),
        **context,
    )
    return HTMLResponse(
        html,
        status_code,
        headers={
            "Content-Security-Policy": CSP,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Content-Language": locale.lang,
            "Vary": "Accept-Language, Cookie",
        },
    )


def page(
    request: Request,
    name: str,
    build: Callable[[psycopg.Connection, Locale], dict[str, Any]],
    *,
    error: str = "error.html",
) -> HTMLResponse:
    """Run `build` on a pooled connection and render `name`; a bad parameter is a 422 page."""
    locale = locale_of(request)
    invalid = locale.t("title.invalid")
    try:
        with get_pool().connection() as conn:
            context = build(conn, locale)
    except BadParameter as exc:
        return render(request, error, 422, title=invalid, field=exc.field, message=exc.message)
    except BadCursor as exc:
        return render(request, error, 422, title=invalid, field="cursor", message=str(exc))
    except BeforeRetainedLog as exc:
        return render(request, error, 422, title=invalid, field="as_of", message=str(exc))
    if "not_found" in context:
        title = locale.t("title.not_found")
        return render(request, "error.html", 404, title=title, field=None, message=context["not_found"])
    return render(request, name, **context)


def export_url(request: Request, path: str, drop: tuple[str, ...] = ("cursor", "limit")) -> str:
    """The CSV of what `request` lists: the same filters, without the page's cursor and size."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k not in drop])
    return path + ("?" + query if query else "")
