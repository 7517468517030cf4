"""The monitoring console: server-rendered HTML pages under /ui/, a little JavaScript, no build step.

Every page is a handful of queries (common/reads/summary.py, routes_report.py, stock_history.py,
movement_reports.py) rendered by Jinja2 with autoescaping; the browser loads only files served by
this app (a Content-Security-Policy of 'self' enforces it).
Query parameters are read as text and checked here, so a bad one answers an HTML page saying
which field is wrong (status 422), not a JSON body a person would have to decode.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from markupsafe import Markup, escape

from common.adapters.config import get_settings
from common.adapters.cursor import BadCursor
from common.adapters.db import get_pool
from common.dead_letters import store as dead_letter_store
from common.dead_letters.models import AppliedHalf, RejectedEventView
from common.domain.outcomes import Reason
from common.reads import losses as routes_report
from common.reads import movements as movement_reads
from common.reads import stock as stock_reads
from common.reads import summary as reports
from common.reads.models import WarehouseEntry
from common.reads.search import search
from common.reads.stock import BeforeRetainedLog
from common.reads.warehouses import MAX_WAREHOUSES, by_code, codes_for, directory, directory_entry
from functions.console.api import in_lambda
from functions.console.assets import static_url
from functions.console.i18n import (
    AUTO,
    BROWSER_TZ_COOKIE,
    COOKIE_MAX_AGE,
    LANG_COOKIE,
    LANGUAGES,
    TZ_COOKIE,
    Locale,
    locale_of,
    zone,
    zone_choices,
)
from functions.console.messages import MESSAGES
from functions.http.guards import operator_token_configured, require_operator

TEMPLATES = Path(__file__).resolve().parent / "templates"
PAGE_SIZE = 50
MOVEMENT_STATUSES = ("in_transit", "delivered", "arrival_only")
DEFAULT_STUCK = "1h"
REASONS: tuple[str, ...] = tuple(r.value for r in Reason)
# Only this app's own files; inline scripts and styles are refused, which also keeps injected
# markup inert should escaping ever fail.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


class BadParameter(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


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


# --- parameter parsing ------------------------------------------------------------------------


def _uuid(field: str, value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise BadParameter(field, "not a UUID") from None


def _time(field: str, value: str | None) -> datetime | None:
    """An ISO-8601 time or an HTML datetime-local value (no offset: UTC); empty means none."""
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(field, "not an ISO-8601 time (e.g. 2025-02-18T14:00:00Z)") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:  # near year 1 or 9999 an offset can carry the time out of datetime's range
        return parsed.astimezone(UTC)
    except OverflowError:
        raise BadParameter(field, "out of range once converted to UTC (years 1 to 9999)") from None


def _limit(value: str | None, default: int = PAGE_SIZE, most: int = 500) -> int:
    if value is None or value == "":
        return default
    # isascii: '²' and '١' are digits to str.isdigit, not to a person reading the URL (nor to int).
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= most:
        raise BadParameter("limit", f"a whole number from 1 to {most}")
    return int(value)


def _cursor(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > 200:
        raise BadParameter("cursor", "not a cursor returned by this list")
    return value


def _input_time(value: datetime | None) -> str:
    """A time as an <input type=datetime-local> value, in UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if value else ""


_NAIVE_TIME = re.compile(r"^\s*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?\s*$")


def _local_time(locale: Locale, field: str, value: str | None) -> datetime | None:
    """A time typed in a filter: one without an offset (what <input type=datetime-local> sends) is
    in the operator's zone, as every time on the page; then read as `_time` reads any."""
    if value is not None and _NAIVE_TIME.match(value):
        try:
            naive = datetime.fromisoformat(value.strip())
        except ValueError:
            naive = None  # `_time` names the field
        if naive is not None:
            offset = naive.replace(tzinfo=locale.zone).utcoffset() or timedelta(0)
            sign = "-" if offset < timedelta(0) else "+"
            hours, rest = divmod(int(abs(offset).total_seconds()), 3600)
            seconds = f":{rest % 60:02d}" if rest % 60 else ""  # local mean time before 1900
            value = f"{value.strip()}{sign}{hours:02d}:{rest // 60:02d}{seconds}"
    return _time(field, value)


def _local_input(locale: Locale, value: datetime | None) -> str:
    """A time as an <input type=datetime-local> value, in the operator's zone."""
    if value is None:
        return ""
    local = locale.local(value)
    return f"{local.year:04d}-{local:%m-%dT%H:%M:%S}"  # %Y drops a small year's zeros on glibc


# --- pages ------------------------------------------------------------------------------------


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


