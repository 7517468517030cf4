"""The monitoring console: server-rendered HTML pages under /ui/, a little JavaScript, no build step.

Every page is a handful of queries (common/reads/summary.py, routes_report.py, stock_history.py,
movement_reports.py) rendered by Jinja2 with autoescaping; the browser loads only files served by
this app (a Content-Security-Policy of 'self' enforces it).
Query parameters are read as text and checked here, so a bad one answers an HTML page saying
which field is wrong (status 422), not a JSON body a person would have to decode.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from common.adapters.config import get_settings
from common.adapters.cursor import BadCursor
from common.adapters.db import get_pool
from common.reads import losses as routes_report
from common.reads import movement_reports
from common.reads import summary as reports
from common.reads import warehouse_stock as stock_history
from common.reads.stock_and_movements import list_movements
from common.reads.warehouse_stock import BeforeRetainedLog
from functions.console.api import in_lambda
from functions.console.assets import static_url
from functions.http.guards import operator_token_configured, require_operator

TEMPLATES = Path(__file__).resolve().parent / "templates"
PAGE_SIZE = 50
MOVEMENT_STATUSES = ("in_transit", "delivered", "arrival_only")
DEFAULT_STUCK = "1h"
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


def _format_time(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _format_duration(seconds: float | int | None) -> str:
    if seconds is None:
        return "—"
    total = int(round(seconds))
    sign = "−" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"


def _format_int(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _short(value: object) -> str:
    """The first 8 characters of an id: enough to tell ids apart on a page."""
    return str(value)[:8] if value is not None else "—"


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(time=_format_time, duration=_format_duration, num=_format_int, short=_short)
_env.globals.update(static=static_url)


def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("nav", None)
    html = _env.get_template(name).render(in_lambda=in_lambda(), **context)
    return HTMLResponse(
        html,
        status_code,
        headers={
            "Content-Security-Policy": CSP,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def page(
    name: str, build: Callable[[psycopg.Connection], dict[str, Any]], *, error: str = "error.html"
) -> HTMLResponse:
    """Run `build` on a pooled connection and render `name`; a bad parameter is a 422 page."""
    try:
        with get_pool().connection() as conn:
            context = build(conn)
    except BadParameter as exc:
        return render(error, 422, title="Invalid request", field=exc.field, message=exc.message)
    except BadCursor as exc:
        return render(error, 422, title="Invalid request", field="cursor", message=str(exc))
    except BeforeRetainedLog as exc:
        return render(error, 422, title="Invalid request", field="as_of", message=str(exc))
    if "not_found" in context:
        return render("error.html", 404, title="Not found", field=None, message=context["not_found"])
    return render(name, **context)


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


# --- pages ------------------------------------------------------------------------------------


@router.get("/ui/", response_class=HTMLResponse)
def overview() -> HTMLResponse:
    """Events per minute, poller lag, dead letters, warehouses and products, movements in transit."""

    def build(conn: psycopg.Connection) -> dict[str, Any]:
        summary = reports.summary(conn, in_lambda=in_lambda())
        series: dict[str, list[int]] = {
            "t": [int(m.minute.timestamp()) for m in summary.events_per_minute],
            **{o: [getattr(m, o) for m in summary.events_per_minute] for o in reports.OUTCOMES},
        }
        return {"title": "Overview", "nav": "overview", "summary": summary, "series": series}

    return page("overview.html", build)


@router.get("/ui/warehouses", response_class=HTMLResponse)
def warehouse_list() -> HTMLResponse:
    def build(conn: psycopg.Connection) -> dict[str, Any]:
        rows = stock_history.warehouses(conn)
        return {"title": "Warehouses", "nav": "warehouses", "warehouses": rows}

    return page("warehouses.html", build)


@router.get("/ui/warehouses/{warehouse_id}", response_class=HTMLResponse)
def warehouse(request: Request, warehouse_id: str) -> HTMLResponse:
    """The warehouse's stock, every product, searchable by id prefix, paginated, optionally as of
    a past time; each product with its last movements here."""
    params = request.query_params

    def build(conn: psycopg.Connection) -> dict[str, Any]:
        wid = _uuid("warehouse_id", warehouse_id)
        query = params.get("q", "").strip()
        try:
            product_range = stock_history.product_prefix_range(query)
        except ValueError as exc:
            raise BadParameter("q", str(exc)) from None
        as_of = _time("as_of", params.get("as_of"))
        limit = _limit(params.get("limit"))
        cursor = _cursor(params.get("cursor"))
        if as_of is None:
            stock = stock_history.warehouse_stock(
                conn, wid, product_range=product_range, limit=limit, cursor=cursor
            )
        else:
            stock = stock_history.stock_as_of(
                conn, wid, as_of, product_range=product_range, limit=limit, cursor=cursor
            )
        movements = stock_history.last_movements(conn, wid, [s.product_id for s in stock.items])
        return {
            "title": f"Warehouse {wid}",
            "nav": "warehouses",
            "warehouse_id": wid,
            "totals": stock_history.warehouse_totals(conn, wid),
            "stock": stock,
            "movements": movements,
            "q": query,
            "as_of": as_of,
            "as_of_input": _input_time(as_of),
            "limit": limit,
            "first_page": cursor is None,
        }

    return page("warehouse.html", build)


@router.get("/ui/movements", response_class=HTMLResponse)
def movements(request: Request) -> HTMLResponse:
    """Movements by state; in transit (the default) oldest first, with `older_than` (e.g. 2h)."""
    params = request.query_params

    def build(conn: psycopg.Connection) -> dict[str, Any]:
        status = params.get("status") or "in_transit"
        if status not in MOVEMENT_STATUSES:
            raise BadParameter("status", "one of " + ", ".join(MOVEMENT_STATUSES))
        older_than_text = params.get("older_than", "").strip()
        limit = _limit(params.get("limit"))
        cursor = _cursor(params.get("cursor"))
        older_than = timedelta(0)
        if older_than_text:
            try:
                older_than = movement_reports.parse_duration(older_than_text)
            except ValueError as exc:
                raise BadParameter("older_than", str(exc)) from None
        if status == "in_transit":
            result = movement_reports.in_transit(conn, older_than=older_than, limit=limit, cursor=cursor)
        else:
            if older_than_text:
                raise BadParameter("older_than", "applies to movements in transit only")
            result = list_movements(conn, status=status, limit=limit, cursor=cursor)  # type: ignore[arg-type]
        row = conn.execute("SELECT now()").fetchone()
        return {
            "title": "Movements",
            "nav": "movements",
            "status": status,
            "statuses": MOVEMENT_STATUSES,
            "older_than": older_than_text,
            "default_stuck": DEFAULT_STUCK,
            "page": result,
            "now": row[0] if row else datetime.now(UTC),
            "limit": limit,
            "first_page": cursor is None,
        }

    return page("movements.html", build)


@router.get("/ui/movements/{movement_id}", response_class=HTMLResponse)
def movement(movement_id: str) -> HTMLResponse:
    """Both halves side by side, transit time, quantity difference, the events and dead letters."""

    def build(conn: psycopg.Connection) -> dict[str, Any]:
        mid = _uuid("movement_id", movement_id)
        detail = movement_reports.movement_detail(conn, mid)
        if detail is None:
            return {"not_found": f"No event of movement {mid} has been applied."}
        return {"title": f"Movement {mid}", "nav": "movements", "detail": detail, "m": detail.movement}

    return page("movement.html", build)


@router.get("/ui/losses", response_class=HTMLResponse)
def losses(request: Request) -> HTMLResponse:
    """Per route: delivered movements, units lost, transit p50/p95, over an arrival-time window."""
    params = request.query_params

    def build(conn: psycopg.Connection) -> dict[str, Any]:
        since = _time("from", params.get("from"))
        until = _time("to", params.get("to"))
        if since is not None and until is not None and until <= since:
            raise BadParameter("to", "must be later than from")
        limit = _limit(params.get("limit"), default=100, most=routes_report.MAX_ROUTES)
        report = routes_report.routes_report(conn, since=since, until=until, limit=limit)
        return {
            "title": "Losses by route",
            "nav": "losses",
            "report": report,
            "from_input": _input_time(since),
            "to_input": _input_time(until),
            "limit": limit,
        }

    return page("losses.html", build)


# --- dead letters: an operator route -------------------------------------------------------------
# GET /api/v1/rejected-events is an operator route (template.yaml: a gateway authorizer with
# OperatorAuth=IAM|JWT, the operator token with Token), so the dead letters' rows, raw payloads
# included, are too: the page is a shell, and its script fetches the rows from
# /ui/dead-letters/rows with the bearer token the operator typed.

DEAD_LETTER_ROWS_PATH = "/ui/dead-letters/rows"


def token_required() -> bool:
    """Whether the page must ask for a token before it can list anything."""
    settings = get_settings()
    return settings.operator_auth == "gateway" or operator_token_configured(settings)


def _dead_letter_filters(params: Any) -> dict[str, Any]:
    reason = params.get("reason") or None
    if reason is not None and reason not in reports.REASONS:
        raise BadParameter("reason", "one of " + ", ".join(reports.REASONS))
    movement_text = params.get("movement_id") or None
    return {
        "reason": reason,
        "unresolved": params.get("unresolved") in ("1", "on", "true"),
        "movement_id": _uuid("movement_id", movement_text) if movement_text else None,
        "limit": _limit(params.get("limit")),
        "cursor": _cursor(params.get("cursor")),
    }


@router.get("/ui/dead-letters", response_class=HTMLResponse)
def dead_letters(request: Request) -> HTMLResponse:
    """Refused events by reason: counts here; the rows (raw payloads) with the operator token."""

    def build(conn: psycopg.Connection) -> dict[str, Any]:
        filters = _dead_letter_filters(request.query_params)
        return {
            "title": "Dead letters",
            "nav": "dead_letters",
            **filters,
            "reasons": reports.REASONS,
            "counts": reports.dead_letter_counts(conn),
            "rows_url": DEAD_LETTER_ROWS_PATH + ("?" + request.url.query if request.url.query else ""),
            "token_required": token_required(),
        }

    return page("dead_letters.html", build)


@router.get(DEAD_LETTER_ROWS_PATH, response_class=HTMLResponse, dependencies=[Depends(require_operator)])
def dead_letter_rows(request: Request) -> HTMLResponse:
    """The dead letters' rows for the page's script: newest first, with the raw payloads."""

    def build(conn: psycopg.Connection) -> dict[str, Any]:
        filters = _dead_letter_filters(request.query_params)
        result = reports.dead_letters(conn, **filters)
        return {**filters, "page": result, "first_page": filters["cursor"] is None}

    return page("dead_letter_rows.html", build, error="error_fragment.html")


@router.get("/ui/go", response_model=None)
def go(request: Request) -> HTMLResponse | RedirectResponse:
    """The search box: to the movement or the warehouse an id names."""
    text = request.query_params.get("id", "").strip()
    try:
        some_id = UUID(text)
    except ValueError:
        return render("error.html", 422, title="Invalid request", field="id", message="not a UUID")
    with get_pool().connection() as conn:
        kind = movement_reports.locate(conn, some_id)
    if kind == "movement":
        return RedirectResponse(f"/ui/movements/{some_id}", status_code=303)
    if kind == "warehouse":
        return RedirectResponse(f"/ui/warehouses/{some_id}", status_code=303)
    message = f"{some_id} is neither a movement nor a warehouse with stock."
    return render("error.html", 404, title="Not found", field=None, message=message)


@router.get("/ui")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=308)
