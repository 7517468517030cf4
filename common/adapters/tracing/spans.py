"""Traces with OpenTelemetry: one span per Lambda invocation (a Kafka batch, an HTTP request) and per
request of the local app, carrying the outcome counts of the events it decided.

Why not Powertools' Tracer: it is built on the AWS X-Ray SDK, whose support ends on 2027-02-25.
Off unless an OTLP endpoint is configured, and then exported over OTLP/HTTP by the OpenTelemetry
SDK: in Lambda to the AWS Distro for OpenTelemetry collector layer (template.yaml
`OtelCollectorLayerArn`, which sets OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 and forwards
to X-Ray), locally to any collector (OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, the SDK's standard variables; OTEL_SERVICE_NAME names the
service). Like the metrics, a span can never fail the work it traces: setup and export errors are
logged, and in Lambda the spans of an invocation are flushed before it returns (the environment is
frozen afterwards).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

logger = logging.getLogger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
OUTCOME_ATTRIBUTE = "warehouse.events"

_provider: Any = None
_tracer: Any = None
_setup_done = False
_current: ContextVar[Any] = ContextVar("warehouse_span", default=None)


def enabled() -> bool:
    """Is an OTLP endpoint configured (checked per call: cheap, and tests set it)?"""
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def _setup() -> Any:
    """The tracer, built once with the SDK's OTLP/HTTP exporter; None when off or broken."""
    global _provider, _tracer, _setup_done
    if _setup_done:
        return _tracer
    _setup_done = True
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        service = os.environ.get("OTEL_SERVICE_NAME") or os.environ.get(
            "POWERTOOLS_SERVICE_NAME", "warehouse-stock"
        )
        attributes = {"service.name": service}
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            attributes["faas.name"] = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        _provider = TracerProvider(resource=Resource.create(attributes))
        _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _tracer = _provider.get_tracer("warehouse-stock")
    except Exception:
        logger.warning("tracing: OpenTelemetry setup failed, no spans", exc_info=True)
        _tracer = None
    return _tracer


@contextmanager
def span(name: str, attributes: Mapping[str, str | int] | None = None) -> Iterator[None]:
    """One span around the work of the block (nothing at all when tracing is off)."""
    tracer = _setup() if enabled() else None
    if tracer is None:
        yield
        return
    from opentelemetry.trace import Status, StatusCode

    with tracer.start_as_current_span(name, attributes=dict(attributes or {})) as current:
        token = _current.set(current)
        try:
            yield
        except Exception as exc:
            current.record_exception(exc)
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            _current.reset(token)
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        flush()


def add_outcome_counts(counts: Mapping[str, int]) -> None:
    """Add `warehouse.events.<outcome>[.<reason>]` counts to the current span (if any)."""
    current = _current.get()
    if current is None:
        return
    try:
        existing = getattr(current, "attributes", None) or {}
        for key, n in counts.items():
            name = f"{OUTCOME_ATTRIBUTE}.{key}"
            current.set_attribute(name, int(existing.get(name, 0)) + n)
    except Exception:
        logger.warning("tracing: recording outcome counts failed", exc_info=True)


def flush(timeout_millis: int = 2000) -> None:
    """Export the spans ended so far (Lambda freezes the environment once the handler returns)."""
    if _provider is not None:
        try:
            _provider.force_flush(timeout_millis)
        except Exception:
            logger.warning("tracing: flushing spans failed", exc_info=True)


def reset() -> None:
    """Forget the tracer (tests that change the endpoint)."""
    global _provider, _tracer, _setup_done
    if _provider is not None:
        _provider.shutdown()
    _provider, _tracer, _setup_done = None, None, False
