"""The movement ledger: applies validated events to stock, exactly once, never below zero.

`apply_events` decides a whole batch in one transaction and costs a fixed handful of statements
whatever the batch size:

1. look up which Kafka records of the batch an earlier delivery parked (`common.dead_letters.store`),
   and which departures wait for the stock the batch's arrivals raise;
2. lock the movement rows, then the stock rows, the batch touches (`SELECT ... FOR UPDATE`, each
   set in key order, so concurrent batches cannot deadlock);
3. decide every event in order against that state with the pure rules of `common.domain.rules`: exactly
   the outcome of applying the events one at a time;
4. write with set-based statements: COPY for the event log, `UPDATE ... FROM unnest` for rows that
   existed, `INSERT ... ON CONFLICT DO NOTHING` (in key order) for rows that did not; park the
   refusals, note the retried dead letters, count the outcomes.

A batch that is "clean" (every item valid, no Kafka record twice, none parked before: `_may_be_clean`
and `find_parked`) first tries the clean-batch lane, `tables.apply_clean`: one call of a SQL function
(migration 0008) that takes the same locks in the same order, decides set-based (a running stock
per key in batch order) and writes the same rows, if every event is new or an exact duplicate, no
departure goes below the stock and nothing waits on an arrival's stock. Otherwise it declines
having written nothing (its locks released with its subtransaction) and steps 1-4 run as above, in
the same transaction (after declines, the next batches skip the lane for a while: `_LaneGate`).
`common.domain.rules` stays the reference: tests/integration/ledger/
test_clean_lane.py compares the two on generated batches.

A row that did not exist could not be locked. If another transaction creates it first, our insert
skips it and the batch raises `LostRace`: `common.adapters.db.run_in_transaction`, the one retry loop, runs
it again against the new state (optimistic for new keys, pessimistic for existing ones). The
CHECK on stock.quantity is the last line of defence against a negative stock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from uuid import UUID

import psycopg
from psycopg.pq import TransactionStatus

from common.adapters.config import get_settings
from common.adapters.db import LostRace
from common.dead_letters import outbox
from common.dead_letters import store as dead_letters
from common.domain.events import IncomingEvent
from common.domain.frozen import frozen_built
from common.domain.movement import MovementData
from common.domain.outcomes import Outcome, Reason, Status
from common.domain.rules import (
    BatchDecisions,
    Candidate,
    Decision,
    StockKey,
    Waiting,
    decide_batch,
    stock_key,
)
from common.ledger import outcome_counts, warehouses
from common.ledger import tables as store


@dataclass(frozen=True)
class Applied:
    """A decided batch: one outcome per item, and the waiting dead letters it retried."""

    outcomes: list[Outcome]
    retried: list[tuple[int, Outcome]]  # (dead letter id, outcome of the automatic retry)

    @property
    def changed(self) -> list[Outcome]:
        """Every outcome that changed the stock, retries included (what the cache must forget)."""
        return [o for o in [*self.outcomes, *(o for _, o in self.retried)] if o.status is Status.APPLIED]


def apply_events(
    conn: psycopg.Connection,
    items: Sequence[IncomingEvent],
    *,
    park_rejected: bool = True,
    auto_replay_window: int | None = None,
) -> list[Outcome]:
    """`apply_batch`, for callers that only need the items' outcomes."""
    return apply_batch(
        conn, items, park_rejected=park_rejected, auto_replay_window=auto_replay_window
    ).outcomes


