"""The movement ledger: applies validated events to stock, exactly once, never below zero.

`apply_events` takes a whole batch in one transaction and costs a fixed handful of statements
whatever the batch size:

1. lock the existing movement rows and stock rows the batch touches (`SELECT ... FOR UPDATE`,
   movements first, each in key order, so concurrent batches cannot deadlock);
2. decide each event in the order given, in memory, against the locked state: this is exactly
   the outcome of applying the events one at a time, so reordering, duplicates and conflicts
   inside one batch behave as across batches;
3. write with set-based statements: COPY for the event log, `UPDATE ... FROM unnest` for rows
   that existed, `INSERT ... ON CONFLICT DO NOTHING` (in key order) for rows that did not.

A row that did not exist could not be locked. If another transaction creates it first, our insert
skips it, and the whole batch is retried (`LostRace`, retried by `common.db.run_in_transaction`)
against the new state: optimistic for new keys, pessimistic for existing ones. Row locks keep the
lock table small whatever the batch size; the CHECK on stock.quantity is the last line of defence
against a negative stock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import psycopg

from common.db import LostRace
from common.events import IncomingEvent, MovementData, Origin
from common.views import as_utc

Status = Literal["applied", "duplicate", "rejected"]
RejectReason = Literal["invalid", "conflict", "insufficient_stock"]
StockKey = tuple[UUID, UUID]  # (warehouse_id, product_id)
LOST_RACE_ATTEMPTS = 5


@dataclass(frozen=True)
class Outcome:
    """What became of one event. `stock` is the (warehouse, product) stock right after it."""

    status: Status
    event: MovementData | None = None
    reason: RejectReason | None = None
    detail: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    stock: int | None = None
    rejected_event_id: int | None = None


@dataclass(frozen=True)
class _Half:
    warehouse_id: UUID
    quantity: int
    at: datetime


@dataclass
class _Movement:
    """A movement row as locked: which product, and the halves applied so far."""

    product_id: UUID | None = None
    departure: _Half | None = None
    arrival: _Half | None = None

    def half(self, event: str) -> _Half | None:
        return self.departure if event == "departure" else self.arrival


@dataclass
class _LockedState:
    stock: dict[StockKey, int]
    movements: dict[UUID, _Movement]
    existing_stock: set[StockKey]
    existing_movements: set[UUID]
    dirty_stock: set[StockKey] = field(default_factory=set)
    dirty_movements: set[UUID] = field(default_factory=set)


def apply_events(
    conn: psycopg.Connection, items: Sequence[IncomingEvent], *, park_rejected: bool = True
) -> list[Outcome]:
    """Apply a batch in one transaction; one outcome per item, in order.

    Runs inside the caller's transaction when there is one (as a savepoint), else opens its own.
    Raises only on database faults; every rule violation is an outcome, parked in
    `rejected_events` unless `park_rejected` is off (a replay of a parked event records its
    outcome on the parked row instead of parking it again).
    """
    if not items:
        return []
    valid = [item.envelope.data for item in items if item.envelope is not None]
    for attempt in range(1, LOST_RACE_ATTEMPTS + 1):
        try:
            return _apply_once(conn, items, valid, park_rejected)
        except LostRace:
            # Rolled back to our savepoint; the rows the other transaction created are now
            # visible and get locked like any existing row.
            if attempt == LOST_RACE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _apply_once(
    conn: psycopg.Connection,
    items: Sequence[IncomingEvent],
    valid: list[MovementData],
    park_rejected: bool,
) -> list[Outcome]:
    with conn.transaction():
        state = _lock(conn, valid)
        parked = _parked_records(conn, items)
        decided = []
        for item in items:
            key = _record_key(item)
            outcome = parked.get(key) if key is not None else None
            if outcome is None:
                outcome = _decide(state, item)
                if key is not None and outcome.status == "rejected":
                    parked[key] = outcome  # the same record again in this batch stays refused
            decided.append(outcome)
        applied = [
            (item, outcome.event)
            for item, outcome in zip(items, decided, strict=True)
            if outcome.status == "applied" and outcome.event is not None
        ]
        _write_applied(conn, applied, state)
        return _park_rejected(conn, items, decided) if park_rejected else decided


def _lock(conn: psycopg.Connection, events: list[MovementData]) -> _LockedState:
    """Lock the movement rows, then the stock rows, the batch touches (each set in key order).

    Movements come first: any half this batch sees as applied was committed before the stock is
    read, so the stock read includes its effect. (The other order could answer a concurrent
    duplicate with a stock read from before the first copy committed.) A row still being created
    by another transaction is invisible here; creating it ourselves then loses the race and the
    batch runs again (LostRace).
    """
    stock_keys = {(e.warehouse_id, e.product_id) for e in events}
    movement_ids = list({e.movement_id for e in events})
    stock: dict[StockKey, int] = {}
    movements: dict[UUID, _Movement] = {}
    existing_stock: set[StockKey] = set()
    if movement_ids:
        rows = conn.execute(
            """
            SELECT movement_id, product_id,
                   source_warehouse_id, departed_quantity, departed_at AT TIME ZONE 'UTC',
                   destination_warehouse_id, arrived_quantity, arrived_at AT TIME ZONE 'UTC'
            FROM movements
            WHERE movement_id = ANY(%b::uuid[])
            ORDER BY movement_id
            FOR UPDATE
            """,
            (movement_ids,),
        )
        for mid, product, src, dep_q, dep_at, dst, arr_q, arr_at in rows:
            movements[mid] = _Movement(
                product_id=product,
                departure=_Half(src, dep_q, as_utc(dep_at)) if dep_at is not None else None,
                arrival=_Half(dst, arr_q, as_utc(arr_at)) if arr_at is not None else None,
            )
    if stock_keys:
        rows = conn.execute(
            """
            SELECT s.warehouse_id, s.product_id, s.quantity
            FROM stock s
            JOIN unnest(%b::uuid[], %b::uuid[]) AS k(w, p)
              ON s.warehouse_id = k.w AND s.product_id = k.p
            ORDER BY s.warehouse_id, s.product_id
            FOR UPDATE OF s
            """,
            ([k[0] for k in stock_keys], [k[1] for k in stock_keys]),
        )
        stock = {(w, p): q for w, p, q in rows}
        existing_stock = set(stock)
    return _LockedState(
        stock=stock,
        movements=movements,
        existing_stock=existing_stock,
        existing_movements=set(movements),
    )


# (cluster, topic, partition, offset, digest of key and value): see Origin.
KafkaRecordKey = tuple[str | None, str | None, int | None, int | None, bytes]


def _record_key(item: IncomingEvent) -> KafkaRecordKey | None:
    origin = item.origin
    if origin.kind != "kafka":
        return None
    return (origin.cluster, origin.topic, origin.partition, origin.offset, item.digest)


def _parked_records(
    conn: psycopg.Connection, items: Sequence[IncomingEvent]
) -> dict[KafkaRecordKey, Outcome]:
    """Kafka records of this batch that an earlier delivery already parked: they stay parked.

    A redelivered record is decided once. Deciding it again could apply a departure refused
    earlier, now that stock has arrived, while its dead letter still says refused; recovering it
    is the operator's replay. Another record at the same coordinates (a recreated topic, another
    cluster) has another digest or cluster and is decided on its own merits.
    """
    by_key = {key: item for item in items if (key := _record_key(item)) is not None}
    if not by_key:
        return {}
    keys = list(by_key)
    rows = conn.execute(
        """
        SELECT k.c, r.kafka_topic, r.kafka_partition, r.kafka_offset, r.record_digest,
               r.id, r.reason, r.detail
        FROM rejected_events r
        JOIN unnest(%b::text[], %b::text[], %b::int4[], %b::int8[], %b::bytea[]) AS k(c, t, p, o, d)
          ON r.kafka_topic = k.t AND r.kafka_partition = k.p AND r.kafka_offset = k.o
         AND r.record_digest = k.d
         AND (r.kafka_cluster IS NULL OR r.kafka_cluster = k.c)
        """,
        tuple([k[i] for k in keys] for i in range(5)),
    )
    parked: dict[KafkaRecordKey, Outcome] = {}
    for cluster, topic, partition, offset, digest, rejected_id, reason, detail in rows:
        key = (cluster, topic, partition, offset, bytes(digest))
        item = by_key[key]
        parked[key] = Outcome(
            "rejected",
            event=item.envelope.data if item.envelope else None,
            reason=reason,
            detail=detail,
            errors=item.errors,
            rejected_event_id=rejected_id,
        )
    return parked


def _decide(state: _LockedState, item: IncomingEvent) -> Outcome:
    """The outcome of this event given everything applied before it, updating the state."""
    if item.envelope is None:
        return Outcome("rejected", reason="invalid", detail=item.error_detail, errors=item.errors)
    event = item.envelope.data
    key = (event.warehouse_id, event.product_id)
    on_hand = state.stock.get(key, 0)
    movement = state.movements.setdefault(event.movement_id, _Movement())
    earlier = movement.half(event.event)
    if earlier is not None:
        same = (
            movement.product_id == event.product_id
            and earlier == _Half(event.warehouse_id, event.quantity, event.timestamp)
        )
        if same:
            return Outcome("duplicate", event=event, stock=on_hand)
        return Outcome(
            "rejected",
            event=event,
            reason="conflict",
            detail=(
                f"the {event.event} of movement {event.movement_id} was already applied with other "
                f"content (warehouse {earlier.warehouse_id}, product {movement.product_id}, "
                f"quantity {earlier.quantity}, at {earlier.at.isoformat()}); the first version stands"
            ),
            stock=on_hand,
        )
    if movement.product_id is not None and movement.product_id != event.product_id:
        other = "arrival" if event.event == "departure" else "departure"
        return Outcome(
            "rejected",
            event=event,
            reason="conflict",
            detail=(
                f"the {other} of movement {event.movement_id} names product {movement.product_id}, "
                f"this {event.event} names product {event.product_id}"
            ),
            stock=on_hand,
        )
    if event.event == "departure" and event.quantity > on_hand:
        return Outcome(
            "rejected",
            event=event,
            reason="insufficient_stock",
            detail=(
                f"departure of {event.quantity} of product {event.product_id} from warehouse "
                f"{event.warehouse_id} exceeds the {on_hand} on hand"
            ),
            stock=on_hand,
        )
    after = on_hand + event.quantity if event.event == "arrival" else on_hand - event.quantity
    state.stock[key] = after
    state.dirty_stock.add(key)
    movement.product_id = event.product_id
    half = _Half(event.warehouse_id, event.quantity, event.timestamp)
    if event.event == "departure":
        movement.departure = half
    else:
        movement.arrival = half
    state.dirty_movements.add(event.movement_id)
    return Outcome("applied", event=event, stock=after)


def _write_applied(
    conn: psycopg.Connection,
    applied: list[tuple[IncomingEvent, MovementData]],
    state: _LockedState,
) -> None:
    if not applied:
        return
    _write_movements(conn, state)
    _write_stock(conn, state)
    _write_log(conn, applied)


def _write_log(conn: psycopg.Connection, applied: list[tuple[IncomingEvent, MovementData]]) -> None:
    with conn.cursor() as cur, cur.copy(
        """
            COPY movement_events (movement_id, event, warehouse_id, product_id, quantity,
                                  occurred_at, envelope_id, origin, kafka_topic,
                                  kafka_partition, kafka_offset, kafka_cluster)
            FROM STDIN
            """
    ) as copy:
        for item, event in applied:
            origin = item.origin
            copy.write_row(
                (
                    event.movement_id,
                    event.event,
                    event.warehouse_id,
                    event.product_id,
                    event.quantity,
                    event.timestamp,
                    item.envelope.id if item.envelope else "",
                    origin.kind,
                    origin.topic,
                    origin.partition,
                    origin.offset,
                    origin.cluster,
                )
            )


def _write_stock(conn: psycopg.Connection, state: _LockedState) -> None:
    updated = [k for k in state.dirty_stock if k in state.existing_stock]
    created = [k for k in state.dirty_stock if k not in state.existing_stock]
    if updated:
        conn.execute(
            """
            UPDATE stock s SET quantity = v.q, updated_at = now()
            FROM unnest(%b::uuid[], %b::uuid[], %b::int8[]) AS v(w, p, q)
            WHERE s.warehouse_id = v.w AND s.product_id = v.p
            """,
            ([k[0] for k in updated], [k[1] for k in updated], [state.stock[k] for k in updated]),
        )
    if created:
        inserted = conn.execute(
            """
            INSERT INTO stock (warehouse_id, product_id, quantity, updated_at)
            SELECT w, p, q, now() FROM unnest(%b::uuid[], %b::uuid[], %b::int8[]) AS v(w, p, q)
            ORDER BY w, p
            ON CONFLICT DO NOTHING
            """,
            ([k[0] for k in created], [k[1] for k in created], [state.stock[k] for k in created]),
        ).rowcount
        if inserted != len(created):
            raise LostRace("a stock row this batch creates was created concurrently")


def _write_movements(conn: psycopg.Connection, state: _LockedState) -> None:
    ids = list(state.dirty_movements)
    rows = [state.movements[m] for m in ids]
    params = (
        ids,
        [r.product_id for r in rows],
        [r.departure.warehouse_id if r.departure else None for r in rows],
        [r.departure.quantity if r.departure else None for r in rows],
        [r.departure.at if r.departure else None for r in rows],
        [r.arrival.warehouse_id if r.arrival else None for r in rows],
        [r.arrival.quantity if r.arrival else None for r in rows],
        [r.arrival.at if r.arrival else None for r in rows],
    )
    existed = [i for i, m in enumerate(ids) if m in state.existing_movements]
    if existed:
        conn.execute(
            """
            UPDATE movements m SET
                product_id = v.product_id,
                source_warehouse_id = v.src, departed_quantity = v.dep_q, departed_at = v.dep_at,
                destination_warehouse_id = v.dst, arrived_quantity = v.arr_q, arrived_at = v.arr_at,
                updated_at = now()
            FROM unnest(%b::uuid[], %b::uuid[], %b::uuid[], %b::int8[], %b::timestamptz[],
                        %b::uuid[], %b::int8[], %b::timestamptz[])
                 AS v(movement_id, product_id, src, dep_q, dep_at, dst, arr_q, arr_at)
            WHERE m.movement_id = v.movement_id
            """,
            tuple([column[i] for i in existed] for column in params),
        )
    new = [i for i, m in enumerate(ids) if m not in state.existing_movements]
    if new:
        inserted = conn.execute(
            """
            INSERT INTO movements (movement_id, product_id, source_warehouse_id, departed_quantity,
                                   departed_at, destination_warehouse_id, arrived_quantity, arrived_at)
            SELECT movement_id, product_id, src, dep_q, dep_at, dst, arr_q, arr_at
            FROM unnest(%b::uuid[], %b::uuid[], %b::uuid[], %b::int8[], %b::timestamptz[],
                        %b::uuid[], %b::int8[], %b::timestamptz[])
                 AS v(movement_id, product_id, src, dep_q, dep_at, dst, arr_q, arr_at)
            ORDER BY movement_id
            ON CONFLICT DO NOTHING
            """,
            tuple([column[i] for i in new] for column in params),
        ).rowcount
        if inserted != len(new):
            raise LostRace("a movement row this batch creates was created concurrently")


def _park_rejected(
    conn: psycopg.Connection, items: Sequence[IncomingEvent], decided: list[Outcome]
) -> list[Outcome]:
    """Keep every rejected event in the dead-letter store; a redelivered Kafka record only once."""
    rejected = [
        i
        for i, outcome in enumerate(decided)
        if outcome.status == "rejected" and outcome.rejected_event_id is None
    ]
    if not rejected:
        return decided
    outcomes = list(decided)
    with conn.cursor() as cur:
        for i in rejected:
            item, outcome = items[i], decided[i]
            origin = item.origin
            event = outcome.event
            cur.execute(
                """
                INSERT INTO rejected_events (reason, detail, raw_payload, movement_id, event, origin,
                                             kafka_topic, kafka_partition, kafka_offset,
                                             kafka_cluster, record_digest, warehouse_id, product_id)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (kafka_topic, kafka_partition, kafka_offset, record_digest,
                             (coalesce(kafka_cluster, '')))
                   WHERE kafka_topic IS NOT NULL
                DO UPDATE SET kafka_topic = EXCLUDED.kafka_topic
                RETURNING id
                """,
                (
                    outcome.reason,
                    outcome.detail,
                    item.raw,
                    event.movement_id if event else None,
                    event.event if event else None,
                    origin.kind,
                    origin.topic,
                    origin.partition,
                    origin.offset,
                    origin.cluster,
                    item.digest if origin.kind == "kafka" else None,
                    event.warehouse_id if event else None,
                    event.product_id if event else None,
                ),
            )
            row = cur.fetchone()
            outcomes[i] = replace(outcome, rejected_event_id=row[0] if row else None)
    return outcomes


__all__ = ["Outcome", "RejectReason", "Status", "apply_events", "IncomingEvent", "Origin"]
