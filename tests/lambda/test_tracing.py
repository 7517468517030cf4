"""OpenTelemetry spans (common/adapters/tracing.py): one per Kafka batch with its outcome counts,
exported over OTLP/HTTP to the endpoint configured, nothing at all without one."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from common.adapters import tracing
from common.adapters.tracing import spans
from functions.ingest_kafka.handler import handler as ingest_handler
from tests.e2e.support import PROJECT_ROOT


class Collector:
    """An OTLP/HTTP trace receiver on 127.0.0.1: the spans it was sent."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[Any]:
        found = []
        for raw in self.requests:
            request = ExportTraceServiceRequest()
            request.ParseFromString(raw)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    found.extend(scope.spans)
        return found


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    running = Collector()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", running.url)
    tracing.reset()
    yield running
    tracing.reset()
    running.server.shutdown()


def sample_batch() -> dict[str, Any]:
    event: dict[str, Any] = json.loads((PROJECT_ROOT / "infra" / "events" / "msk.json").read_text())
    topic = f"traced-{uuid.uuid4().hex[:8]}"
    event["records"] = {
        f"{topic}-{key.rsplit('-', 1)[1]}": [{**r, "topic": topic} for r in chunk]
        for key, chunk in event["records"].items()
    }
    return event


def test_one_span_per_kafka_batch_with_its_outcome_counts(collector: Collector, database_url: str) -> None:
    event = sample_batch()
    records = sum(len(chunk) for chunk in event["records"].values())
    assert ingest_handler(event, None) == {"batchItemFailures": []}
    tracing.flush()
    (span,) = [s for s in collector.spans() if s.name == "ingest_kafka"]
    counts = {a.key: a.value.int_value for a in span.attributes if a.key.startswith("warehouse.events.")}
    assert counts["warehouse.events.rejected.invalid"] == 1  # the poison record, parked
    assert sum(counts.values()) == records


def test_no_endpoint_no_tracing(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    tracing.reset()
    assert not tracing.enabled()
    assert ingest_handler(sample_batch(), None) == {"batchItemFailures": []}
    assert spans._provider is None  # the SDK was never set up
