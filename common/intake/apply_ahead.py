"""Consuming Kafka with the CPU and the database both busy: decode batch N+1 while batch N commits.

A poller that polls, decodes, applies and commits in turn leaves its core idle while PostgreSQL
works and PostgreSQL idle while it decodes: in a batch of 1,000 an event costs ~75 us of Python
and ~150 us of wall time (measured in-process on the development machine). `ApplyAhead` applies one
batch at a time on a thread of its own while the caller polls and decodes the next one; decoding
holds the GIL, waiting on PostgreSQL does not, so the two overlap. At most one batch is in flight:
batches are applied in the order they were polled, each in one transaction, as before.

`decode_polled` turns what kafka-python's `poll()` returns straight into `IncomingEvent`s (no
base64 round trip through the Lambda event shape), in the order `kafka_batch.ordered_records`
gives a Lambda batch, with the same record identities when given the same cluster name.

The poller's loop with it (what `functions/local_app/poller/loop.py` would do):

    ahead = ApplyAhead()
    while not stopping:
        polled = consumer.poll(...)
        decoded = decode_polled(polled, cluster) if polled else None   # overlaps batch N's commit
        try:
            finished = ahead.wait()                # batch N: its result, or ApplyFailed
        except ApplyFailed as failed:              # nothing of N, nor of the batch polled since, is
            seek every partition of failed.token and of `polled` back to its first offset
            back off; continue                     # applied: both come again, `decoded` is dropped
        if finished is not None:
            consumer.commit(the next offsets of finished.token)
        if decoded is not None:
            ahead.submit(decoded, token=polled)    # batch N+1 starts committing
    on stop: ahead.wait() and commit as above, then ahead.close() and close the consumer
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from common.intake.kafka_records import BatchResult, DecodedBatch, apply_decoded, decode_consumer_records

logger = logging.getLogger(__name__)


def decode_polled(polled: Mapping[Any, Sequence[Any]], cluster: str | None = None) -> DecodedBatch:
    """kafka-python ConsumerRecords (per partition, as `poll()` returns them) decoded and validated."""
    return decode_consumer_records(polled, cluster)


class ApplyFailed(Exception):
    """The batch in flight failed (nothing of it was applied); `token` says which one it was."""

    def __init__(self, token: Any, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.token = token
        self.cause = cause


@dataclass(frozen=True)
class Finished:
    """A batch applied and committed to the database: its token (say, the polled records) and result."""

    token: Any
    result: BatchResult


class ApplyAhead:
    """Apply one decoded batch at a time on a background thread; the caller decodes the next."""

    def __init__(self, apply: Callable[[DecodedBatch], BatchResult] = apply_decoded) -> None:
        self._apply = apply
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-apply")
        self._pending: tuple[Any, Future[BatchResult]] | None = None

    @property
    def busy(self) -> bool:
        """A batch is in flight (submitted, not yet collected by `wait`)."""
        return self._pending is not None

    def submit(self, batch: DecodedBatch, token: Any = None) -> None:
        """Start applying `batch`; `wait` for the one in flight first (batches stay in order)."""
        if self._pending is not None:
            raise RuntimeError("a batch is in flight: wait() for it before submitting the next")
        self._pending = (token, self._executor.submit(self._apply_and_count, batch))

    def wait(self) -> Finished | None:
        """The batch in flight once applied (None if there is none); raises ApplyFailed if it failed."""
        if self._pending is None:
            return None
        token, future = self._pending
        self._pending = None
        try:
            return Finished(token, future.result())
        except Exception as exc:
            raise ApplyFailed(token, exc) from exc

    def close(self) -> None:
        """Finish the batch in flight (its outcome is the caller's to collect first) and stop the thread."""
        self._executor.shutdown(wait=True)

    def _apply_and_count(self, batch: DecodedBatch) -> BatchResult:
        try:
            return self._apply(batch)
        except Exception:
            logger.warning("kafka batch of %d records failed", len(batch.items), exc_info=True)
            raise
