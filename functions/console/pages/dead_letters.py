"""The dead letters: counts on the page; their rows (raw payloads) an operator route."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from common.adapters.config import get_settings
from common.dead_letters import store as dead_letter_store
from common.dead_letters.models import AppliedHalf, RejectedEventView
from common.domain.outcomes import Reason
from common.reads.warehouses import codes_for
from functions.console.i18n import Locale
from functions.console.pages.params import BadParameter, parse_cursor, parse_limit, parse_uuid
from functions.console.pages.rendering import export_url, page
from functions.http.guards import operator_token_configured, require_operator

REASONS: tuple[str, ...] = tuple(r.value for r in Reason)

router = APIRouter(include_in_schema=False)

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


def dead_letter_filters(params: Any) -> dict[str, Any]:
    reason = params.get("reason") or None
    if reason is not None and reason not in REASONS:
        raise BadParameter("reason", "one of " + ", ".join(REASONS))
    movement_text = params.get("movement_id") or None
    return {
        "reason": reason,
        "unresolved": params.get("unresolved") in ("1", "on", "true"),
        "movement_id": parse_uuid("movement_id", movement_text) if movement_text else None,
        "limit": parse_limit(params.get("limit")),
        "cursor": parse_cursor(params.get("cursor")),
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
        filters = dead_letter_filters(request.query_params)
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
        filters = dead_letter_filters(request.query_params)
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
