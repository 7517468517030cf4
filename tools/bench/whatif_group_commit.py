"""What-if for the webhook (`make bench BENCH_ARGS="--only http --whatif-group-commit"`): group commit.

Each webhook request is today one ledger transaction of ~10 round trips for one event. Here,
requests that arrive while a transaction is running queue up and go together into the next one:
the first caller leads, applies everything queued (in arrival order, so the ledger decides them
exactly as it would one by one), hands the lead to the oldest waiter and returns its own outcome.
Nobody waits on a timer: a lone request is applied at once, a crowd shares the cost.

Served as `tools.bench.whatif_group_commit:app` (the benchmark app with the webhook's `ingest`
wrapped); the project's code is not changed. The benchmark's exactly-once checks run as usual.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from common.events import IncomingEvent
from common.outcomes import Outcome
from tools.bench.bench_asgi import app

Ingest = Callable[[Sequence[IncomingEvent]], list[Outcome]]


class _Slot:
    __slots__ = ("done", "error", "items", "lead", "outcomes")

    def __init__(self, items: Sequence[IncomingEvent]) -> None:
        self.items = items
        self.done = threading.Event()
        self.lead = False
        self.outcomes: list[Outcome] | None = None
        self.error: BaseException | None = None


class GroupCommitter:
    """Wraps `ingest(items)`: concurrent callers share one call (one transaction)."""

    def __init__(self, ingest: Ingest, max_batch: int = 500) -> None:
        self._ingest = ingest
        self._max = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Slot] = []
        self._leading = False
        self.batches: list[int] = []

    def __call__(self, items: Sequence[IncomingEvent]) -> list[Outcome]:
        slot = _Slot(items)
        with self._lock:
            self._queue.append(slot)
            if not self._leading:
                self._leading = slot.lead = True
        if not slot.lead:
            slot.done.wait()  # woken with its outcomes, or to lead the next batch
        if slot.outcomes is None and slot.error is None:
            self._lead()
        if slot.error is not None:
            raise slot.error
        assert slot.outcomes is not None
        return slot.outcomes

    def _lead(self) -> None:
        with self._lock:
            batch: list[_Slot] = []
            count = 0
            while self._queue and (not batch or count + len(self._queue[0].items) <= self._max):
                batch.append(self._queue.pop(0))
                count += len(batch[-1].items)
        try:
            outcomes = self._ingest([item for s in batch for item in s.items])
            start = 0
            for s in batch:
                s.outcomes = outcomes[start : start + len(s.items)]
                start += len(s.items)
        except BaseException as exc:  # every request of the batch fails alike (503), none half-applied
            for s in batch:
                s.error = exc
        self.batches.append(count)
        with self._lock:
            successor = self._queue[0] if self._queue else None
            if successor is not None:
                successor.lead = True
            else:
                self._leading = False
        for s in batch[1:]:
            s.done.set()
        if successor is not None:
            successor.done.set()


def _install() -> None:
    import functions.webhook.routes as routes

    # The route module's own reference to common.service.ingest is what the route calls: replace it.
    ingest: Ingest = routes.ingest  # type: ignore[attr-defined]  # an import there, not an export
    if not isinstance(ingest, GroupCommitter):
        routes.ingest = GroupCommitter(ingest)  # type: ignore[attr-defined]  # same


_install()

__all__ = ["GroupCommitter", "app"]
