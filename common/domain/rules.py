"""The ledger's rules as pure functions over plain state: no database, no I/O.

`decide` is the whole decision table for one half of a movement (duplicate, conflict, insufficient
stock, applied); `decide_batch` runs it over a batch in order and adds the one rule that spans
events: a Kafka departure refused for insufficient stock *waits*, and is decided again, oldest
first, each time an arrival raises its stock. `common.ledger.apply` loads the state (locked rows), calls
these, and writes what they changed; tests drive them with plain objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from common.domain.frozen import frozen_built
from common.domain.movement import MovementData
from common.domain.outcomes import Reason, Status

StockKey = tuple[UUID, UUID]  # (warehouse_id, product_id)
Ref = TypeVar("Ref")


@dataclass(frozen=True)
class Half:
    """One applied half of a movement: where, how many, when."""

    warehouse_id: UUID
    quantity: int
    at: datetime


@dataclass
class MovementState:
    """A movement as the ledger holds it: which product, and the halves applied so far."""

    product_id: UUID | None = None
    departure: Half | None = None
    arrival: Half | None = None

    def half(self, kind: str) -> Half | None:
        return self.departure if kind == "departure" else self.arrival


@dataclass
class LedgerState:
    """The rows a batch decides against, changed in place as events are applied.

    `stock` holds the quantity on hand of every key the batch touches (absent = 0); `changed_*`
    name what the writes must store afterwards.
    """

    stock: dict[StockKey, int] = field(default_factory=dict)
    movements: dict[UUID, MovementState] = field(default_factory=dict)
    changed_stock: set[StockKey] = field(default_factory=set)
    changed_movements: set[UUID] = field(default_factory=set)

    def on_hand(self, key: StockKey) -> int:
        return self.stock.get(key, 0)


@dataclass(frozen=True)
class Decision:
    """The outcome of deciding one event; `stock` is its key's quantity right after it."""

    status: Status
    stock: int
    reason: Reason | None = None
    detail: str | None = None


def stock_key(event: MovementData) -> StockKey:
    return (event.warehouse_id, event.product_id)


def decide(state: LedgerState, event: MovementData) -> Decision:
    """The outcome of `event` given everything applied before it; applies it to `state` if so.

    | the movement already has ...                        | outcome                          |
    | this half, same warehouse/product/quantity/time     | duplicate                        |
    | this half, with any other content                   | rejected: conflict (first stands)|
    | the other half, naming another product              | rejected: conflict               |
    | nothing in the way, a departure above the stock     | rejected: insufficient_stock     |
    | nothing in the way                                  | applied (arrival +, departure -) |
    """
    key = stock_key(event)
    on_hand = state.on_hand(key)
    movement = state.movements.get(event.movement_id) or MovementState()
    earlier = movement.half(event.event)
    if earlier is not None:
        if movement.product_id == event.product_id and earlier == _half_of(event):
            return _decided(Status.DUPLICATE, on_hand)
        return Decision(
            Status.REJECTED,
            on_hand,
            Reason.CONFLICT,
            f"the {event.event} of movement {event.movement_id} was already applied with other "
            f"content (warehouse {earlier.warehouse_id}, product {movement.product_id}, "
            f"quantity {earlier.quantity}, at {earlier.at.isoformat()}); the first version stands",
        )
    if movement.product_id is not None and movement.product_id != event.product_id:
        other = "arrival" if event.event == "departure" else "departure"
        return Decision(
            Status.REJECTED,
            on_hand,
            Reason.CONFLICT,
            f"the {other} of movement {event.movement_id} names product {movement.product_id}, "
            f"this {event.event} names product {event.product_id}",
        )
    if event.event == "departure" and event.quantity > on_hand:
        return Decision(
            Status.REJECTED,
            on_hand,
            Reason.INSUFFICIENT_STOCK,
            f"departure of {event.quantity} of product {event.product_id} from warehouse "
            f"{event.warehouse_id} exceeds the {on_hand} on hand",
        )
    after = on_hand + event.quantity if event.event == "arrival" else on_hand - event.quantity
    state.stock[key] = after
    state.changed_stock.add(key)
    movement.product_id = event.product_id
    if event.event == "departure":
        movement.departure = _half_of(event)
    else:
        movement.arrival = _half_of(event)
    state.movements[event.movement_id] = movement
    state.changed_movements.add(event.movement_id)
    return _decided(Status.APPLIED, after)