def apply_batch(
    conn: psycopg.Connection,
    items: Sequence[IncomingEvent],
    *,
    park_rejected: bool = True,
    auto_replay_window: int | None = None,
) -> Applied:
    """Decide and apply a batch; one outcome per item, in order. One attempt: may raise LostRace.

    Runs inside the caller's transaction when there is one (run it under
    `common.adapters.db.run_in_transaction`), else in a transaction of its own. Raises only on database
    faults; every rule violation is an outcome, parked in `rejected_events` unless `park_rejected`
    is off (an operator's replay records the outcome on the dead letter instead).
    """
    if not items:
        return Applied([], [])
    if conn.info.transaction_status == TransactionStatus.IDLE:
        with conn.transaction():
            return apply_batch(
                conn, items, park_rejected=park_rejected, auto_replay_window=auto_replay_window
            )
    settings = get_settings()
    window = settings.auto_replay_window_seconds if auto_replay_window is None else auto_replay_window
    if not park_rejected:
        window = 0  # an operator's replay decides exactly what was named

    parked = dead_letters.find_parked(conn, items) if park_rejected else {}
    if settings.ledger_clean_lane and not parked and _LANE.worth_trying() and _may_be_clean(items):
        clean = _apply_clean(conn, items, window)
        _LANE.note(declined=clean is None)
        if clean is not None:
            return clean
    candidates, copy_of = _candidates(items, parked, window)
    arrival_keys = {stock_key(c.event) for c in candidates if c is not None and c.event.event == "arrival"}
    seen_waiting = _events_of(dead_letters.waiting_departures(conn, arrival_keys, window))
    batch_events = [c.event for c in candidates if c is not None]
    state, existing = store.lock(conn, batch_events + [event for _, event in seen_waiting])
    locked_movements = {e.movement_id for e in batch_events} | {e.movement_id for _, e in seen_waiting}
    waiting = _locked_waiting(conn, arrival_keys, window, locked_movements)

    decided = decide_batch(state, candidates, waiting)
    _check_raced_departures(conn, candidates, decided, existing)

    outcomes = _outcomes(items, candidates, decided, parked, copy_of)
    retried = [(entry.ref, _outcome(entry.event, decision)) for entry, decision in decided.retried]
    pairs = list(zip(items, outcomes, strict=True)) + [(letter.item, o) for letter, o in retried]
    to_log = [
        (item, o.event)
        for item, o in pairs
        if o.status is Status.APPLIED and o.event is not None and not o.redelivered
    ]
    with conn.pipeline() as writes:  # the row writes in one round trip, movements first as locked
        inserts = store.write_movements(conn, state, existing)
        inserts += store.write_stock(conn, state, existing, _placeholders(candidates, decided, existing))
        writes.sync()
        store.check_inserts(inserts)
    store.append_log(conn, to_log)
    if park_rejected:
        outcomes = _park(conn, items, outcomes)
    retried_ids = [(letter.id, o) for letter, o in retried]
    _record(conn, items, outcomes, [item for item, _ in to_log], retried_ids)
    return Applied(outcomes, retried_ids)


class _LaneGate:
    """Whether a batch should try the clean-batch lane at all, from how the last ones fared.

    A declined batch pays its locks and decision twice (~25 % more CPU, both sides), and one
    refusal in a batch of 1,000 is enough to decline: in a stream with refusals in most batches
    the lane would only cost. After a decline the next batch goes the Python way, after another
    the next two, then four, up to MAX_SKIP; an accepted batch resets it. Per process and
    approximate under threads (a miscount only moves a batch from one path to the other, which
    decide alike).
    """

    MAX_SKIP = 64

    def __init__(self) -> None:
        self.skip = 0  # batches left to send the Python way
        self.backoff = 0  # how many the next decline skips

    def worth_trying(self) -> bool:
        if self.skip > 0:
            self.skip -= 1
            return False
        return True

    def note(self, *, declined: bool) -> None:
        if declined:
            self.backoff = min(max(1, 2 * self.backoff), self.MAX_SKIP)
            self.skip = self.backoff
        else:
            self.backoff = self.skip = 0


_LANE = _LaneGate()


def _may_be_clean(items: Sequence[IncomingEvent]) -> bool:
    """Whether the clean-batch lane may take the batch: every item valid, no Kafka record twice.

    (What else makes a batch unclean, a conflict, a departure above the stock, a departure
    waiting, needs the locked rows: the lane itself checks those and declines.)
    """
    seen: set[dead_letters.Coordinates] = set()
    for item in items:
        if item.envelope is None:
            return False
        at = dead_letters.record_coordinates(item)
        if at is not None:
            if at in seen:
                return False
            seen.add(at)
    return True


