"""The seam for a pipelined poller (common/intake/apply_ahead.py), without services.

`decode_polled` must give exactly what the Lambda-shaped path gives for the same poll (same items,
same order, same record identities), or a poller switching to it would park or dedupe differently;
`ApplyAhead` must keep one batch in flight, in order, and hand a failure back with its token.
"""

from __future__ import annotations

import json
import threading

import pytest
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition

from common.intake import kafka_records as kafka_batch
from common.intake.apply_ahead import ApplyAhead, ApplyFailed, decode_polled
from common.intake.kafka_records import BatchResult, DecodedBatch, decode_records
from functions.local_app.poller import build_event

pytestmark = pytest.mark.unit

SERVERS = "127.0.0.1:9092"


def record(
    tp: TopicPartition, offset: int, timestamp: int, value: bytes | None, key: bytes | None
) -> ConsumerRecord:
    return ConsumerRecord(tp.topic, tp.partition, 0, offset, timestamp, 0, key, value, [], None, -1, -1, -1)


def envelope(n: int) -> bytes:
    return json.dumps(
        {
            "id": f"00000000-0000-4000-8000-{n:012x}", "source": "WH-1", "specversion": "1.0",
            "type": "ru.retail.warehouses.movement",
            "data": {
                "movement_id": f"10000000-0000-4000-8000-{n:012x}",
                "warehouse_id": "25718666-6af6-4281-b5a6-3016e36fa557",
                "product_id": "4705204f-498f-4f96-b4ba-df17fb56bf55",
                "event": "arrival", "quantity": n + 1, "timestamp": "2025-02-18T12:12:56Z",
            },
        }
    ).encode()  # fmt: skip


def test_decoding_a_poll_directly_equals_the_lambda_shaped_path() -> None:
    a, b = TopicPartition("movements", 0), TopicPartition("movements", 1)
    polled = {
        a: [record(a, 5, 100, envelope(1), b"wh-1"), record(a, 6, 300, b"not json", None),
            record(a, 7, 500, None, b"k")],
        b: [record(b, 2, 200, envelope(2), b"wh-2"), record(b, 3, 400, envelope(3), "é".encode())],
    }  # fmt: skip
    event = build_event(polled, SERVERS)
    via_lambda = decode_records(kafka_batch.ordered_records(event["records"]), kafka_batch.cluster_of(event))
    direct = decode_polled(polled, kafka_batch.cluster_of(event))

    def shape(batch: DecodedBatch) -> list[tuple[object, ...]]:
        return [(i.raw, i.origin, i.digest, i.is_valid, [e["type"] for e in i.errors]) for i in batch.items]

    assert shape(direct) == shape(via_lambda)
    assert [i.origin.offset for i in direct.items] == [5, 2, 6, 3, 7], "merged by timestamp, offsets in order"


def is_busy(ahead: ApplyAhead) -> bool:
    return ahead.busy  # a call, not an attribute: mypy would keep the narrowing of `assert ahead.busy`


def batch(n: int) -> DecodedBatch:
    return DecodedBatch([], float(n))


def test_one_batch_in_flight_applied_in_order_and_submit_does_not_wait_for_it() -> None:
    release = threading.Event()
    applied: list[float] = []

    def apply(decoded: DecodedBatch) -> BatchResult:
        assert release.wait(10), "submit() waited for the apply: no overlap"
        applied.append(decoded.started)
        return BatchResult([], [], 0.0)

    ahead = ApplyAhead(apply)
    try:
        ahead.submit(batch(1), token="first")
        assert is_busy(ahead)
        with pytest.raises(RuntimeError):
            ahead.submit(batch(2), token="second")  # the next one waits for the first
        release.set()  # the caller's work (decoding the next batch) happened while it applied
        finished = ahead.wait()
        assert finished is not None and finished.token == "first"
        ahead.submit(batch(2), token="second")
        assert (finished := ahead.wait()) is not None and finished.token == "second"
        assert ahead.wait() is None and not is_busy(ahead)
    finally:
        ahead.close()
    assert applied == [1.0, 2.0]


def test_a_failed_batch_comes_back_with_its_token_and_the_next_can_go() -> None:
    def apply(decoded: DecodedBatch) -> BatchResult:
        if decoded.started == 1.0:
            raise ConnectionError("database unreachable")
        return BatchResult([], [], 0.0)

    ahead = ApplyAhead(apply)
    try:
        ahead.submit(batch(1), token={"partition-0": [1, 2]})
        with pytest.raises(ApplyFailed) as failed:
            ahead.wait()
        assert failed.value.token == {"partition-0": [1, 2]}
        assert isinstance(failed.value.cause, ConnectionError)
        assert not ahead.busy
        ahead.submit(batch(2), token="retry")
        assert (finished := ahead.wait()) is not None and finished.token == "retry"
    finally:
        ahead.close()
