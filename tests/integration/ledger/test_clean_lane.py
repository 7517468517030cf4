"""The clean-batch lane (migration 0008, `tables.apply_clean`) against its reference, the rules.

Differential: on generated ledger states and batches, the lane's verdict and rows are compared
with `common.domain.rules.decide_batch` on the same state, and `apply_batch` (which takes the lane
where it can) with `apply_batch` forced onto the Python path. Where the rules refuse anything the
lane must decline and write nothing; where they refuse nothing the lane must accept, with the same
outcomes and the same rows. Each example runs in a transaction that is rolled back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from common.adapters.db import LostRace, run_in_transaction
from common.domain.events import IncomingEvent, Origin
from common.domain.outcomes import Outcome, Status
from common.domain.rules import BatchDecisions, Candidate, Half, LedgerState, MovementState, decide_batch
from common.ledger import apply, tables

pytestmark = pytest.mark.integration

Make = Callable[..., IncomingEvent]

W1, W2 = UUID(int=0xA1), UUID(int=0xA2)
P1, P2 = UUID(int=0xB1), UUID(int=0xB2)
MOVEMENTS = [UUID(int=0xC0 + i) for i in range(4)]
M0, M1, M2 = MOVEMENTS[:3]
T1, T2 = datetime(2025, 2, 18, 12, 0, tzinfo=UTC), datetime(2025, 2, 18, 13, 30, tzinfo=UTC)
SEEDED_AT = datetime(2025, 1, 1, tzinfo=UTC)
WINDOW = 3600


@dataclass(frozen=True)
class Ev:
    """One half of a movement, as the test generates it."""

    movement: UUID
    kind: str
    warehouse: UUID
    product: UUID
    quantity: int
    at: datetime


Seeded = tuple[dict[tuple[UUID, UUID], int], dict[UUID, tuple[UUID, Half | None, Half | None]]]


def _item(make: Make, e: Ev, offset: int) -> IncomingEvent:
    return make(
        e.movement, e.kind, e.warehouse, e.product, e.quantity, timestamp=e.at.isoformat(),
        envelope_id=f"env-{offset}", origin=Origin.kafka("lane-test", 0, offset, cluster="c1"),
    )  # fmt: skip


def _seed(conn: psycopg.Connection, seeded: Seeded) -> None:
    stock, movements = seeded
    for (w, p), q in stock.items():
        conn.execute("INSERT INTO stock VALUES (%s, %s, %s, %s)", (w, p, q, SEEDED_AT))
    for m, (p, dep, arr) in movements.items():
        conn.execute(
            """
            INSERT INTO movements (movement_id, product_id, source_warehouse_id, departed_quantity,
                                   departed_at, destination_warehouse_id, arrived_quantity,
                                   arrived_at, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (m, p, *_half_columns(dep), *_half_columns(arr), SEEDED_AT),
        )


def _half_columns(half: Half | None) -> tuple[Any, Any, Any]:
    return (half.warehouse_id, half.quantity, half.at) if half else (None, None, None)


def _reference_state(seeded: Seeded) -> LedgerState:
    stock, movements = seeded
    return LedgerState(
        stock=dict(stock), movements={m: MovementState(p, dep, arr) for m, (p, dep, arr) in movements.items()}
    )


