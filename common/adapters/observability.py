"""One observability module for every entry point: the metrics, the Lambda wrapper, the logger.

The same metric names everywhere. A local process (the app, a poller) calls `enable_prometheus()`
and its /metrics exposes them (under `make run` every worker and poller writes to the shared
PROMETHEUS_MULTIPROC_DIR, and any worker's /metrics sums them all: `exposition`); a Lambda
function is wrapped by `lambda_entry`, and the same names go
to CloudWatch (namespace POWERTOOLS_METRICS_NAMESPACE, default `WarehouseStock`) through Powertools'
embedded metric format, one line per label combination. Neither costs anything when off, and
neither can fail the work it measures: a committed batch must never become a redelivery because a
counter broke.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import logging
import os
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from common.adapters import tracing
from common.domain.outcomes import Outcome

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "WarehouseStock"

EVENTS = "warehouse_events_total"
KAFKA_BATCHES = "warehouse_kafka_batches_total"
KAFKA_BATCH_SECONDS = "warehouse_kafka_batch_seconds"
HTTP_REQUEST_SECONDS = "http_request_duration_seconds"
POLLER_LAG = "warehouse_poller_lag"
POLLER_OFFSET_RESETS = "warehouse_poller_offset_resets_total"
# A partition stopped on a batch the poller cannot decode (1 while paused), and the pauses so far.
POLLER_PAUSED = "warehouse_poller_paused_partitions"
POLLER_UNDECODABLE = "warehouse_poller_undecodable_batches_total"
# When each poller's loop last finished an iteration (unix seconds); restarts of a stalled one.
POLLER_LAST_LOOP = "warehouse_poller_last_loop_timestamp_seconds"
POLLER_STALL_RESTARTS = "warehouse_poller_stall_restarts_total"
# Age of the oldest record of a Kafka batch that failed (CloudWatch only): alarm on it well before
# the topic's retention, when records of a batch that keeps failing would start to expire.
KAFKA_FAILED_BATCH_RECORD_AGE = "warehouse_kafka_failed_batch_oldest_record_age_seconds"

LambdaHandler = Callable[[dict[str, Any], Any], Any]


@dataclass
class _Prometheus:
    """The collectors of a local process, in its default registry (exposed on /metrics)."""

    events: Any
    kafka_batches: Any
    kafka_batch_seconds: Any
    http_seconds: Any
    poller_lag: Any
    offset_resets: Any
    paused: Any
    undecodable: Any
    last_loop: Any
    stall_restarts: Any


_prometheus: _Prometheus | None = None
# Set while a wrapped Lambda handler runs (per thread: the local app's threads are not in one).
_in_lambda_invocation: ContextVar[bool] = ContextVar("in_lambda_invocation", default=False)


def enable_prometheus() -> None:
    """Create the Prometheus collectors (once per process); the local app and pollers call this."""
    global _prometheus
    if _prometheus is not None:
        return
    from prometheus_client import Counter as PCounter
    from prometheus_client import Gauge, Histogram

    _prometheus = _Prometheus(
        events=PCounter(
            EVENTS.removesuffix("_total"),
            "Movement events by outcome (applied, duplicate, rejected), reject reason and origin.",
            ["outcome", "reason", "origin"],
        ),
        kafka_batches=PCounter(
            KAFKA_BATCHES.removesuffix("_total"), "Kafka batches handled, by result (ok, failed).", ["result"]
        ),
        kafka_batch_seconds=Histogram(
            KAFKA_BATCH_SECONDS,
            "Time to decode, validate and apply one Kafka batch.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        ),
        http_seconds=Histogram(
            HTTP_REQUEST_SECONDS,
            "HTTP request latency by route template, method and status code.",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        ),
        poller_lag=Gauge(
            POLLER_LAG,
            "Records the local pollers have yet to consume, over their partitions.",
            multiprocess_mode="livesum",  # each poller process reports its own partitions
        ),
        offset_resets=PCounter(
            POLLER_OFFSET_RESETS.removesuffix("_total"),
            "Times a poller found its position outside a partition (e.g. a recreated topic) and reset it.",
            ["topic", "partition", "reason"],
        ),
        paused=Gauge(
            POLLER_PAUSED,
            "1 while a poller holds a partition paused on a batch it cannot decode (resume or skip it).",
            ["topic", "partition"],
            multiprocess_mode="livesum",
        ),
        undecodable=PCounter(
            POLLER_UNDECODABLE.removesuffix("_total"),
            "Record batches a poller could not decode (its partition was paused).",
            ["topic", "partition"],
        ),
        last_loop=Gauge(
            POLLER_LAST_LOOP,
            "When the poller's loop last finished an iteration (unix time), one series per poller process.",
            multiprocess_mode="liveall",
        ),
        stall_restarts=PCounter(
            POLLER_STALL_RESTARTS.removesuffix("_total"),
            "Pollers restarted by the supervisor because their loop stopped finishing iterations.",
        ),
    )


def prometheus_enabled() -> bool:
    return _prometheus is not None


def exposition() -> tuple[bytes, str]:
    """The Prometheus text and its content type: this process's metrics, or, when
    PROMETHEUS_MULTIPROC_DIR is set (`make run`: several workers and pollers), every process's."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest(), CONTENT_TYPE_LATEST
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Drop a stopped process's live gauges from the shared metrics (its counters stay summed)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def namespace() -> str:
    """The CloudWatch namespace of every metric (the template sets POWERTOOLS_METRICS_NAMESPACE)."""
    return os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE


# --- recording -----------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., None])


def _never_raises(record: F) -> F:
    """A metric must never fail the work it measures: errors are logged, not raised."""

    @functools.wraps(record)
    def safe(*args: Any, **kwargs: Any) -> None:
        try:
            record(*args, **kwargs)
        except Exception:
            logger.warning("recording metric %s failed", record.__name__, exc_info=True)

    return safe  # type: ignore[return-value]  # same signature, by construction


@_never_raises
def record_outcomes(outcomes: Iterable[Outcome], origin: str) -> None:
    """Count each event once, by the outcome it is counted under (a redelivery is a duplicate)."""
    # Counted by (status, reason) objects first (a C loop), named once per distinct pair: a batch
    # of 1,000 costs ~0.3 us an event, not one label lookup each.
    counts = {
        (counted.value, why.value if why else ""): n
        for (counted, why), n in Counter(outcome.counted_as for outcome in outcomes).items()
    }
    tracing.add_outcome_counts({f"{s}.{r}" if r else s: n for (s, r), n in counts.items()})
    for (status, reason), n in counts.items():
        labels = {"outcome": status, "reason": reason, "origin": origin}
        if _prometheus is not None:
            # The child looked up once per label set: `labels()` is ~1.5 us, paid per webhook event.
            child = _event_children.get((status, reason, origin))
            if child is None:
                child = _event_children[(status, reason, origin)] = _prometheus.events.labels(**labels)
            child.inc(n)
        _cloudwatch(EVENTS, n, labels)


_event_children: dict[tuple[str, str, str], Any] = {}


@_never_raises
def record_kafka_batch(ok: bool, seconds: float) -> None:
    result = "ok" if ok else "failed"
    if _prometheus is not None:
        _prometheus.kafka_batches.labels(result=result).inc()
        if ok:
            _prometheus.kafka_batch_seconds.observe(seconds)
    _cloudwatch(KAFKA_BATCHES, 1, {"result": result})
    if ok:
        _cloudwatch(KAFKA_BATCH_SECONDS, seconds, {}, unit="Seconds")


_http_children: dict[tuple[str, str, int], Any] = {}


@_never_raises
def record_failed_batch_age(seconds: float | None) -> None:
    """How old the oldest record of a failed batch is (a Lambda invocation only; no dimensions)."""
    if seconds is not None:
        _cloudwatch(KAFKA_FAILED_BATCH_RECORD_AGE, seconds, {}, unit="Seconds")


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    """Request latency (local app only: in AWS, API Gateway measures it).

    On an event loop the observations are gathered and written once per loop iteration (a
    `call_soon`, so before the loop next waits: /metrics never misses a finished request): in the
    multiprocess histogram one observation costs ~4 us (a lock, a pid check and a file write for
    the sum and again for the bucket), a share of a cached GET's CPU. A crowd's requests of one
    iteration then cost one write per label combination and bucket. Outside a loop, written at once.
    """
    if _prometheus is None:
        return
    key = (method, route, status)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _write_http({key: [seconds]})
        return
    global _http_pending, _http_pending_loop
    if _http_pending is not None and _http_pending_loop is not loop:
        _flush_http()  # left by a loop that stopped before its flush ran (a test client's)
    if _http_pending is None:
        _http_pending, _http_pending_loop = {}, loop
        loop.call_soon(_flush_http)
    found = _http_pending.get(key)
    if found is None:
        _http_pending[key] = [seconds]
    else:
        found.append(seconds)


_http_pending: dict[tuple[str, str, int], list[float]] | None = None
_http_pending_loop: asyncio.AbstractEventLoop | None = None


def _flush_http() -> None:
    global _http_pending
    pending, _http_pending = _http_pending, None
    if pending:
        _write_http(pending)


