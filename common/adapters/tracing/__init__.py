"""Traces with OpenTelemetry (one span per batch and per request, outcome counts, OTLP export; off
unless an endpoint is configured): the implementation is `spans`."""

from common.adapters.tracing.spans import ENDPOINT_VARIABLES, add_outcome_counts, enabled, flush, reset, span

__all__ = ["ENDPOINT_VARIABLES", "add_outcome_counts", "enabled", "flush", "reset", "span"]