def _product_range(query: str) -> tuple[UUID, UUID] | None:
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
        wid = _uuid("warehouse_id", warehouse_id)
        query = params.get("q", "").strip()
        product_range = _product_range(query)
        as_of = _local_time(locale, "as_of", params.get("as_of"))
        limit = _limit(params.get("limit"))
        cursor = _cursor(params.get("cursor"))
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
            "as_of_input": _local_input(locale, as_of),
            "limit": limit,
            "first_page": cursor is None,
            "export_url": export_url(request, f"/ui/export/warehouses/{wid}"),
        }

    return page(request, "warehouse.html", build)


def _warehouse_param(conn: psycopg.Connection, text: str) -> UUID | None:
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


def _movement_filters(conn: psycopg.Connection, params: Any) -> dict[str, Any]:
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
        "warehouse_id": _warehouse_param(conn, warehouse_text),
    }


@router.get("/ui/movements", response_class=HTMLResponse)
def movements(request: Request) -> HTMLResponse:
    """Movements by state; in transit (the default) oldest first, with `older_than` (e.g. 2h) and a
    warehouse (code or id: from or to it)."""
    params = request.query_params

    def build(conn: psycopg.Connection, locale: Locale) -> dict[str, Any]:
        f = _movement_filters(conn, params)
        limit = _limit(params.get("limit"))
        cursor = _cursor(params.get("cursor"))
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
        mid = _uuid("movement_id", movement_id)
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


@router.get("/ui/products/{product_id}", response_class=HTMLResponse)
def product(request: Request, product_id: str) -> HTMLResponse:
    """Where a product is: on hand per warehouse, in transit, the total."""

    def build(conn: psycopg.Connection, locale: Locale) -> dict[str, Any]:
        pid = _uuid("product_id", product_id)
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


@router.get("/ui/losses", response_class=HTMLResponse)
def losses(request: Request) -> HTMLResponse:
    """Per route: delivered movements, units lost, transit p50/p95, over an arrival-time window."""
    params = request.query_params

    def build(conn: psycopg.Connection, locale: Locale) -> dict[str, Any]:
        since, until, limit = _losses_filters(locale, params)
        report = routes_report.routes_report(conn, since=since, until=until, limit=limit)
        ids = [w for r in report.items for w in (r.source_warehouse_id, r.destination_warehouse_id)]
        return {
            "title": locale.t("title.losses"),
            "nav": "losses",
            "report": report,
            "codes": codes_for(conn, ids),
            "from_input": _local_input(locale, since),
            "to_input": _local_input(locale, until),
            "limit": limit,
            "export_url": export_url(request, "/ui/export/losses", drop=()),
        }

    return page(request, "losses.html", build)


def _losses_filters(locale: Locale, params: Any) -> tuple[datetime | None, datetime | None, int]:
    since = _local_time(locale, "from", params.get("from"))
    until = _local_time(locale, "to", params.get("to"))
    if since is not None and until is not None and until <= since:
        raise BadParameter("to", "must be later than from")
    limit = _limit(params.get("limit"), default=100, most=routes_report.MAX_ROUTES)
    return since, until, limit


# --- settings: language and time zone ----------------------------------------------------------


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


# --- dead letters: an operator route -------------------------------------------------------------
# GET /api/v1/rejected-events is an operator route (template.yaml: a gateway authorizer with
# OperatorAuth=IAM|JWT, the operator token with Token), so the dead letters' rows, raw payloads
# included, are too: the page is a shell, and its script fetches the rows from
# /ui/dead-letters/rows with the bearer token the operator typed.

DEAD_LETTER_ROWS_PATH = "/ui/dead-letters/rows"
DEAD_LETTER_EXPORT_PATH = "/ui/dead-letters/export"  # the CSV: an operator route too


def token_required() -> bool:
    """Whether the page must ask for a token before it can list anything."""
    settings = get_settings()
    return settings.operator_auth == "gateway" or operator_token_configured(settings)


def _dead_letter_filters(params: Any) -> dict[str, Any]:
    reason = params.get("reason") or None
    if reason is not None and reason not in REASONS:
        raise BadParameter("reason", "one of " + ", ".join(REASONS))
    movement_text = params.get("movement_id") or None
    return {
        "reason": reason,
        "unresolved": params.get("unresolved") in ("1", "on", "true"),
        "movement_id": _uuid("movement_id", movement_text) if movement_text else None,
        "limit": _limit(params.get("limit")),
        "cursor": _cursor(params.get("cursor")),
    }


