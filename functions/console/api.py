"""The console's JSON reports: GET /api/v1/stats/summary and GET /api/v1/reports/routes.

They live in the console's package because the ConsoleFunction Lambda serves them beside the
pages that show them (one function per `functions/<name>/`); the local app mounts them too. Read
straight from PostgreSQL, no cache: each is a few index scans (common/reads/summary.py).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from common.adapters.db import get_pool
from common.reads import losses as routes_report
from common.reads import models as report_models
from common.reads import summary as reports
from functions.http.docs import doc, invalid_example
from functions.http.errors import InvalidRequest, invalid_parameter

SUMMARY_PATH = "/api/v1/stats/summary"
ROUTES_PATH = "/api/v1/reports/routes"

router = APIRouter(tags=["reports"])


def in_lambda() -> bool:
    """Inside AWS Lambda the poller lag lives in CloudWatch, not in the consumer_lag table."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def utc(value: datetime | None) -> datetime | None:
    """A time without an offset is UTC, as everywhere in the API."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@router.get(SUMMARY_PATH, summary="Summary statistics", response_model=report_models.Summary)
def get_summary() -> Response:
    """Warehouses and products, movements in transit and the oldest of them, events per minute by
    outcome over the last hour, dead letters by reason, and the Kafka lag the local pollers last
    reported (null when none reported within two minutes; in AWS see CloudWatch's OffsetLag)."""
    with get_pool().connection() as conn:
        body = reports.summary(conn, in_lambda=in_lambda())
    return Response(report_models.answer_json(body), media_type="application/json")


@router.get(
    ROUTES_PATH,
    summary="Losses and transit time per route",
    response_model=routes_report.RoutesReport,
    responses={
        422: doc(
            InvalidRequest,
            "A parameter is invalid: a time that is not ISO-8601, `to` not after `from`, or a "
            f"limit outside 1..{routes_report.MAX_ROUTES}.",
            invalid_example("to", "must be later than from", "value_error"),
        )
    },
)
def get_routes_report(
    since: Annotated[
        datetime | None,
        Query(alias="from", description="Only movements that arrived at or after this time (ISO-8601)."),
    ] = None,
    until: Annotated[
        datetime | None,
        Query(alias="to", description="Only movements that arrived before this time (ISO-8601)."),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=routes_report.MAX_ROUTES, description="Most routes returned.")
    ] = 100,
) -> Response:
    """Delivered movements (both halves applied) grouped by source and destination warehouse, the
    routes losing most units first: movements, units departed and arrived, units lost
    (departed − arrived, where positive) and the transit time's median, 95th percentile and
    maximum (arrival timestamp − departure timestamp, from the events). The window applies to the
    arrival's timestamp; a time without an offset is UTC."""
    since, until = utc(since), utc(until)
    if since is not None and until is not None and until <= since:
        raise invalid_parameter("to", "query", "must be later than from")
    with get_pool().connection() as conn:
        body = routes_report.routes_report(conn, since=since, until=until, limit=limit)
    return Response(report_models.answer_json(body, by_alias=True), media_type="application/json")
