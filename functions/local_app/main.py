"""The local app: every Lambda function's routes in one FastAPI app, plus health, readiness, metrics.

`make run` serves it with one worker per core and the Kafka pollers as processes of their own
(`functions.local_app.serve`). Run alone (`uvicorn functions.local_app.main:app`) with
APP_MODE=kafka, the lifespan runs one local Kafka poller (the stand-in for the event source
mapping) in a daemon thread, unless KAFKA_POLLERS=0 (which `serve` sets for its workers). The
routers are the very modules the Lambda functions deploy, so local and deployed behaviour cannot
drift.
"""

from __future__ import annotations

import gc
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict

from common.adapters import cache, consumer_lag, observability
from common.adapters.config import Settings, get_settings
from common.adapters.db import close_pool, get_pool
from common.adapters.db_async import close_async_pool
from common.reads.summary import LAG_FRESH_SECONDS
from functions.console.routes import router as console_router
from functions.get_movement.routes import router as get_movement_router
from functions.get_stock.routes import router as get_stock_router
from functions.http.app import make_app
from functions.http.docs import doc
from functions.http.errors import RETRY_AFTER_SECONDS
from functions.http.guards import open_route_warnings
from functions.list_resources.routes import router as list_router
from functions.local_app.pollers import router as pollers_router
from functions.replay.routes import router as replay_router
from functions.webhook.models import schema_models as webhook_schema_models
from functions.webhook.routes import router as webhook_router

logger = logging.getLogger(__name__)

READY_DB_TIMEOUT_SECONDS = 2.0
KAFKA_CONNECT_TIMEOUT_SECONDS = 0.5
POLLER_STOP_TIMEOUT_SECONDS = 15.0


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"]


class PollerHealth(BaseModel):
    """One local poller process, from its last report (every few seconds)."""

    consumer: str
    state: str
    last_loop_age_seconds: float
    stalled: bool


class PartitionHealth(BaseModel):
    """One partition as its poller last reported it; `paused_*` set while it is paused."""

    topic: str
    partition: int
    lag: int
    paused_offset: int | None = None
    paused_reason: str | None = None
    paused_since: datetime | None = None


class Readiness(BaseModel):
    """PostgreSQL decides readiness; Redis (a cache) and Kafka (an input) are reported only."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "postgres": "ok",
                    "redis": "ok",
                    "kafka": "paused",
                    "pollers": [
                        {
                            "consumer": "host:4242",
                            "state": "running",
                            "last_loop_age_seconds": 0.4,
                            "stalled": False,
                        }
                    ],
                    "partitions": [
                        {"topic": "warehouse-movements", "partition": 0, "lag": 0},
                        {
                            "topic": "warehouse-movements",
                            "partition": 1,
                            "lag": 59,
                            "paused_offset": 40,
                            "paused_reason": "UnsupportedCodecError: Libraries for zstd not found",
                            "paused_since": "2026-12-07T08:00:00Z",
                        },
                    ],
                }
            ]
        }
    )

    status: Literal["ok", "unavailable"]
    postgres: Literal["ok", "unavailable"]
    redis: Literal["ok", "unavailable", "disabled"]
    kafka: str
    pollers: list[PollerHealth] = []
    partitions: list[PartitionHealth] = []


def _postgres_state() -> str:
    try:
        with get_pool().connection(timeout=READY_DB_TIMEOUT_SECONDS) as conn:
            conn.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any failure means not ready; the reason goes to the log
        logger.warning("readiness: postgres unavailable: %s: %s", type(exc).__name__, exc)
        return "unavailable"


def _pollers(settings: Settings) -> tuple[list[PollerHealth], list[PartitionHealth]]:
    """What the pollers (this process's thread or `make run`'s processes) last reported; best effort."""
    try:
        with get_pool().connection(timeout=READY_DB_TIMEOUT_SECONDS) as conn:
            pollers = consumer_lag.pollers(conn, LAG_FRESH_SECONDS)
            partitions = consumer_lag.fresh(conn, LAG_FRESH_SECONDS)
    except Exception as exc:  # PostgreSQL's state is reported on its own
        logger.debug("readiness: poller reports unavailable: %s", exc)
        return [], []
    group = settings.kafka_group_id
    return (
        [
            PollerHealth(
                consumer=p.consumer,
                state=p.state,
                last_loop_age_seconds=round(p.last_loop_age_seconds, 1),
                stalled=p.last_loop_age_seconds > settings.poller_stall_seconds,
            )
            for p in pollers
            if p.group_id == group
        ],
        [
            PartitionHealth(
                topic=r.topic,
                partition=r.partition,
                lag=r.lag,
                paused_offset=r.paused_offset,
                paused_reason=r.paused_reason,
                paused_since=r.paused_since,
            )
            for r in partitions
            if r.group_id == group
        ],
    )


def _overall(kafka: str, in_app: bool, pollers: list[PollerHealth], partitions: list[PartitionHealth]) -> str:
    """`kafka`: stalled, then paused, win over the pollers' own state (the worst one is the news)."""
    if any(p.stalled for p in pollers):
        return "stalled"
    if any(p.paused_offset is not None for p in partitions):
        return "paused"
    if in_app or not pollers:
        return kafka  # no poller process reported: the in-app poller's state, or the TCP check
    states = {p.state for p in pollers}
    return "running" if states == {"running"} else sorted(states - {"running"})[0]