def dead_letter_source(d: RejectedEventView) -> str:
    if d.kafka_topic is not None:
        return f"{d.kafka_topic}/{d.kafka_partition}@{d.kafka_offset}"
    return d.origin


def dead_letter_state(locale: Locale, d: RejectedEventView) -> str:
    """Resolved (by whom, when, why), answered to the webhook's caller, or the last replay's outcome."""
    if d.resolution == "resolved" and d.resolved_at is not None:
        return locale.t(
            "dead.resolved_by",
            who=d.resolved_by or "—",
            time=locale.time(d.resolved_at),
            note=d.resolution_note or "",
        )
    if d.replay_status is not None:
        return locale.t("outcome." + d.replay_status)
    if d.resolution == "answered":
        return locale.t("dead.answered", status="409")
    return locale.t("dead.not_replayed")


@router.get("/ui/dead-letters", response_class=HTMLResponse)
def dead_letters(request: Request) -> HTMLResponse:
    """Refused events by reason: counts here; the rows (raw payloads) with the operator token."""

    def build(conn: psycopg.Connection, locale: Locale) -> dict[str, Any]:
        filters = _dead_letter_filters(request.query_params)
        return {
            "title": locale.t("title.dead_letters"),
            "nav": "dead_letters",
            **filters,
            "reasons": REASONS,
            "counts": dead_letter_store.dead_letter_counts(conn),
            "rows_url": DEAD_LETTER_ROWS_PATH + ("?" + request.url.query if request.url.query else ""),
            "token_required": token_required(),
            "export_url": export_url(request, DEAD_LETTER_EXPORT_PATH),
            "bulk_reason": filters["reason"] or "",
            "bulk_movement": filters["movement_id"] or "",
        }

    return page(request, "dead_letters.html", build)


@router.get(DEAD_LETTER_ROWS_PATH, response_class=HTMLResponse, dependencies=[Depends(require_operator)])
def dead_letter_rows(request: Request) -> HTMLResponse:
    """The dead letters' rows for the page's script: newest first, with the raw payloads."""

    def build(conn: psycopg.Connection, locale: Locale) -> dict[str, Any]:
        filters = _dead_letter_filters(request.query_params)
        result = dead_letter_store.list_page(
            conn,
            reason=filters["reason"],
            unresolved=filters["unresolved"],
            movement_id=filters["movement_id"],
            order="newest",
            limit=filters["limit"],
            cursor=filters["cursor"],
        )
        # A conflict: the applied version beside the refused one (one query per conflicting movement).
        applied: dict[int, list[AppliedHalf]] = {}
        for d in result.items:
            if d.reason == "conflict" and d.movement_id is not None:
                halves = dead_letter_store.applied_halves(conn, d.movement_id)
                applied[d.id] = [h for h in halves if h.event == d.event] or halves
        codes = codes_for(conn, [h.warehouse_id for halves in applied.values() for h in halves])
        return {
            **filters,
            "page": result,
            "first_page": filters["cursor"] is None,
            "source": dead_letter_source,
            "state": lambda d: dead_letter_state(locale, d),
            "applied": applied,
            "codes": codes,
        }

    return page(request, "dead_letter_rows.html", build, error="error_fragment.html")


# --- the header search ---------------------------------------------------------------------------

_KIND_PATHS = {"warehouse": "/ui/warehouses/", "product": "/ui/products/", "movement": "/ui/movements/"}


@router.get("/ui/go", response_model=None)
def go(request: Request) -> HTMLResponse | RedirectResponse:
    """The search box: straight to the one thing a text names (a warehouse code or id, a product
    or movement id, or the first digits of one), else a page listing what it may name."""
    locale = locale_of(request)
    text = request.query_params.get("id", "").strip()
    with get_pool().connection() as conn:
        result = search(conn, text)
        codes = codes_for(conn, [f.id for f in result.items if f.kind == "warehouse"])
    exact = [
        f
        for f in result.items
        if f.match != "prefix" and (f.match == "id" or f.label.lower() == text.lower())
    ]
    if len(exact) == 1 or len(result.items) == 1:
        found = exact[0] if len(exact) == 1 else result.items[0]
        return RedirectResponse(_KIND_PATHS[found.kind] + str(found.id), status_code=303)
    if not result.items:
        message = locale.t("error.not_found_id", text=text)
        return render(
            request, "error.html", 404, title=locale.t("title.not_found"), field=None, message=message
        )
    return render(
        request,
        "search.html",
        title=locale.t("title.search"),
        query=text,
        found=result.items,
        paths=_KIND_PATHS,
        codes=codes,
    )


@router.get("/ui")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=308)