def _apply_clean(conn: psycopg.Connection, items: Sequence[IncomingEvent], window: int) -> Applied | None:
    """The batch decided and written set-based (`store.apply_clean`); None if the lane declined."""
    lane = store.apply_clean(conn, list(items), window)
    if lane.verdict == "lost_race":
        raise LostRace("a row this batch creates was created concurrently")
    if lane.verdict != "applied":
        return None
    outcomes: list[Outcome] = []
    to_log: list[IncomingEvent] = []
    for item, applied, stock in zip(items, lane.applied, lane.stock, strict=True):
        assert item.envelope is not None
        if applied:
            to_log.append(item)
        outcomes.append(
            _decided_outcome(item.envelope.data, Status.APPLIED if applied else Status.DUPLICATE, stock)
        )
    _record(conn, items, outcomes, to_log, [])
    return Applied(outcomes, [])


def _record(
    conn: psycopg.Connection,
    items: Sequence[IncomingEvent],
    outcomes: list[Outcome],
    logged: list[IncomingEvent],
    retried: list[tuple[int, Outcome]],
) -> None:
    """A decided batch's bookkeeping, in one round trip: the retried dead letters' outcomes, the
    outcome counts, and the directory of warehouse codes (issue 23) from the events logged."""
    with conn.pipeline():
        dead_letters.record_replays(conn, retried, auto=True)
        outcome_counts.record(conn, items, outcomes)
        warehouses.record(conn, logged)


def _candidates(
    items: Sequence[IncomingEvent],
    parked: dict[dead_letters.RecordIdentity, dead_letters.Parked],
    window: int,
) -> tuple[list[Candidate | None], dict[int, int]]:
    """What the rules decide: one candidate per valid item not parked before; a record present
    twice in the batch is decided once (`copy_of` maps the copy to the first)."""
    candidates: list[Candidate | None] = []
    copy_of: dict[int, int] = {}
    first: dict[dead_letters.RecordIdentity, int] = {}
    # A record's identity (its digest: a SHA-256) matters only where its coordinates repeat in the
    # batch or hold a dead letter; every other record is neither a copy nor parked.
    coordinates = [dead_letters.record_coordinates(item) for item in items]
    repeated = Counter(coordinates)
    parked_at = {key[:4] for key in parked}
    for index, item in enumerate(items):
        at = coordinates[index]
        key = None
        if at is not None and (repeated[at] > 1 or at in parked_at):
            key = dead_letters.record_identity(item)
        if key is not None and key not in parked:
            if key in first:
                copy_of[index] = first[key]
                candidates.append(None)
                continue
            first[key] = index
        if item.envelope is None or (key is not None and key in parked):
            candidates.append(None)
        else:
            candidates.append(
                frozen_built(
                    Candidate,
                    {"event": item.envelope.data, "may_wait": window > 0 and item.origin.kind == "kafka"},
                )
            )
    return candidates, copy_of


def _events_of(letters: list[dead_letters.DeadLetter]) -> list[tuple[dead_letters.DeadLetter, MovementData]]:
    return [(letter, letter.item.envelope.data) for letter in letters if letter.item.envelope is not None]


def _outcome(event: MovementData, decision: Decision) -> Outcome:
    return _decided_outcome(event, decision.status, decision.stock, decision.reason, decision.detail)


def _decided_outcome(
    event: MovementData, status: Status, stock: int, reason: Reason | None = None, detail: str | None = None
) -> Outcome:
    # One per event: built without the frozen dataclass's per-field __setattr__ (3x cheaper).
    return frozen_built(
        Outcome,
        {"status": status, "event": event, "reason": reason, "detail": detail,
         "errors": [], "stock": stock, "rejected_event_id": None, "redelivered": False},
    )  # fmt: skip


