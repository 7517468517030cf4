"""Prometheus metrics shared by every local entry point (HTTP app and Kafka poller).

The collectors live in the default registry of the process, which the local app exposes on
GET /metrics. In a Lambda container nobody scrapes them: the handlers also report outcomes to
CloudWatch through the listeners registered with `add_outcome_listener`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import Counter, Gauge, Histogram

from common.events import Origin
from common.ledger import Outcome

EVENTS = Counter(
    "warehouse_events",
    "Movement events received, by outcome (applied, duplicate, rejected), reject reason and origin.",
    ["outcome", "reason", "origin"],
)

HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route template, method and status code.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

POLLER_LAG = Gauge(
    "warehouse_poller_lag",
    "Records the local Kafka poller has yet to consume, summed over its assigned partitions.",
)
# The name the poller imports.
warehouse_poller_lag = POLLER_LAG

# (kafka branch) Positions the local poller moved on purpose instead of letting the client
# silently reset them: a topic deleted and created again, an offset outside the log, no
# committed offset yet. Incremented by functions/local_app/poller.py.
POLLER_OFFSET_RESETS = Counter(
    "warehouse_poller_offset_resets",
    "Partitions the local Kafka poller re-positioned, by topic, partition and reason "
    "(topic_recreated, beyond_log_end, before_log_start, log_truncated, no_committed_offset).",
    ["topic", "partition", "reason"],
)

OutcomeListener = Callable[[str, str, str], None]
_listeners: list[OutcomeListener] = []


def add_outcome_listener(listener: OutcomeListener) -> None:
    """Also call `listener(outcome, reason, origin)` for each recorded event (Lambda -> CloudWatch)."""
    if listener not in _listeners:
        _listeners.append(listener)


def record_outcomes(outcomes: Iterable[Outcome], origin: Origin | str) -> None:
    """Count each outcome once; `reason` is "" for applied and duplicate events."""
    origin_kind = origin if isinstance(origin, str) else origin.kind
    for outcome in outcomes:
        reason = outcome.reason or ""
        EVENTS.labels(outcome=outcome.status, reason=reason, origin=origin_kind).inc()
        for listener in _listeners:
            listener(outcome.status, reason, origin_kind)


def set_poller_lag(lag: int) -> None:
    """The poller's total lag (end offsets minus positions) after each poll."""
    POLLER_LAG.set(lag)
