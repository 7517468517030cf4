"""Losses and transit time per route (source -> destination), over delivered movements.

One statement on a covering index of delivered movements already in route order (migration 0003),
so the all-time report is an index-only scan; `percentile_cont` gives the transit percentiles.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import psycopg
from pydantic import BaseModel, ConfigDict, Field

from common.domain.examples import example
from common.reads.models import CODES_FIELD, WarehouseCodes
from common.reads.warehouses import codes_for

MAX_ROUTES = 1000


class RouteStats(BaseModel):
    """Delivered movements from one warehouse to another: how many, what was lost, how long it took."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source_warehouse_id": "25718666-6af6-4281-b5a6-3016e36fa557",
                    "destination_warehouse_id": "c1d70455-7e14-11e9-812a-70106f431230",
                    "movements": 140,
                    "movements_with_loss": 9,
                    "units_departed": 14000,
                    "units_arrived": 13968,
                    "units_lost": 32,
                    "loss_rate": 0.002286,
                    "transit_p50_seconds": 7260.0,
                    "transit_p95_seconds": 15480.5,
                    "transit_max_seconds": 20100,
                }
            ]
        }
    )

    source_warehouse_id: UUID
    destination_warehouse_id: UUID
    movements: int
    movements_with_loss: int = Field(description="Movements whose arrival counted fewer units than left.")
    units_departed: int
    units_arrived: int
    units_lost: int = Field(description="Sum over the movements of departed − arrived where positive.")
    loss_rate: float = Field(description="units_lost / units_departed.")
    transit_p50_seconds: float
    transit_p95_seconds: float
    transit_max_seconds: int


class RoutesReport(BaseModel):
    """Routes (source → destination) by units lost, most first, over delivered movements."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "from": "2025-02-01T00:00:00Z",
                    "to": None,
                    "routes_total": 1,
                    "items": [example(RouteStats)],
                }
            ]
        },
    )

    from_: datetime | None = Field(alias="from", description="The window's start (arrivals at or after).")
    to: datetime | None = Field(description="The window's end (arrivals before).")
    routes_total: int = Field(description="Routes in the window, of which `items` is the first `limit`.")
    items: list[RouteStats]
    warehouse_codes: WarehouseCodes = CODES_FIELD


def routes_report(
    conn: psycopg.Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> RoutesReport:
    """Per route, the delivered movements whose arrival time (`arrived_at`) is in [since, until)."""
    rows = conn.execute(
        """
        WITH delivered AS (
            SELECT source_warehouse_id AS src, destination_warehouse_id AS dst,
                   departed_quantity AS dep_q, arrived_quantity AS arr_q,
                   extract(epoch FROM arrived_at - departed_at) AS transit
            FROM movements
            WHERE status = 'delivered'
              AND (%(since)s::timestamptz IS NULL OR arrived_at >= %(since)s::timestamptz)
              AND (%(until)s::timestamptz IS NULL OR arrived_at < %(until)s::timestamptz)
        )
        SELECT src, dst, count(*), count(*) FILTER (WHERE arr_q < dep_q),
               sum(dep_q)::bigint, sum(arr_q)::bigint, sum(greatest(dep_q - arr_q, 0))::bigint,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY transit),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY transit),
               max(transit), count(*) OVER ()
        FROM delivered
        GROUP BY src, dst
        ORDER BY 7 DESC, 3 DESC, src, dst
        LIMIT %(limit)s
        """,
        {"since": since, "until": until, "limit": limit},
    ).fetchall()
    items = [
        RouteStats(
            source_warehouse_id=src,
            destination_warehouse_id=dst,
            movements=n,
            movements_with_loss=lossy,
            units_departed=dep,
            units_arrived=arr,
            units_lost=lost,
            loss_rate=round(lost / dep, 6) if dep else 0.0,
            transit_p50_seconds=float(p50),
            transit_p95_seconds=float(p95),
            transit_max_seconds=int(tmax),
        )
        for src, dst, n, lossy, dep, arr, lost, p50, p95, tmax, _ in rows
    ]
    return RoutesReport(
        from_=since,
        to=until,
        routes_total=rows[0][-1] if rows else 0,
        items=items,
        warehouse_codes=codes_for(
            conn, [w for r in items for w in (r.source_warehouse_id, r.destination_warehouse_id)]
        ),
    )