def _half_of(event: MovementData) -> Half:
    return frozen_built(
        Half, {"warehouse_id": event.warehouse_id, "quantity": event.quantity, "at": event.timestamp}
    )


def _decided(status: Status, stock: int) -> Decision:
    """A Decision without a reason, built without the frozen dataclass's per-field __setattr__."""
    return frozen_built(Decision, {"status": status, "stock": stock, "reason": None, "detail": None})


@dataclass(frozen=True)
class Candidate:
    """An event to decide; `may_wait`: refused for insufficient stock, it waits for arrivals."""

    event: MovementData
    may_wait: bool = False


@dataclass(frozen=True)
class Waiting(Generic[Ref]):
    """A departure refused earlier for insufficient stock, retried when its stock grows.

    `ref` says which one it is to the caller (a dead letter's id); the rules never look at it.
    """

    ref: Ref
    event: MovementData


@dataclass
class BatchDecisions(Generic[Ref]):
    """Per candidate its decision (None where there was nothing to decide), and every retry.

    A candidate refused for insufficient stock and applied later in the same batch, when an
    arrival raised its stock, ends up `applied` here; `retried` lists the earlier dead letters that
    were decided again, in the order it happened.
    """

    decisions: list[Decision | None]
    retried: list[tuple[Waiting[Ref], Decision]] = field(default_factory=list)


def decide_batch(
    state: LedgerState,
    candidates: Sequence[Candidate | None],
    waiting: Mapping[StockKey, Sequence[Waiting[Ref]]] | None = None,
) -> BatchDecisions[Ref]:
    """Decide `candidates` in order, exactly as if applied one at a time.

    After each applied arrival, the departures waiting on its stock (earlier dead letters first,
    then refusals from earlier in this batch, each oldest first) are decided again; those applied
    or settled (a duplicate, a conflict) stop waiting, the others keep waiting for the next arrival.
    """
    queue: dict[StockKey, list[Waiting[Ref] | int]] = {k: list(v) for k, v in (waiting or {}).items()}
    result: BatchDecisions[Ref] = BatchDecisions(decisions=[None] * len(candidates))
    for index, candidate in enumerate(candidates):
        if candidate is None:
            continue
        event = candidate.event
        decision = decide(state, event)
        result.decisions[index] = decision
        key = stock_key(event)
        if decision.reason is Reason.INSUFFICIENT_STOCK and candidate.may_wait:
            queue.setdefault(key, []).append(index)
        elif decision.status is Status.APPLIED and event.event == "arrival" and queue.get(key):
            queue[key] = _retry(state, queue[key], candidates, result)
    return result


def _retry(
    state: LedgerState,
    waiting: list[Waiting[Ref] | int],
    candidates: Sequence[Candidate | None],
    result: BatchDecisions[Ref],
) -> list[Waiting[Ref] | int]:
    """Decide each waiting departure again; return those still refused for insufficient stock."""
    still: list[Waiting[Ref] | int] = []
    for entry in waiting:
        if isinstance(entry, int):  # a refusal from earlier in this batch
            candidate = candidates[entry]
            assert candidate is not None
            decision = decide(state, candidate.event)
            if decision.reason is Reason.INSUFFICIENT_STOCK:
                still.append(entry)
            else:
                result.decisions[entry] = decision
        else:
            decision = decide(state, entry.event)
            result.retried.append((entry, decision))
            if decision.reason is Reason.INSUFFICIENT_STOCK:
                still.append(entry)
    return still
