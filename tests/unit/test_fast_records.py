"""The one-pass batch reader (functions/local_app/poller/fast_records.py) against kafka-python's own.

No broker: kafka-python's record builder makes the fetched bytes (several batches, compressed or
not, keys, values and headers present, empty or absent, timestamps of either type), optionally
damaged; the fetcher's `PartitionRecords` then reads them once with kafka-python's iteration and
once through `fast_records.batches`, and both must give the same `ConsumerRecord`s, positions and
counters, and fail the same way where they fail.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.consumer.fetcher import ConsumerRecord, Fetcher
from kafka.protocol.consumer import IsolationLevel
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder
from kafka.record.util import calc_crc32c
from kafka.structs import TopicPartition

from functions.local_app.poller import fast_records
from functions.local_app.poller.undecodable import guard

TP = TopicPartition("movements", 3)

payloads = st.none() | st.binary(max_size=300)
headers = st.lists(st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=20)), max_size=3)
records = st.tuples(payloads, payloads, headers, st.integers(0, 10**6))
batches = st.tuples(st.lists(records, min_size=1, max_size=150), st.sampled_from([0, 1, 2, 3, 4]))


def fetched(spec: list[tuple[list[Any], int]], base: int, append_time: bool) -> bytes:
    raw = b""
    for rows, compression in spec:
        builder = MemoryRecordsBuilder(magic=2, compression_type=compression, batch_size=1 << 24, offset=base)
        for key, value, hdrs, ts in rows:
            builder.append(timestamp=1_700_000_000_000 + ts, key=key, value=value, headers=hdrs)
        builder.close()
        batch = bytearray(builder.buffer())
        if append_time:  # the broker's LOG_APPEND_TIME: attribute bit 3, and the CRC over it again
            batch[22] |= 0x08
            batch[17:21] = calc_crc32c(bytes(batch[21:])).to_bytes(4, "big")
        raw += bytes(batch)
        base += len(rows)
    return raw


class FastPartitionRecords(Fetcher.PartitionRecords):  # type: ignore[misc]
    """kafka-python's, unpacking as the poller's guarded fetcher does (undecodable.guard)."""

    def _unpack_records(self, tp: Any, records: Any, key_deserializer: Any, value_deserializer: Any) -> Any:
        return fast_records.unpack_records(self, tp, records)


def read_all(
    raw: bytes, fetch_offset: int, fast: bool, check_crcs: bool = False, **options: Any
) -> tuple[list[Any], str | None, tuple[int, ...]]:
    kind = FastPartitionRecords if fast else Fetcher.PartitionRecords
    part = kind(fetch_offset, TP, MemoryRecords(raw), check_crcs=check_crcs, **options)
    taken: list[Any] = []
    failure = None
    try:
        while part:
            chunk = part.take(37)
            taken += chunk
            if not chunk and part:
                break
    except Exception as exc:
        failure = f"{type(exc).__name__}: {exc}"
    return taken, failure, (part.next_fetch_offset, part.records_read, part.bytes_read, part.leader_epoch)


def test_this_kafka_python_is_the_one_read_here() -> None:
    assert fast_records.SUPPORTED  # else every batch silently takes kafka-python's slower path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(batches, min_size=1, max_size=4), st.integers(0, 50), st.booleans(), st.booleans())
def test_the_same_records_as_kafka_python(
    spec: list[tuple[list[Any], int]], skip: int, append: bool, crcs: bool
) -> None:
    raw = fetched(spec, 100, append)
    expected = read_all(raw, 100 + skip, fast=False, check_crcs=crcs)
    assert expected[1] is None
    assert all(type(r) is ConsumerRecord for r in expected[0])
    assert read_all(raw, 100 + skip, fast=True, check_crcs=crcs) == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(batches, min_size=1, max_size=3), st.data())
def test_a_damaged_fetch_fails_as_kafka_python_fails(spec: list[tuple[list[Any], int]], data: Any) -> None:
    raw = bytearray(fetched(spec, 0, False))
    for _ in range(data.draw(st.integers(1, 3))):  # a record's bytes or a header's (its count)
        at = data.draw(st.integers(57, len(raw) - 1) | st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(61, len(raw)))]  # a fetch cut short
    crcs = data.draw(st.booleans())
    assert read_all(bytes(raw), 0, fast=True, check_crcs=crcs) == read_all(
        bytes(raw), 0, fast=False, check_crcs=crcs
    )


def test_the_poller_s_fetcher_reads_plain_batches_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = fetched([([(b"k", b"v", [], 0), (None, None, [("h", None)], 1)], 0)], 7, False)
    calls: list[int] = []
    real = fast_records.read_batch

    def counted(batch: Any, tp: Any, leader_epoch: int) -> Any:
        calls.append(batch.last_offset)
        return real(batch, tp, leader_epoch)

    monkeypatch.setattr(fast_records, "read_batch", counted)
    fetcher = SimpleNamespace(PartitionRecords=Fetcher.PartitionRecords)
    assert guard(SimpleNamespace(_fetcher=fetcher))
    part = fetcher.PartitionRecords(7, TP, MemoryRecords(raw), check_crcs=True)
    taken = part.take(10)
    assert calls == [8]
    assert [(r.offset, r.key, r.value, r.headers) for r in taken] == [
        (7, b"k", b"v", []),
        (8, None, None, [("h", None)]),
    ]


@pytest.mark.parametrize("cut", [1, 5, 30])
def test_a_truncated_batch_is_left_to_kafka_python(cut: int) -> None:
    raw = fetched([([(b"k", b"value", [], 0)] * 3, 0)], 0, False)
    batch = DefaultRecordBatch(bytearray(raw[:-cut]))
    assert fast_records.read_batch(batch, TP, 0) is None


@pytest.mark.parametrize("count", [0, 1, 2, 4])
def test_a_header_counting_other_than_the_records_held_fails_as_kafka_python_fails(count: int) -> None:
    raw = bytearray(fetched([([(b"k", b"value", [("h", b"1")], 0)] * 3, 0)], 0, False))
    raw[57:61] = count.to_bytes(4, "big")  # the batch's record count
    fast = read_all(bytes(raw), 0, fast=True)
    assert fast == read_all(bytes(raw), 0, fast=False)
    assert fast[1] is not None  # kafka-python's CorruptRecordError, from its own reading


@pytest.mark.parametrize(
    ("at", "byte"),
    [(61, None), (-1, 0x01), (-1, 0x03)],  # the first record's length; the last one's header count: -1, -2
    ids=["record-size", "header-count-minus-1", "header-count-minus-2"],
)
def test_a_record_kafka_python_refuses_is_refused_the_same_way(at: int, byte: int | None) -> None:
    raw = bytearray(fetched([([(b"k", b"v", [], 0)] * 3, 0)], 0, False))
    raw[at] = raw[at] + 2 if byte is None else byte  # zigzag: one more byte than it holds
    fast = read_all(bytes(raw), 0, fast=True)
    assert fast == read_all(bytes(raw), 0, fast=False)
    assert fast[1] is not None and "CorruptRecordError" in fast[1]


def transactional(
    base: int, producer_id: int, rows: list[tuple[bytes | None, bytes | None]], control: bool = False
) -> bytes:
    builder = MemoryRecordsBuilder(
        magic=2, compression_type=0, batch_size=1 << 20, offset=base, transactional=True,
        producer_id=producer_id, producer_epoch=0, base_sequence=0,
    )  # fmt: skip
    for key, value in rows:
        builder.append(timestamp=1_700_000_000_000, key=key, value=value)
    builder.close()
    batch = bytearray(builder.buffer())
    if control:  # a transaction marker: the attributes' control bit, and the CRC over it again
        batch[22] |= 0x20
        batch[17:21] = calc_crc32c(bytes(batch[21:])).to_bytes(4, "big")
    return bytes(batch)


def test_read_committed_skips_aborted_transactions_and_markers_as_kafka_python_does() -> None:
    """The poller reads with isolation_level=read_committed (common/adapters/kafka_settings.py)."""
    abort_marker = (b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00")  # version 0, type 0: abort
    commit_marker = (b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x00")
    raw = (
        transactional(0, 7, [(b"k", b"aborted-1"), (b"k", b"aborted-2")])
        + transactional(2, 8, [(b"k", b"committed-1")])
        + transactional(3, 7, [abort_marker], control=True)
        + transactional(4, 8, [commit_marker], control=True)
        + fetched([([(b"k", b"plain", [], 0)], 0)], 5, False)
    )
    options = {
        "isolation_level": IsolationLevel.READ_COMMITTED,
        "aborted_transactions": [SimpleNamespace(producer_id=7, first_offset=0)],
    }
    expected = read_all(raw, 0, fast=False, check_crcs=True, **options)
    assert expected[1] is None
    assert [r.value for r in expected[0]] == [b"committed-1", b"plain"]
    assert read_all(raw, 0, fast=True, check_crcs=True, **options) == expected