def _kafka_state(settings: Settings, poller: Any) -> str:
    """The poller's own state when it runs, else whether the first bootstrap server takes a TCP connection."""
    # (kafka branch) `status` is the state plus the reason when the broker refused the poller,
    # e.g. "authentication_failed: ... invalid credentials with SASL mechanism SCRAM-SHA-512".
    if poller is not None and isinstance(getattr(poller, "status", None), str):
        return str(poller.status)
    if poller is not None and isinstance(getattr(poller, "state", None), str):
        return str(poller.state)
    first = settings.kafka_bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or first, int(port)), KAFKA_CONNECT_TIMEOUT_SECONDS):
            return "reachable"
    except (OSError, ValueError):
        return "unreachable"


ops = APIRouter(tags=["operations"])


@ops.get("/health", summary="Liveness", response_model=Health)
async def health() -> dict[str, str]:
    """The process serves requests; says nothing about its dependencies.

    Async on purpose: it must answer even when every worker thread waits on PostgreSQL.
    """
    return {"status": "ok"}


@ops.get(
    "/ready",
    summary="Readiness",
    response_model=Readiness,
    responses={
        503: doc(
            Readiness,
            "PostgreSQL is unreachable (Retry-After set); Redis and Kafka never make the app unready.",
            {"status": "unavailable", "postgres": "unavailable", "redis": "ok", "kafka": "reachable"},
        )
    },
)
async def ready(request: Request) -> Response:
    """200 when PostgreSQL answers `SELECT 1` within 2 s, else 503; Redis and Kafka for information."""
    settings = get_settings()
    postgres = await run_in_threadpool(_postgres_state)
    in_app = getattr(request.app.state, "poller", None)
    kafka = await run_in_threadpool(_kafka_state, settings, in_app)
    pollers, partitions = await run_in_threadpool(_pollers, settings) if postgres == "ok" else ([], [])
    body = Readiness(
        status="ok" if postgres == "ok" else "unavailable",
        postgres=postgres,  # type: ignore[arg-type]
        redis=await cache.ping(),  # type: ignore[arg-type]
        kafka=_overall(kafka, in_app is not None, pollers, partitions),
        pollers=pollers,
        partitions=partitions,
    )
    headers = {} if postgres == "ok" else {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return Response(
        body.model_dump_json(), 200 if postgres == "ok" else 503, headers, media_type="application/json"
    )


@ops.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {
                CONTENT_TYPE_LATEST: {
                    "schema": {"type": "string"},
                    "example": 'warehouse_events_total{origin="webhook",outcome="applied",reason=""} 3.0\n',
                }
            },
        }
    },
)
async def metrics() -> Response:
    """Event outcomes, request latency per route, and the pollers' lag; every process's under `make run`.

    Async on purpose: a scrape never queues behind database work in the thread pool.
    """
    text, content_type = observability.exposition()
    return Response(text, media_type=content_type)


def _start_poller(settings: Settings) -> Any:
    """The in-app poller thread, for an app run on its own; `make run` runs pollers as processes."""
    if settings.app_mode != "kafka" or settings.kafka_pollers == 0:
        return None
    from functions.local_app.poller import Poller

    poller = Poller(settings)
    poller.start()
    logger.info("kafka poller started on %s", settings.kafka_topic)
    return poller


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the poller in kafka mode; the pools open on first use. Stop the poller, then the pools."""
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for warning in open_route_warnings(settings):  # one line per group of routes left open
        logger.warning(warning)
    app.state.poller = _start_poller(settings)
    # Everything imported so far lives as long as the process: out of the collector's way, so a
    # full collection (rare in steady state) walks only what requests keep, not the ~80,000
    # objects of the imports (a ~40 ms pause on the development machine).
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        if app.state.poller is not None:
            await run_in_threadpool(app.state.poller.stop, POLLER_STOP_TIMEOUT_SECONDS)
        await close_async_pool()
        await run_in_threadpool(close_pool)


observability.enable_prometheus()
app = make_app(
    # console_router: the /ui/ console, its /static/ files (also those of /docs and /redoc), reports.
    [
        webhook_router,
        get_movement_router,
        get_stock_router,
        list_router,
        replay_router,
        console_router,
        pollers_router,
        ops,
    ],
    lambda_mode=False,
    schema_models=webhook_schema_models,
    lifespan=lifespan,
)
