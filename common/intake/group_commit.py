"""Group commit for the webhook: concurrent requests share one ledger transaction.

One webhook event alone costs a whole ledger transaction (~10 round trips, ~3 ms of server CPU);
in a batch an event costs a fraction of that. So a request does not run its own transaction: it
queues its event, and the events queued while a transaction runs go together into the next one,
in arrival order, so the ledger decides them exactly as it would one at a time (a duplicate or a
conflict among them is decided against the ones before it). Nobody waits on a timer: a lone
request is applied at once, a crowd shares the cost. Each request gets its own outcome, the stock
right after its own event included.

A batch that fails (PostgreSQL down, lost races beyond the retries) applied nothing: every request
in it gets that error (the webhook answers each 503, Retry-After), never an outcome. Except when it
failed on a row lock or a statement timeout: that is one member's row held by someone else (an
operator's open transaction, say), not the database failing, so the members are tried again each in
a transaction of its own, a few at once: the others are applied, only the held row's requests get
the 503 (after a statement timeout only in a small group; a large one is answered 503 at once, not
turned into hundreds of transactions). Meanwhile the process is not held up: a group still running
after STALL_SECONDS lets the next one start beside it (MAX_IN_FLIGHT at most). (Concurrent
requests have no order among themselves; a caller who needs one waits for its answer before
sending the next.) Exactly-once holds as for any batch: the ledger makes a
repeated event a duplicate.

One committer per event loop (a uvicorn worker has one loop; Mangum and test clients their own),
one transaction in flight per committer as a rule (more only beside a stalled one), run in a
thread: the ledger is synchronous.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence

from psycopg import errors as pg_errors

from common.domain.events import IncomingEvent
from common.domain.outcomes import Outcome
from common.ledger import use_cases as service

Ingest = Callable[[Sequence[IncomingEvent]], list[Outcome]]

# Events per transaction at most (a webhook caller has one event in flight: the connections bound it).
MAX_BATCH = 500
# A group still running after this long is waiting on something (a row another transaction holds):
# the next group starts beside it instead of queueing behind it, so a held row delays its own
# requests, not every request of the process.
STALL_SECONDS = 0.25
# Groups in flight at once per committer at most (each holds a pooled connection).
MAX_IN_FLIGHT = 4
# A group refused on a row lock is tried again one member per transaction, this many at once.
FAN_OUT_CONCURRENCY = 4
# A statement timeout (DB_STATEMENT_TIMEOUT_MS, 15 s by default) is tried member by member only
# in a group this small: a larger one answers its error to each member (503, Retry-After) rather
# than run hundreds of transactions against a database that was too slow for one.
FAN_OUT_ON_TIMEOUT_MAX = 8

_Entry = tuple[IncomingEvent, asyncio.Future[Outcome]]

# Failures that name one member's row rather than the database: the others are tried alone.
ROW_CONTENTION = (pg_errors.LockNotAvailable, pg_errors.QueryCanceled)


class GroupCommit:
    """Queue events from concurrent requests of one event loop; apply each queue in one `ingest`."""

    def __init__(self, ingest: Ingest = service.ingest, max_batch: int = MAX_BATCH) -> None:
        self._ingest = ingest
        self._max = max_batch
        self._queue: list[_Entry] = []
        self._task: asyncio.Task[None] | None = None
        self._fan_out: asyncio.Semaphore | None = None
        self.batches = 0
        self.events = 0

    async def submit(self, item: IncomingEvent) -> Outcome:
        """Apply `item` with whatever else is queued; its outcome, or the batch's error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._queue.append((item, future))
        if self._task is None:
            self._task = loop.create_task(self._commit_queued())
        return await future

    async def _commit_queued(self) -> None:
        """Start the queued events as a group once the group before is done or stalled."""
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while self._queue or in_flight:
                if self._queue and len(in_flight) < MAX_IN_FLIGHT:
                    batch, self._queue = self._queue[: self._max], self._queue[self._max :]
                    # A request cancelled before its batch started is left out: it was never applied.
                    group = [entry for entry in batch if not entry[1].done()]
                    in_flight.add(asyncio.get_running_loop().create_task(self._commit(group)))
                # Done at once as a rule; a group still running after STALL_SECONDS lets the next start.
                _, in_flight = await asyncio.wait(
                    in_flight, timeout=STALL_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
        except BaseException:  # cancelled (shutdown): no request may wait forever
            for task in in_flight:
                task.cancel()
            for _, future in self._queue:
                future.cancel()
            self._queue = []
            raise
        finally:
            self._task = None

    async def _commit(self, batch: list[_Entry]) -> None:
        if not batch:
            return
        try:
            outcomes = await asyncio.to_thread(self._ingest, [item for item, _ in batch])
        except Exception as exc:  # nothing of the batch was applied
            if self._worth_fanning_out(batch, exc):
                # One member's row is held: each alone, so only its own requests get the error.
                await asyncio.gather(*(self._commit_alone(entry) for entry in batch))
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        self.batches += 1
        self.events += len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    @staticmethod
    def _worth_fanning_out(batch: list[_Entry], exc: Exception) -> bool:
        """Whether to try the members one by one: a row lock, or a statement timeout in a small group."""
        if len(batch) < 2 or not isinstance(exc, ROW_CONTENTION):
            return False
        return not isinstance(exc, pg_errors.QueryCanceled) or len(batch) <= FAN_OUT_ON_TIMEOUT_MAX

    async def _commit_alone(self, entry: _Entry) -> None:
        if self._fan_out is None:
            self._fan_out = asyncio.Semaphore(FAN_OUT_CONCURRENCY)
        async with self._fan_out:
            await self._commit([entry])


_committers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommit] = weakref.WeakKeyDictionary()


def committer() -> GroupCommit:
    """This event loop's committer."""
    loop = asyncio.get_running_loop()
    found = _committers.get(loop)
    if found is None:
        found = _committers[loop] = GroupCommit()
    return found


async def ingest_one(item: IncomingEvent) -> Outcome:
    """Apply one event in the next group commit of this event loop; its outcome."""
    return await committer().submit(item)
