"""A record batch the client cannot decode stops its partition only, never the poller.

kafka-python 3.0.12 unpacks a fetched batch in a generator (`Fetcher.PartitionRecords`). When
unpacking raises (a codec that is not installed, a CRC mismatch, corrupt bytes), `poll()` raises
once; the generator is then dead but its `PartitionRecords` stays truthy, so every later
`fetched_records()` loops forever on `take()` returning `[]` without moving: one core at 100 %,
every partition of the consumer stopped, a stop request never seen.

`guard(consumer)` makes the fetcher build `GuardedPartitionRecords` instead: the first failure
drains the records (so the fetcher moves on to the other partitions) and raises
`UndecodableBatch`, which names the partition, the offset the consumer stands at, the batch's
last offset (read from the batch header, which is never compressed) and the reason. The poller
then pauses that partition (functions/local_app/poller/loop.py) until an operator resumes or
skips it. Reaching into the fetcher is unavoidable here: the defect is inside it; a version
without these attributes is left alone (and the undecodable-batch test fails loudly).
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("functions.local_app.poller")


class UndecodableBatch(Exception):
    """The client could not unpack the batch at `offset` of `tp`: the partition must stop there."""

    def __init__(self, tp: Any, offset: int, last_offset: int | None, reason: str, raw: bytes | None) -> None:
        super().__init__(f"{tp.topic}-{tp.partition} at offset {offset}: {reason}")
        self.tp = tp
        self.offset = offset
        self.last_offset = last_offset
        self.reason = reason
        self.raw = raw


def _batch_at(raw: bytes | None, offset: int) -> tuple[int | None, bytes | None]:
    """(last offset, bytes) of the batch of `raw` holding `offset`, from the uncompressed headers."""
    if not raw:
        return None, None
    try:
        from kafka.record.memory_records import MemoryRecords

        records = MemoryRecords(raw)
        while True:
            batch = records.next_batch()
            if batch is None:
                return None, None
            last = int(batch.last_offset)
            if last >= offset:
                # The batch's bytes as fetched (nothing of it was decompressed yet).
                return last, bytes(getattr(batch, "_buffer", b"")) or None
    except Exception:  # a header too corrupt to read: the caller skips one offset at a time
        logger.debug("reading the undecodable batch's header failed", exc_info=True)
        return None, None


def guard(consumer: Any) -> bool:
    """Make `consumer`'s fetcher raise `UndecodableBatch` instead of spinning; False if it cannot."""
    fetcher = getattr(consumer, "_fetcher", None)
    base = getattr(fetcher, "PartitionRecords", None)
    if fetcher is None or base is None or not hasattr(base, "take"):
        logger.warning(
            "kafka-python's fetcher is not the one this guard knows: undecodable batches unguarded"
        )
        return False

    class GuardedPartitionRecords(base):  # type: ignore[misc, valid-type]
        def __init__(self, fetch_offset: int, tp: Any, records: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(fetch_offset, tp, records, *args, **kwargs)
            buffer = getattr(records, "_buffer", None)
            self.raw_records = bytes(buffer) if buffer is not None else None

        def take(self, n: int | None = None) -> list[Any]:
            try:
                taken: list[Any] = super().take(n)
            except Exception as exc:
                offset = int(self.next_fetch_offset)
                last, raw = _batch_at(self.raw_records, offset)
                self.drain()  # dead generator: let the fetcher move on to the other partitions
                raise UndecodableBatch(
                    self.topic_partition, offset, last, f"{type(exc).__name__}: {exc}", raw
                ) from exc
            return taken

    fetcher.PartitionRecords = GuardedPartitionRecords
    return True
