"""Property: any sequence of events, cut into any batches, ends exactly where a plain sequential model does.

The model below applies events one at a time with the brief's rules and nothing else; the ledger
decides a whole batch at once against locked rows. Both must agree on every outcome, on the stock
of every pair, on each movement's status, and the stock must be the sum of the event log.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.domain.events import IncomingEvent, Origin, parse_event
from common.ledger.apply import apply_events
from common.reads.movements import get_movement
from common.reads.stock import get_stock

pytestmark = pytest.mark.integration

Make = Callable[..., IncomingEvent]
Kind = Literal["arrival", "departure"]

WAREHOUSES = [UUID(int=0xA1), UUID(int=0xA2), UUID(int=0xA3)]
PRODUCTS = [UUID(int=0xB1), UUID(int=0xB2)]
MOVEMENTS = [UUID(int=0xC0 + i) for i in range(6)]
# Two instants, each spelt in several ways that must all mean the same thing.
INSTANTS = {
    datetime(2025, 2, 18, 12, 0, tzinfo=UTC): [
        "2025-02-18T12:00:00Z",
        "2025-02-18T15:00:00+03:00",
        "2025-02-18T12:00:00",
    ],
    datetime(2025, 2, 18, 13, 30, tzinfo=UTC): ["2025-02-18T13:30:00Z", "2025-02-18T08:30:00-05:00"],
}


@dataclass(frozen=True)
class Event:
    """One half of a movement as the model sees it (spelling and envelope aside)."""

    movement: UUID
    kind: Kind
    warehouse: UUID
    product: UUID
    quantity: int
    at: datetime

    def content(self) -> tuple[UUID, UUID, int, datetime]:
        return (self.warehouse, self.product, self.quantity, self.at)


@dataclass(frozen=True)
class Sent:
    """What is sent: an event in some spelling, or an invalid payload (event None)."""

    event: Event | None
    spelling: int = 0
    envelope_id: str = "e"


@dataclass
class Model:
    """The brief's rules, one event at a time."""

    stock: dict[tuple[UUID, UUID], int] = field(default_factory=lambda: defaultdict(int))
    halves: dict[tuple[UUID, str], Event] = field(default_factory=dict)
    product: dict[UUID, UUID] = field(default_factory=dict)

    def apply(self, event: Event | None) -> tuple[str, str | None, int | None]:
        """(status, reason, stock of the pair afterwards)."""
        if event is None:
            return ("rejected", "invalid", None)
        key = (event.warehouse, event.product)
        earlier = self.halves.get((event.movement, event.kind))
        if earlier is not None:
            if earlier.content() == event.content():
                return ("duplicate", None, self.stock[key])
            return ("rejected", "conflict", self.stock[key])
        if self.product.get(event.movement, event.product) != event.product:
            return ("rejected", "conflict", self.stock[key])
        if event.kind == "departure" and event.quantity > self.stock[key]:
            return ("rejected", "insufficient_stock", self.stock[key])
        self.stock[key] += event.quantity if event.kind == "arrival" else -event.quantity
        self.halves[(event.movement, event.kind)] = event
        self.product[event.movement] = event.product
        return ("applied", None, self.stock[key])

    def status(self, movement: UUID) -> str | None:
        departed = (movement, "departure") in self.halves
        arrived = (movement, "arrival") in self.halves
        if departed and arrived:
            return "delivered"
        if departed:
            return "in_transit"
        return "arrival_only" if arrived else None


def to_item(sent: Sent, make: Make) -> IncomingEvent:
    if sent.event is None:
        raw = json.dumps({"id": sent.envelope_id, "data": {"quantity": 0}}).encode()
        return parse_event(raw, Origin.webhook())
    e = sent.event
    spellings = INSTANTS[e.at]
    kind = e.kind.upper() if sent.spelling % 2 else e.kind
    return make(
        e.movement,
        kind,
        e.warehouse,
        e.product,
        e.quantity,
        timestamp=spellings[sent.spelling % len(spellings)],
        envelope_id=sent.envelope_id,
    )


events = st.builds(
    Event,
    movement=st.sampled_from(MOVEMENTS),
    kind=st.sampled_from(["arrival", "arrival", "departure"]),
    warehouse=st.sampled_from(WAREHOUSES),
    product=st.sampled_from(PRODUCTS),
    quantity=st.integers(1, 5),
    at=st.sampled_from(sorted(INSTANTS)),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Sent], list[int]]:
    """A sequence to send (fresh events, exact and conflicting repeats, a few invalid payloads,
    then shuffled) and where to cut it into batches."""
    sent: list[Sent] = []
    for i in range(draw(st.integers(1, 30))):
        earlier = [s.event for s in sent if s.event is not None]
        action = draw(st.sampled_from(["new", "new", "new", "repeat", "conflict", "invalid"]))
        spelling = draw(st.integers(0, 5))
        if action == "repeat" and earlier:
            sent.append(Sent(draw(st.sampled_from(earlier)), spelling, f"repeat-{i}"))
        elif action == "conflict" and earlier:
            base = draw(st.sampled_from(earlier))
            other = base.quantity + draw(st.integers(1, 3))
            sent.append(Sent(Event(**{**base.__dict__, "quantity": other}), spelling, f"conflict-{i}"))
        elif action == "invalid":
            sent.append(Sent(None, envelope_id=f"invalid-{i}"))
        else:
            sent.append(Sent(draw(events), spelling, f"new-{i}"))
    order = draw(st.permutations(range(len(sent))))
    sent = [sent[i] for i in order]
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(sent) - 1)), max_size=len(sent))))
    return sent, [c for c in cuts if 0 < c < len(sent)]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)
@given(scenario=scenarios())
def test_batches_end_where_the_sequential_model_does(
    scenario: tuple[list[Sent], list[int]],
    ledger_session_conn: psycopg.Connection,
    ledger_empty_tables: Callable[[psycopg.Connection], None],
    ledger_make_event: Make,
) -> None:
    sent, cuts = scenario
    conn = ledger_session_conn
    ledger_empty_tables(conn)
    items = [to_item(s, ledger_make_event) for s in sent]
    bounds = [0, *cuts, len(items)]

    outcomes = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        outcomes += apply_events(conn, items[start:end])  # its own transaction, committed

    model = Model()
    expected = [model.apply(s.event) for s in sent]
    actual = [(o.status, o.reason, o.stock) for o in outcomes]
    assert actual == expected

    for warehouse in WAREHOUSES:
        for product in PRODUCTS:
            assert get_stock(conn, warehouse, product).quantity == model.stock[(warehouse, product)]
    for movement in MOVEMENTS:
        view = get_movement(conn, movement)
        assert (view.status if view else None) == model.status(movement)

    row = conn.execute(
        """
        SELECT (SELECT coalesce(sum(quantity), 0) FROM stock),
               (SELECT coalesce(sum(CASE event WHEN 'arrival' THEN quantity ELSE -quantity END), 0)
                FROM movement_events),
               (SELECT count(*) FROM movement_events),
               (SELECT count(*) FROM rejected_events)
        """
    ).fetchone()
    assert row is not None
    total_stock, logged_net, logged, parked = row
    assert total_stock == logged_net
    assert logged == sum(1 for o in outcomes if o.status == "applied")
    assert parked == sum(1 for o in outcomes if o.status == "rejected")
    assert min(model.stock.values(), default=0) >= 0
