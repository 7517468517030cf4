"""The fetcher guard (functions/local_app/poller/undecodable.py) on batches kafka-python cannot unpack.

No broker: kafka-python's own record builder makes a batch, a byte of it is flipped (a CRC
mismatch) or its codec hidden, and the guarded `PartitionRecords` must raise `UndecodableBatch`
with the partition, the offset and the batch's last offset once, then be drained (falsy), where
kafka-python's own stays truthy and returns nothing forever (the spin of issue 19).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kafka.consumer.fetcher import Fetcher
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder
from kafka.structs import TopicPartition

from functions.local_app.poller.undecodable import UndecodableBatch, guard

TP = TopicPartition("movements", 1)


def batch_bytes(base: int, values: list[bytes], compression: int = 0) -> bytes:
    builder = MemoryRecordsBuilder(magic=2, compression_type=compression, batch_size=1 << 20, offset=base)
    for value in values:
        builder.append(timestamp=1_700_000_000_000, key=None, value=value)
    builder.close()
    return bytes(builder.buffer())


def guarded(raw: bytes, fetch_offset: int) -> Any:
    fetcher = SimpleNamespace(PartitionRecords=Fetcher.PartitionRecords)
    assert guard(SimpleNamespace(_fetcher=fetcher))
    return fetcher.PartitionRecords(fetch_offset, TP, MemoryRecords(raw), check_crcs=True)


def test_a_crc_mismatch_raises_once_with_its_coordinates_and_drains() -> None:
    good = batch_bytes(10, [b"a", b"b"])
    bad = bytearray(batch_bytes(12, [b"c", b"d", b"e"]))
    bad[-1] ^= 0xFF  # a flipped byte in the last record: the batch's CRC no longer matches
    part = guarded(good + bytes(bad), 10)

    assert [r.value for r in part.take(10)] == [b"a", b"b"]  # the good batch before it
    with pytest.raises(UndecodableBatch) as raised:
        part.take(10)
    assert (raised.value.tp, raised.value.offset, raised.value.last_offset) == (TP, 12, 14)
    assert "crc" in raised.value.reason.lower()
    assert raised.value.raw == bytes(bad)  # what a skip keeps as the dead letter's payload
    assert not part  # drained: the fetcher moves on to the other partitions


def test_unguarded_kafka_python_keeps_a_dead_batch_forever() -> None:
    """Why the guard exists: without it the same batch stays truthy and yields nothing, forever."""
    bad = bytearray(batch_bytes(0, [b"x"]))
    bad[-1] ^= 0xFF
    part = Fetcher.PartitionRecords(0, TP, MemoryRecords(bytes(bad)), check_crcs=True)
    with pytest.raises(Exception, match="crc"):
        part.take(10)
    assert part and part.take(10) == [] and part.next_fetch_offset == 0


def test_a_codec_that_is_not_installed_is_undecodable(monkeypatch: pytest.MonkeyPatch) -> None:
    import kafka.codec as codec

    raw = batch_bytes(5, [b"z" * 200] * 4, compression=4)  # zstd (compressible, so it is compressed)
    monkeypatch.setattr(codec, "zstd", None)
    with pytest.raises(UndecodableBatch) as raised:
        guarded(raw, 5).take(10)
    assert (raised.value.offset, raised.value.last_offset) == (5, 8)
    assert "zstd" in raised.value.reason
