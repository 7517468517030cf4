"""The request latency histogram: observations gathered per loop iteration count as one by one."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Histogram

from common.adapters import observability

# Every bucket's edge, values between edges, past the last finite one, and repeats.
VALUES = [0.0, 0.0004, 0.001, 0.0011, 0.0025, 0.003, 0.003, 0.07, 0.1, 0.9, 4.0, 10.0, 12.5, 0.0011]


def _samples(histogram: Histogram, route: str) -> dict[tuple[str, str, str], float]:
    return {
        (sample.labels["method"], sample.name.rsplit("_", 1)[-1], sample.labels.get("le", "")): sample.value
        for metric in histogram.collect()
        for sample in metric.samples
        if sample.labels.get("route") == route and not sample.name.endswith("_created")
    }


def test_latencies_observed_on_an_event_loop_make_the_same_histogram_as_single_observations() -> None:
    observability.enable_prometheus()
    live = observability._prometheus
    assert live is not None
    reference = Histogram(
        "reference_seconds", "", ["method", "route", "status"], registry=CollectorRegistry(),
        buckets=live.http_seconds._upper_bounds[:-1],
    )  # fmt: skip
    route = "/test/latency-batching"

    async def requests() -> None:
        for value in VALUES:
            observability.observe_http("GET", route, 200, value)
        observability.observe_http("POST", route, 503, 0.2)
        await asyncio.sleep(0)  # one loop iteration: the gathered observations are written

    asyncio.run(requests())
    for value in VALUES:
        reference.labels(method="GET", route=route, status="200").observe(value)
    reference.labels(method="POST", route=route, status="503").observe(0.2)
    observed = _samples(live.http_seconds, route)
    assert observed == _samples(reference, route)
    assert observed[("GET", "count", "")] == len(VALUES)
    assert observed[("POST", "count", "")] == 1


def test_a_latency_observed_outside_an_event_loop_is_written_at_once() -> None:
    observability.enable_prometheus()
    live = observability._prometheus
    assert live is not None
    observability.observe_http("GET", "/test/no-loop", 200, 0.002)
    assert _samples(live.http_seconds, "/test/no-loop")[("GET", "count", "")] == 1
