"""The hot path's frozen dataclasses built without `__init__` are the objects `__init__` builds."""

from __future__ import annotations

import dataclasses
from uuid import uuid4

import pytest

from common.domain.events import IncomingEvent, Origin, parse_event
from common.domain.movement import MovementData
from common.domain.outcomes import Outcome, Reason, Status
from common.domain.rules import Decision, Half, LedgerState, _decided, _half_of, decide
from common.ledger.apply import _outcome

EVENT = MovementData(
    movement_id=uuid4(),
    warehouse_id=uuid4(),
    product_id=uuid4(),
    event="arrival",
    quantity=7,
    timestamp="2025-02-18T12:00:00Z",  # type: ignore[arg-type]
)
PAYLOAD = (
    b'{"id": "e1", "source": "WH-1", "specversion": "1.0", "type": "ru.retail.warehouses.movement",'
    b' "data": {"movement_id": "%s", "warehouse_id": "%s", "product_id": "%s", "event": "arrival",'
    b' "quantity": 7, "timestamp": "2025-02-18T12:00:00Z"}}'
) % (str(EVENT.movement_id).encode(), str(EVENT.warehouse_id).encode(), str(EVENT.product_id).encode())


def _same(fast: object, slow: object, *, hashable: bool = True) -> None:
    assert type(fast) is type(slow)
    names = [f.name for f in dataclasses.fields(slow)]  # type: ignore[arg-type]
    assert list(vars(fast)) == names, "every field, and nothing else"
    assert fast == slow and repr(fast) == repr(slow)
    assert not hashable or hash(fast) == hash(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.stock = 1  # type: ignore[attr-defined]


def test_a_kafka_origin() -> None:
    _same(
        Origin.kafka("t", 3, 42, cluster="c", key=b"k"),
        Origin("kafka", "t", 3, 42, "c", b"k"),
    )


def test_a_valid_incoming_event_and_its_digest() -> None:
    origin = Origin.kafka("t", 0, 1, key=b"k")
    fast = parse_event(PAYLOAD, origin)
    slow = IncomingEvent(PAYLOAD, origin, envelope=fast.envelope)
    assert list(vars(fast)) == [f.name for f in dataclasses.fields(IncomingEvent)]
    assert (
        fast == slow and fast.digest == slow.digest and fast.errors == [] and fast.errors is not slow.errors
    )


def test_the_rules_halves_and_decisions() -> None:
    _same(_half_of(EVENT), Half(EVENT.warehouse_id, 7, EVENT.timestamp))
    _same(_decided(Status.APPLIED, 5), Decision(Status.APPLIED, 5))
    assert decide(LedgerState(), EVENT) == Decision(Status.APPLIED, 7)


@pytest.mark.parametrize(
    "decision",
    [Decision(Status.APPLIED, 3), Decision(Status.REJECTED, 0, Reason.CONFLICT, "the first stands")],
)
def test_an_outcome(decision: Decision) -> None:
    slow = Outcome(
        decision.status, event=EVENT, reason=decision.reason, detail=decision.detail, stock=decision.stock
    )
    fast = _outcome(EVENT, decision)
    _same(fast, slow, hashable=False)  # (its errors are a list)
    assert dataclasses.replace(fast, redelivered=True) == dataclasses.replace(slow, redelivered=True)
