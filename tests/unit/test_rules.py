"""The ledger's decision table (common.domain.rules) on plain state: every row, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from common.domain.movement import MovementData
from common.domain.outcomes import Reason, Status
from common.domain.rules import (
    BatchDecisions,
    Candidate,
    Half,
    LedgerState,
    MovementState,
    StockKey,
    Waiting,
    decide,
    decide_batch,
)

W1, W2, P1, P2 = uuid4(), uuid4(), uuid4(), uuid4()
T0 = datetime(2025, 2, 18, 12, 0, tzinfo=UTC)


def half(kind: str, quantity: int, *, movement: UUID | None = None, warehouse: UUID = W1,
         product: UUID = P1, at: datetime = T0) -> MovementData:  # fmt: skip
    return MovementData(
        movement_id=movement or uuid4(),
        warehouse_id=warehouse,
        product_id=product,
        event=kind,  # type: ignore[arg-type]  # validated by the model
        quantity=quantity,
        timestamp=at.isoformat(),  # type: ignore[arg-type]  # parsed by the model, like the JSON text
    )


def state(stock: int = 0, *, warehouse: UUID = W1, product: UUID = P1) -> LedgerState:
    return LedgerState(stock={(warehouse, product): stock} if stock else {})


# --- decide: one row of the table per test ------------------------------------------------------


def test_an_arrival_adds_to_the_stock_and_records_its_half() -> None:
    s = state(2)
    event = half("arrival", 5)
    d = decide(s, event)
    assert (d.status, d.reason, d.stock) == (Status.APPLIED, None, 7)
    assert s.stock[(W1, P1)] == 7 and s.changed_stock == {(W1, P1)}
    assert s.movements[event.movement_id].arrival == Half(W1, 5, T0)
    assert s.changed_movements == {event.movement_id}


def test_a_departure_within_the_stock_subtracts() -> None:
    s = state(5)
    d = decide(s, half("departure", 5))
    assert (d.status, d.stock) == (Status.APPLIED, 0)


def test_a_departure_above_the_stock_is_refused_and_changes_nothing() -> None:
    s = state(4)
    event = half("departure", 5)
    d = decide(s, event)
    assert (d.status, d.reason, d.stock) == (Status.REJECTED, Reason.INSUFFICIENT_STOCK, 4)
    assert d.detail and "exceeds the 4 on hand" in d.detail
    assert s.stock == {(W1, P1): 4} and not s.changed_stock and not s.movements


def test_a_departure_from_a_pair_never_seen_is_refused() -> None:
    d = decide(LedgerState(), half("departure", 1))
    assert (d.reason, d.stock) == (Reason.INSUFFICIENT_STOCK, 0)


def test_the_same_half_again_with_the_same_content_is_a_duplicate() -> None:
    s = state(10)
    event = half("departure", 3)
    assert decide(s, event).status is Status.APPLIED
    again = decide(s, event)
    assert (again.status, again.stock) == (Status.DUPLICATE, 7)
    assert s.stock[(W1, P1)] == 7


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": 4},
        {"warehouse_id": W2},
        {"timestamp": T0 + timedelta(seconds=1)},
        {"product_id": P2},
    ],
    ids=["quantity", "warehouse", "time", "product"],
)
def test_the_same_half_with_other_content_is_a_conflict_and_the_first_stands(
    change: dict[str, object],
) -> None:
    s = LedgerState(stock={(W1, P1): 10, (W2, P1): 10, (W1, P2): 10})
    first = half("departure", 3)
    decide(s, first)
    other = first.model_copy(update=change)
    d = decide(s, other)
    assert (d.status, d.reason) == (Status.REJECTED, Reason.CONFLICT)
    assert d.detail and "the first version stands" in d.detail
    assert s.stock[(W1, P1)] == 7 and s.movements[first.movement_id].departure == Half(W1, 3, T0)


def test_the_other_half_naming_another_product_is_a_conflict() -> None:
    movement = uuid4()
    s = state(10)
    decide(s, half("departure", 3, movement=movement))
    d = decide(s, half("arrival", 3, movement=movement, warehouse=W2, product=P2))
    assert (d.status, d.reason) == (Status.REJECTED, Reason.CONFLICT)
    assert d.detail and "names product" in d.detail
    assert (W2, P2) not in s.stock


@pytest.mark.parametrize("arrival_first", [False, True])
def test_the_halves_may_come_in_either_order(arrival_first: bool) -> None:
    movement = uuid4()
    departure = half("departure", 100, movement=movement, warehouse=W1)
    arrival = half("arrival", 98, movement=movement, warehouse=W2, at=T0 + timedelta(seconds=8520))
    s = state(100)
    for event in (arrival, departure) if arrival_first else (departure, arrival):
        assert decide(s, event).status is Status.APPLIED
    m = s.movements[movement]
    assert (m.departure, m.arrival) == (Half(W1, 100, T0), Half(W2, 98, T0 + timedelta(seconds=8520)))
    assert s.stock == {(W1, P1): 0, (W2, P1): 98}


def test_an_existing_movement_row_is_decided_against() -> None:
    movement = uuid4()
    s = LedgerState(stock={(W1, P1): 5}, movements={movement: MovementState(P1, departure=Half(W1, 5, T0))})
    assert decide(s, half("departure", 5, movement=movement)).status is Status.DUPLICATE
    assert s.stock[(W1, P1)] == 5


# --- decide_batch: order, and departures that wait for their stock ----------------------------


def test_a_batch_is_decided_in_order_as_if_one_at_a_time() -> None:
    s = LedgerState()
    events = [half("departure", 2), half("arrival", 5), half("departure", 2)]
    result: BatchDecisions[object] = decide_batch(s, [Candidate(e) for e in events])
    assert [d.status if d else None for d in result.decisions] == [
        Status.REJECTED,
        Status.APPLIED,
        Status.APPLIED,
    ]
    assert s.stock[(W1, P1)] == 3


def test_a_waiting_refusal_is_applied_by_a_later_arrival_of_the_batch() -> None:
    s = LedgerState()
    departure = half("departure", 2)
    result: BatchDecisions[object] = decide_batch(
        s, [Candidate(departure, may_wait=True), Candidate(half("arrival", 5))]
    )
    first = result.decisions[0]
    assert first is not None and (first.status, first.stock) == (Status.APPLIED, 3)
    assert s.stock[(W1, P1)] == 3 and departure.movement_id in s.movements


def test_a_refusal_that_may_not_wait_stays_refused() -> None:
    s = LedgerState()
    result: BatchDecisions[object] = decide_batch(
        s, [Candidate(half("departure", 2)), Candidate(half("arrival", 5))]
    )
    first = result.decisions[0]
    assert first is not None and first.reason is Reason.INSUFFICIENT_STOCK
    assert s.stock[(W1, P1)] == 5


def test_an_arrival_of_another_stock_retries_nothing() -> None:
    s = LedgerState()
    result: BatchDecisions[object] = decide_batch(
        s, [Candidate(half("departure", 2), may_wait=True), Candidate(half("arrival", 5, warehouse=W2))]
    )
    first = result.decisions[0]
    assert first is not None and first.reason is Reason.INSUFFICIENT_STOCK


def test_earlier_dead_letters_are_retried_first_oldest_first_and_only_those_that_fit() -> None:
    s = LedgerState()
    old_big, old_small = half("departure", 9), half("departure", 3)
    waiting: dict[StockKey, list[Waiting[object]]] = {(W1, P1): [Waiting(1, old_big), Waiting(2, old_small)]}
    in_batch = half("departure", 2)
    result: BatchDecisions[object] = decide_batch(
        s, [Candidate(in_batch, may_wait=True), Candidate(half("arrival", 5))], waiting
    )
    retried = [(entry.ref, d.status, d.reason) for entry, d in result.retried]
    assert retried == [(1, Status.REJECTED, Reason.INSUFFICIENT_STOCK), (2, Status.APPLIED, None)]
    first = result.decisions[0]
    assert first is not None and (first.status, first.stock) == (Status.APPLIED, 0)  # 5 - 3 - 2


def test_a_departure_still_short_keeps_waiting_for_the_next_arrival() -> None:
    s = LedgerState()
    waiting: dict[StockKey, list[Waiting[object]]] = {(W1, P1): [Waiting("a", half("departure", 6))]}
    result: BatchDecisions[object] = decide_batch(
        s, [Candidate(half("arrival", 4)), Candidate(half("arrival", 4))], waiting
    )
    assert [(e.ref, d.status) for e, d in result.retried] == [("a", Status.REJECTED), ("a", Status.APPLIED)]
    assert s.stock[(W1, P1)] == 2


def test_a_waiting_departure_applied_meanwhile_is_settled_as_a_duplicate() -> None:
    movement = uuid4()
    departure = half("departure", 2, movement=movement)
    s = LedgerState(stock={(W1, P1): 1}, movements={movement: MovementState(P1, departure=Half(W1, 2, T0))})
    result: BatchDecisions[object] = decide_batch(
        s, [Candidate(half("arrival", 5))], {(W1, P1): [Waiting(7, departure)]}
    )
    assert [(e.ref, d.status) for e, d in result.retried] == [(7, Status.DUPLICATE)]
    assert s.stock[(W1, P1)] == 6


def test_nothing_to_decide_leaves_a_gap() -> None:
    result: BatchDecisions[object] = decide_batch(LedgerState(), [None, Candidate(half("arrival", 1)), None])
    assert result.decisions[0] is None and result.decisions[2] is None
    assert result.decisions[1] is not None