def _rows(conn: psycopg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the batch may write (ids aside: sequences are not rolled back)."""
    queries = {
        "stock": "SELECT warehouse_id, product_id, quantity, updated_at FROM stock ORDER BY 1, 2",
        "movements": """SELECT movement_id, product_id, source_warehouse_id, departed_quantity, departed_at,
                               destination_warehouse_id, arrived_quantity, arrived_at, updated_at
                        FROM movements ORDER BY 1""",
        "log": """SELECT movement_id, event, warehouse_id, product_id, quantity, occurred_at, envelope_id,
                         origin, kafka_topic, kafka_partition, kafka_offset, kafka_cluster, received_at
                  FROM movement_events ORDER BY id""",
        "counts": """SELECT minute, origin, outcome, reason, events
                     FROM event_outcome_counts ORDER BY 1, 2, 3, 4, 5""",
        "codes": "SELECT warehouse_id, code, first_seen, last_seen FROM warehouse_codes ORDER BY 1, 2",
        "parked": """SELECT reason, detail, movement_id, event, kafka_offset, replay_status, replay_detail
                     FROM rejected_events ORDER BY id""",
    }
    return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}


@contextmanager
def _rolled_back(conn: psycopg.Connection) -> Iterator[None]:
    with conn.transaction(force_rollback=True):
        yield


@pytest.fixture(autouse=True)
def _fresh_lane_gate() -> Iterator[None]:
    """Each test starts with the lane worth trying (an earlier test's declines aside)."""
    with _lane_gate_reset():
        yield


@contextmanager
def _lane_gate_reset() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(apply, "_LANE", apply._LaneGate())
        yield


@contextmanager
def _python_path_only() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(apply, "_may_be_clean", lambda items: False)
        yield


def _comparable(outcomes: list[Outcome]) -> list[Outcome]:
    """Outcomes with dead-letter ids blanked (each savepoint parks under new ids)."""
    return [o if o.rejected_event_id is None else replace(o, rejected_event_id=0) for o in outcomes]


def check_lane(conn: psycopg.Connection, make: Make, seeded: Seeded, batch: list[Ev]) -> str:
    """Compare the lane with the rules and `apply_batch` with its Python path; the lane's verdict."""
    items = [_item(make, e, offset) for offset, e in enumerate(batch)]
    with _rolled_back(conn):
        _seed(conn, seeded)
        before = _rows(conn)

        # 1. The lane itself against rules.decide_batch on the same state.
        state = _reference_state(seeded)
        decided: BatchDecisions[None] = decide_batch(
            state, [Candidate(item.envelope.data) for item in items if item.envelope]
        )
        decisions = [d for d in decided.decisions if d is not None]
        refused = [d.reason for d in decisions if d.status is Status.REJECTED]
        with _rolled_back(conn):
            lane = tables.apply_clean(conn, items, WINDOW)
            after = _rows(conn)
        if refused:
            assert lane.verdict in {"conflict", "insufficient_stock"}, (lane, refused)
            assert lane.verdict in refused or lane.verdict == "conflict"
            assert after == before, "a declined batch must write nothing"
        else:
            assert lane.verdict == "applied", (lane, decisions)
            statuses = [Status.APPLIED if a else Status.DUPLICATE for a in lane.applied]
            assert list(zip(statuses, lane.stock, strict=True)) == [(d.status, d.stock) for d in decisions]
            assert {(w, p): q for w, p, q, _ in after["stock"]} == state.stock
            movements = {
                m: MovementState(p, Half(sw, sq, sat) if sat else None, Half(dw, dq, dat) if dat else None)
                for m, p, sw, sq, sat, dw, dq, dat, _ in after["movements"]
            }
            assert movements == state.movements
            logged = [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in after["log"]]
            assert logged == [
                (e.movement, e.kind, e.warehouse, e.product, e.quantity, e.at)
                for e, d in zip(batch, decisions, strict=True)
                if d.status is Status.APPLIED
            ]

        # 2. apply_batch (lane where it can) against apply_batch on the Python path alone.
        with _rolled_back(conn):
            with _python_path_only():
                expected = apply.apply_batch(conn, items, auto_replay_window=WINDOW)
            expected_rows = _rows(conn)
        with _rolled_back(conn), _lane_gate_reset():
            got = apply.apply_batch(conn, items, auto_replay_window=WINDOW)
            assert _comparable(got.outcomes) == _comparable(expected.outcomes)
            assert got.retried == expected.retried
            assert _rows(conn) == expected_rows
    return lane.verdict


# -- generated states and batches ---------------------------------------------------------------

keys = st.tuples(st.sampled_from([W1, W2]), st.sampled_from([P1, P2]))
halves = st.builds(Half, st.sampled_from([W1, W2]), st.integers(1, 4), st.sampled_from([T1, T2]))
fresh = st.builds(
    Ev,
    movement=st.sampled_from(MOVEMENTS),
    kind=st.sampled_from(["arrival", "arrival", "departure"]),
    warehouse=st.sampled_from([W1, W2]),
    product=st.sampled_from([P1, P2]),
    quantity=st.integers(1, 4),
    at=st.sampled_from([T1, T2]),
)


@st.composite
def states(draw: st.DrawFn) -> Seeded:
    stock = draw(st.dictionaries(keys, st.integers(0, 6), max_size=4))
    movements = {}
    for m in draw(st.sets(st.sampled_from(MOVEMENTS), max_size=3)):
        dep, arr = draw(st.one_of(st.none(), halves)), draw(st.one_of(st.none(), halves))
        if dep is None and arr is None:
            dep = draw(halves)
        movements[m] = (draw(st.sampled_from([P1, P2])), dep, arr)
    return stock, movements


@st.composite
def batches(draw: st.DrawFn, seeded: Seeded) -> list[Ev]:
    """Fresh events, exact copies (of earlier ones and of the halves held), and variants of them."""
    held = [
        Ev(m, kind, h.warehouse_id, p, h.quantity, h.at)
        for m, (p, dep, arr) in seeded[1].items()
        for kind, h in (("departure", dep), ("arrival", arr))
        if h is not None
    ]
    batch: list[Ev] = []
    for _ in range(draw(st.integers(1, 8))):
        known = batch + held
        action = draw(st.sampled_from(["fresh", "fresh", "copy", "copy", "variant", "other half"]))
        if action == "other half" and known:  # of the same movement, its product or another
            base = draw(st.sampled_from(known))
            kind = "arrival" if base.kind == "departure" else "departure"
            product = draw(st.sampled_from([base.product, base.product, P1, P2]))
            batch.append(Ev(base.movement, kind, draw(st.sampled_from([W1, W2])), product, base.quantity, T2))
        elif action == "copy" and known:
            batch.append(draw(st.sampled_from(known)))
        elif action == "variant" and known:
            base = draw(st.sampled_from(known))
            change = draw(st.sampled_from(["quantity", "warehouse", "product", "at"]))
            other = {
                "quantity": base.quantity % 4 + 1,
                "warehouse": W2 if base.warehouse == W1 else W1,
                "product": P2 if base.product == P1 else P1,
                "at": T2 if base.at == T1 else T1,
            }[change]
            batch.append(Ev(**{**base.__dict__, change: other}))
        else:
            batch.append(draw(fresh))
    return batch


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Seeded, list[Ev]]:
    seeded = draw(states())
    return seeded, draw(batches(seeded))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_the_lane_decides_generated_batches_as_the_rules_do(
    scenario: tuple[Seeded, list[Ev]],
    ledger_session_conn: psycopg.Connection,
    ledger_empty_tables: Callable[[psycopg.Connection], None],
    ledger_make_event: Make,
) -> None:
    conn = ledger_session_conn
    ledger_empty_tables(conn)
    seeded, batch = scenario
    event(f"lane: {check_lane(conn, ledger_make_event, seeded, batch)}")  # --hypothesis-show-statistics


# -- one example per row of the decision table (rules.decide), and the lane's own declines -------

HELD_DEPARTURE: Seeded = ({(W1, P1): 3}, {M0: (P1, Half(W1, 2, T1), None)})

DECISION_TABLE: dict[str, tuple[Seeded, list[Ev], str]] = {
    # this half, same warehouse/product/quantity/time: duplicate (accepted, nothing written)
    "duplicate": (HELD_DEPARTURE, [Ev(M0, "departure", W1, P1, 2, T1)], "applied"),
    # this half, with any other content: conflict
    "conflict: this half, other content": (HELD_DEPARTURE, [Ev(M0, "departure", W1, P1, 3, T1)], "conflict"),
    # the other half, naming another product: conflict
    "conflict: the other half, another product": (
        HELD_DEPARTURE,
        [Ev(M0, "arrival", W2, P2, 2, T2)],
        "conflict",
    ),
    # nothing in the way, a departure above the stock: insufficient_stock
    "insufficient_stock": (HELD_DEPARTURE, [Ev(M1, "departure", W1, P1, 4, T1)], "insufficient_stock"),
    # nothing in the way: applied (arrival +, departure -)
    "applied": (
        HELD_DEPARTURE,
        [
            Ev(M0, "arrival", W2, P1, 2, T2),
            Ev(M1, "departure", W1, P1, 3, T1),
            Ev(M2, "arrival", W1, P1, 1, T1),
        ],
        "applied",
    ),
    "applied: the departure of a movement whose arrival is held": (
        ({(W1, P1): 3}, {M0: (P1, None, Half(W2, 2, T2))}),
        [Ev(M0, "departure", W1, P1, 2, T1), Ev(M0, "arrival", W2, P1, 2, T2)],
        "applied",
    ),
    # within one batch: the second copy of a new half is a duplicate, a variant a conflict
    "duplicate within the batch": (({}, {}), [Ev(M1, "arrival", W1, P1, 2, T1)] * 2, "applied"),
    "conflict within the batch": (
        ({}, {}),
        [Ev(M1, "arrival", W1, P1, 2, T1), Ev(M1, "arrival", W1, P1, 2, T2)],
        "conflict",
    ),
    "conflict within the batch: the other half, another product": (
        ({}, {}),
        [Ev(M1, "departure", W1, P1, 2, T1), Ev(M1, "arrival", W2, P2, 2, T2)],
        "conflict",
    ),
    # a departure the batch's own earlier arrival covers, and one only a later arrival would
    "departure covered by an earlier arrival": (
        ({}, {}),
        [Ev(M1, "arrival", W1, P1, 2, T1), Ev(M2, "departure", W1, P1, 2, T1)],
        "applied",
    ),
    "departure before the arrival that covers it": (
        ({}, {}),
        [Ev(M2, "departure", W1, P1, 2, T1), Ev(M1, "arrival", W1, P1, 2, T1)],
        "insufficient_stock",
    ),
}


@pytest.mark.parametrize("case", list(DECISION_TABLE))
def test_each_row_of_the_decision_table(
    case: str, ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    seeded, batch, verdict = DECISION_TABLE[case]
    assert check_lane(ledger_conn, ledger_make_event, seeded, batch) == verdict


def test_the_lane_declines_an_arrival_a_departure_waits_for(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    """A Kafka departure parked for insufficient stock waits for arrivals: the Python path
    retries it, so the lane must leave such a batch alone."""
    conn = ledger_conn
    waiting = _item(ledger_make_event, Ev(M1, "departure", W1, P1, 2, T1), 100)
    [refused] = apply.apply_events(conn, [waiting], auto_replay_window=WINDOW)
    assert refused.reason == "insufficient_stock"
    arrival = _item(ledger_make_event, Ev(M2, "arrival", W1, P1, 5, T1), 101)
    with _rolled_back(conn):
        before = _rows(conn)
        assert tables.apply_clean(conn, [arrival], WINDOW).verdict == "waiting"
        assert _rows(conn) == before
        assert tables.apply_clean(conn, [arrival], 0).verdict == "applied"  # no window: nothing waits
    applied = apply.apply_batch(conn, [arrival], auto_replay_window=WINDOW)
    assert [o.status for o in applied.outcomes] == [Status.APPLIED]
    assert [(o.status, o.stock) for _, o in applied.retried] == [(Status.APPLIED, 3)]


def test_a_batch_the_lane_cannot_take_goes_the_python_way(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    """Invalid items and a Kafka record twice in one batch never reach the lane."""
    calls: list[int] = []
    real = tables.apply_clean

    def spy(conn: psycopg.Connection, items: list[IncomingEvent], window: int) -> tables.CleanBatch:
        calls.append(len(items))
        return real(conn, items, window)

    record = _item(ledger_make_event, Ev(M1, "arrival", W1, P1, 2, T1), 7)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tables, "apply_clean", spy)
        twice = apply.apply_events(ledger_conn, [record, record])
        assert calls == []
        assert [(o.status, o.redelivered) for o in twice] == [(Status.APPLIED, False), (Status.APPLIED, True)]
        later = _item(ledger_make_event, Ev(M1, "arrival", W1, P1, 2, T1), 8)
        again = apply.apply_events(ledger_conn, [later])
        assert calls == [1]
        assert [(o.status, o.stock) for o in again] == [(Status.DUPLICATE, 2)]


def test_a_row_created_meanwhile_makes_the_lane_lose_the_race(
    ledger_conn: psycopg.Connection, ledger_connect: Callable[[], psycopg.Connection], ledger_make_event: Make
) -> None:
    """Another transaction creates the movement and stock rows this batch creates, and commits
    after the lane's locks (which could not see them): the lane's insert skips the row, apply_batch
    raises LostRace, and run_in_transaction's next attempt sees a duplicate."""
    other = ledger_connect()
    first = _item(ledger_make_event, Ev(M1, "arrival", W1, P1, 2, T1), 1)
    copy = _item(ledger_make_event, Ev(M1, "arrival", W1, P1, 2, T1), 2)
    other.execute("BEGIN")
    apply.apply_events(other, [first])  # uncommitted: invisible to the lane's locks
    pid = ledger_conn.info.backend_pid
    attempts: list[str] = []

    def work(conn: psycopg.Connection) -> list[Outcome]:
        try:
            return apply.apply_events(conn, [copy])
        except LostRace:
            attempts.append("lost the race")
            raise

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(run_in_transaction, work, conn=ledger_conn)
        watcher = ledger_connect()
        deadline = time.monotonic() + 30
        while not watcher.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'", (pid,)
        ).fetchone():
            assert time.monotonic() < deadline, "the lane never waited on the other transaction's row"
            time.sleep(0.02)
        other.execute("COMMIT")
        [outcome] = running.result(timeout=60)
    assert attempts == ["lost the race"]
    assert (outcome.status, outcome.stock) == (Status.DUPLICATE, 2)


def test_after_declines_batches_skip_the_lane_for_a_while() -> None:
    """A stream whose batches keep declining stops paying for the lane: 1, 2, 4 ... up to 64
    batches go the Python way between tries; one accepted batch makes every batch try again."""
    gate = apply._LaneGate()
    tried: list[int] = []
    for batch in range(200):
        if gate.worth_trying():
            tried.append(batch)
            gate.note(declined=True)
    assert [b - a - 1 for a, b in zip(tried, tried[1:], strict=False)] == [1, 2, 4, 8, 16, 32, 64, 64]
    gate.skip = 0
    assert gate.worth_trying()
    gate.note(declined=False)
    assert all(gate.worth_trying() for _ in range(10))