@_never_raises
def _write_http(observations: dict[tuple[str, str, int], list[float]]) -> None:
    """Each label combination's child is looked up once: `labels()` costs more than the observation."""
    if _prometheus is None:
        return
    for key, values in observations.items():
        child = _http_children.get(key)
        if child is None:
            method, route, status = key
            child = _http_children[key] = _prometheus.http_seconds.labels(
                method=method, route=route, status=str(status)
            )
        bounds, buckets, total = (
            getattr(child, name, None) for name in ("_upper_bounds", "_buckets", "_sum")
        )
        if bounds is None or buckets is None or total is None or len(values) == 1:
            for value in values:  # prometheus_client's own path (its internals are not an API)
                child.observe(value)
            continue
        # What `observe` does for each value, summed: the sum once, each bucket hit once.
        total.inc(sum(values))
        for index, count in Counter(bisect.bisect_left(bounds, value) for value in values).items():
            buckets[index].inc(count)


@_never_raises
def set_poller_lag(lag: int) -> None:
    if _prometheus is not None:
        _prometheus.poller_lag.set(lag)


@_never_raises
def set_poller_paused(topic: str, partition: int, paused: bool) -> None:
    if _prometheus is not None:
        _prometheus.paused.labels(topic=topic, partition=str(partition)).set(1 if paused else 0)
        if paused:
            _prometheus.undecodable.labels(topic=topic, partition=str(partition)).inc()


@_never_raises
def set_poller_loop_finished(unix_seconds: float) -> None:
    if _prometheus is not None:
        _prometheus.last_loop.set(unix_seconds)


@_never_raises
def count_stall_restart() -> None:
    if _prometheus is not None:
        _prometheus.stall_restarts.inc()


@_never_raises
def count_offset_reset(topic: str, partition: int, reason: str) -> None:
    if _prometheus is not None:
        _prometheus.offset_resets.labels(topic=topic, partition=str(partition), reason=reason).inc()


def _cloudwatch(name: str, value: float, dimensions: dict[str, str], unit: str = "Count") -> None:
    """One embedded-metric-format line, only inside a Lambda invocation with metrics enabled."""
    if not _in_lambda_invocation.get():
        return

    from aws_lambda_powertools import single_metric
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if is_metrics_disabled():
        return
    with single_metric(name=name, unit=MetricUnit(unit), value=value, namespace=namespace()) as metric:
        for key, dim in dimensions.items():
            metric.add_dimension(name=key, value=dim or "none")


# --- the Lambda wrapper --------------------------------------------------------------------------


@dataclass
class LocalContext:
    """What Powertools reads from a LambdaContext, for a handler called outside Lambda (the poller)."""

    function_name: str = "local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "local"
    log_stream_name: str = "local"
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:local"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def lambda_entry(
    service: str, *, correlation_id_path: str | None = None
) -> Callable[[LambdaHandler], LambdaHandler]:
    """Wrap a Lambda handler: Powertools logger context, an OpenTelemetry span (common.adapters.tracing:
    one per batch or request), and a metrics flush per invocation.

    Used by every function (HTTP and Kafka alike). Built at import time without I/O. A handler
    called without a context (the local poller) gets a stand-in, so it runs the same code path.
    """
    from aws_lambda_powertools import Logger, Metrics

    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    powertools_logger = Logger(service=service)
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

        # Our modules' log lines as Powertools JSON with the correlation id. Only inside Lambda:
        # it detaches those loggers from the root logger, which test runners rely on.
        copy_config_to_registered_loggers(
            source_logger=powertools_logger, include={"common", "functions", "mangum"}
        )
    metrics = Metrics(namespace=namespace(), service=service)

    def wrap(handler: LambdaHandler) -> LambdaHandler:
        @powertools_logger.inject_lambda_context(correlation_id_path=correlation_id_path)
        @metrics.log_metrics(capture_cold_start_metric=True, raise_on_empty_metrics=False)
        def traced(event: dict[str, Any], context: Any) -> Any:
            with _invocation(), tracing.span(service, {"faas.invocation_id": context.aws_request_id}):
                return handler(event, context)

        @functools.wraps(handler)
        def entry(event: dict[str, Any], context: Any = None) -> Any:
            return traced(event, context if context is not None else LocalContext(function_name=service))

        return entry

    return wrap


@contextmanager
def _invocation() -> Iterator[None]:
    token = _in_lambda_invocation.set(True)
    try:
        yield
    finally:
        _in_lambda_invocation.reset(token)


if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # `make run`'s processes (workers and pollers, functions/local_app/serve.py) share one metrics
    # directory: each of them exports to it, whichever entry point it runs.
    enable_prometheus()