def _outcomes(
    items: Sequence[IncomingEvent],
    candidates: list[Candidate | None],
    decided: BatchDecisions[dead_letters.DeadLetter],
    parked: dict[dead_letters.RecordIdentity, dead_letters.Parked],
    copy_of: dict[int, int],
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for index, item in enumerate(items):
        candidate, decision = candidates[index], decided.decisions[index]
        if candidate is not None and decision is not None:
            outcomes.append(_outcome(candidate.event, decision))
        elif index in copy_of:
            outcomes.append(replace(outcomes[copy_of[index]], redelivered=True))
        elif parked and (key := dead_letters.record_identity(item)) is not None and key in parked:
            found = parked[key]
            event = item.envelope.data if item.envelope else None
            outcomes.append(
                Outcome(
                    Status.REJECTED,
                    event=event,
                    reason=found.reason,
                    detail=found.detail,
                    errors=item.errors,
                    rejected_event_id=found.id,
                    redelivered=True,
                )
            )
        else:
            outcomes.append(
                Outcome(Status.REJECTED, reason=Reason.INVALID, detail=item.error_detail, errors=item.errors)
            )
    return outcomes


def _park(conn: psycopg.Connection, items: Sequence[IncomingEvent], outcomes: list[Outcome]) -> list[Outcome]:
    """Keep every new refusal in the dead-letter store (and its copy for DLQ_TOPIC in the outbox)."""
    new = [i for i, o in enumerate(outcomes) if o.status is Status.REJECTED and o.rejected_event_id is None]
    if not new:
        return outcomes
    ids = dead_letters.park(conn, [(items[i], outcomes[i]) for i in new])
    result = list(outcomes)
    for i, rid in zip(new, ids, strict=True):
        result[i] = replace(outcomes[i], rejected_event_id=rid)
    copies = {rid for i, rid in zip(new, ids, strict=True) if items[i].origin.kind == "kafka"}
    outbox.enqueue(conn, sorted(copies))
    return result


def _locked_waiting(
    conn: psycopg.Connection, keys: set[StockKey], window: int, locked_movements: set[UUID]
) -> dict[StockKey, list[Waiting[dead_letters.DeadLetter]]]:
    """The departures waiting on `keys`, read again now that their stock rows are locked.

    A departure is refused on one of these keys only by a transaction holding that key's stock row
    (or inserting its placeholder, see `_placeholders`), so once we hold the locks the set cannot
    grow until we commit. One that appeared since the look-up before the locks has a movement row
    we did not lock: the batch runs again (LostRace) and locks it this time.
    """
    waiting: dict[StockKey, list[Waiting[dead_letters.DeadLetter]]] = {}
    for letter, event in _events_of(dead_letters.waiting_departures(conn, keys, window)):
        if event.movement_id not in locked_movements:
            raise LostRace("a departure started waiting on this batch's stock meanwhile")
        waiting.setdefault(stock_key(event), []).append(Waiting(letter, event))
    return waiting


def _check_raced_departures(
    conn: psycopg.Connection,
    candidates: list[Candidate | None],
    decided: BatchDecisions[dead_letters.DeadLetter],
    existing: store.Existing,
) -> None:
    """Two copies of a new movement's departure at once: the second cannot see the first's
    uncommitted movement row, waits on the stock row, then reads the stock the first took. Refused
    for insufficient stock, it would be answered 409 instead of `duplicate`. Such a refusal is
    checked: if the movement exists now, the batch runs again and sees the first copy."""
    suspects = [
        c.event.movement_id
        for c, d in zip(candidates, decided.decisions, strict=True)
        if c is not None
        and d is not None
        and d.reason is Reason.INSUFFICIENT_STOCK
        and c.event.movement_id not in existing.movements
    ]
    if store.any_movement_exists(conn, suspects):
        raise LostRace("a copy of a refused departure committed meanwhile")


def _placeholders(
    candidates: list[Candidate | None],
    decided: BatchDecisions[dead_letters.DeadLetter],
    existing: store.Existing,
) -> set[StockKey]:
    """Stock keys without a row on which a departure now waits: created at quantity 0.

    An arrival creating that row concurrently then conflicts with ours, so one of the two
    transactions runs again and sees the other: a waiting departure is never missed by the
    arrival that would have let it through.
    """
    return {
        stock_key(c.event)
        for c, d in zip(candidates, decided.decisions, strict=True)
        if c is not None
        and c.may_wait
        and d is not None
        and d.reason is Reason.INSUFFICIENT_STOCK
        and stock_key(c.event) not in existing.stock
    }
