"""apply_events on a real PostgreSQL: every outcome and every ordering rule of the ledger."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from common.domain.events import IncomingEvent, Origin, parse_event
from common.domain.outcomes import Outcome
from common.ledger.apply import apply_events
from common.reads.movements import get_movement
from common.reads.stock import get_stock

pytestmark = pytest.mark.integration

Make = Callable[..., IncomingEvent]

# The brief's identifiers.
MOVEMENT = UUID("c6290746-790e-43fa-8270-014dc90e02e0")
WAREHOUSE_A = UUID("25718666-6af6-4281-b5a6-3016e36fa557")
WAREHOUSE_B = UUID("c1d70455-7e14-11e9-812a-70106f431230")
PRODUCT = UUID("4705204f-498f-4f96-b4ba-df17fb56bf55")
OTHER_PRODUCT = UUID("0d4c3a6e-1f34-4d9c-9a52-8c1b8d4f7e21")


def stock(conn: psycopg.Connection, warehouse: UUID, product: UUID = PRODUCT) -> int:
    return get_stock(conn, warehouse, product).quantity


def statuses(outcomes: Sequence[Outcome]) -> list[tuple[str, str | None]]:
    return [(o.status, o.reason) for o in outcomes]


def applied_log(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT movement_id, event, warehouse_id, product_id, quantity, occurred_at, envelope_id"
        " FROM movement_events ORDER BY id"
    ).fetchall()


def parked(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, reason, raw_payload, movement_id, event, origin, kafka_topic, kafka_partition,"
        " kafka_offset FROM rejected_events ORDER BY id"
    ).fetchall()


def seed(
    conn: psycopg.Connection, make: Make, warehouse: UUID, quantity: int, product: UUID = PRODUCT
) -> None:
    """Put `quantity` on hand with an arrival of its own movement."""
    [outcome] = apply_events(conn, [make(uuid4(), "arrival", warehouse, product, quantity)])
    assert outcome.status == "applied"


# --- applied -----------------------------------------------------------------------------------


def test_arrival_adds_to_stock(ledger_conn: psycopg.Connection, ledger_make_event: Make) -> None:
    first = apply_events(ledger_conn, [ledger_make_event(uuid4(), "arrival", WAREHOUSE_A, PRODUCT, 10)])
    second = apply_events(ledger_conn, [ledger_make_event(uuid4(), "arrival", WAREHOUSE_A, PRODUCT, 5)])

    assert statuses(first + second) == [("applied", None), ("applied", None)]
    assert [first[0].stock, second[0].stock] == [10, 15]
    assert stock(ledger_conn, WAREHOUSE_A) == 15
    assert stock(ledger_conn, WAREHOUSE_B) == 0
    assert stock(ledger_conn, WAREHOUSE_A, OTHER_PRODUCT) == 0
    assert len(applied_log(ledger_conn)) == 2
    assert parked(ledger_conn) == []


def test_departure_subtracts_from_stock(ledger_conn: psycopg.Connection, ledger_make_event: Make) -> None:
    seed(ledger_conn, ledger_make_event, WAREHOUSE_A, 10)

    [outcome] = apply_events(ledger_conn, [ledger_make_event(uuid4(), "departure", WAREHOUSE_A, PRODUCT, 4)])

    assert (outcome.status, outcome.stock) == ("applied", 6)
    assert stock(ledger_conn, WAREHOUSE_A) == 6


def test_departure_of_everything_on_hand_leaves_zero(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    seed(ledger_conn, ledger_make_event, WAREHOUSE_A, 7)

    [outcome] = apply_events(ledger_conn, [ledger_make_event(uuid4(), "departure", WAREHOUSE_A, PRODUCT, 7)])

    assert (outcome.status, outcome.stock) == ("applied", 0)
    view = get_stock(ledger_conn, WAREHOUSE_A, PRODUCT)
    assert view.quantity == 0
    assert view.updated_at is not None  # seen, now empty


def test_applied_event_is_logged_as_received(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    item = ledger_make_event(
        MOVEMENT,
        "ARRIVAL",
        WAREHOUSE_B,
        PRODUCT,
        98,
        timestamp="2025-02-18T17:34:56+03:00",
        envelope_id="evt-42",
        origin=Origin.kafka("movements", 2, 1001),
    )

    apply_events(ledger_conn, [item])

    assert applied_log(ledger_conn) == [
        (
            MOVEMENT,
            "arrival",
            WAREHOUSE_B,
            PRODUCT,
            98,
            datetime(2025, 2, 18, 14, 34, 56, tzinfo=UTC),
            "evt-42",
        )
    ]
    assert ledger_conn.execute(
        "SELECT origin, kafka_topic, kafka_partition, kafka_offset FROM movement_events"
    ).fetchall() == [("kafka", "movements", 2, 1001)]


# --- duplicate ---------------------------------------------------------------------------------


def test_redelivered_event_is_a_duplicate_without_effect(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    item = ledger_make_event(MOVEMENT, "arrival", WAREHOUSE_A, PRODUCT, 10)
    apply_events(ledger_conn, [item])

    [again] = apply_events(ledger_conn, [item])

    assert (again.status, again.reason, again.stock) == ("duplicate", None, 10)
    assert stock(ledger_conn, WAREHOUSE_A) == 10
    assert len(applied_log(ledger_conn)) == 1
    assert parked(ledger_conn) == []


def test_same_content_under_another_envelope_and_spelling_is_a_duplicate(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    seed(ledger_conn, ledger_make_event, WAREHOUSE_A, 100)
    first = ledger_make_event(
        MOVEMENT, "departure", WAREHOUSE_A, PRODUCT, 30, "2025-02-18T12:12:56Z", envelope_id="one"
    )
    # Another envelope id, the event in capitals, upper-case UUIDs, the same instant at +03:00.
    second = ledger_make_event(
        str(MOVEMENT).upper(),
        "DEPARTURE",
        str(WAREHOUSE_A).upper(),
        str(PRODUCT).upper(),
        30,
        "2025-02-18T15:12:56+03:00",
        envelope_id="two",
    )

    outcomes = apply_events(ledger_conn, [first]) + apply_events(ledger_conn, [second])

    assert statuses(outcomes) == [("applied", None), ("duplicate", None)]
    assert stock(ledger_conn, WAREHOUSE_A) == 70
    assert [row[-1] for row in applied_log(ledger_conn)][1:] == ["one"]


def test_duplicate_inside_one_batch(ledger_conn: psycopg.Connection, ledger_make_event: Make) -> None:
    item = ledger_make_event(MOVEMENT, "arrival", WAREHOUSE_A, PRODUCT, 10)

    outcomes = apply_events(ledger_conn, [item, item, item])

    assert statuses(outcomes) == [("applied", None), ("duplicate", None), ("duplicate", None)]
    assert stock(ledger_conn, WAREHOUSE_A) == 10


def test_redelivered_departure_stays_a_duplicate_once_the_stock_is_gone(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    seed(ledger_conn, ledger_make_event, WAREHOUSE_A, 5)
    departure = ledger_make_event(MOVEMENT, "departure", WAREHOUSE_A, PRODUCT, 5)
    apply_events(ledger_conn, [departure])

    [again] = apply_events(ledger_conn, [departure])

    assert (again.status, again.reason) == ("duplicate", None)
    assert parked(ledger_conn) == []


# --- conflict ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": 11},
        {"warehouse_id": WAREHOUSE_B},
        {"timestamp": "2025-02-18T12:12:57Z"},
        {"product_id": OTHER_PRODUCT},
    ],
    ids=["quantity", "warehouse", "timestamp", "product"],
)
def test_same_half_with_other_content_is_a_conflict_and_the_first_version_stands(
    ledger_conn: psycopg.Connection, ledger_make_event: Make, change: dict[str, Any]
) -> None:
    fields: dict[str, Any] = {
        "movement_id": MOVEMENT,
        "event": "arrival",
        "warehouse_id": WAREHOUSE_A,
        "product_id": PRODUCT,
        "quantity": 10,
        "timestamp": "2025-02-18T12:12:56Z",
    }
    first = ledger_make_event(**fields)
    other = ledger_make_event(**(fields | change), envelope_id="second-version")
    apply_events(ledger_conn, [first])

    [outcome] = apply_events(ledger_conn, [other])

    assert (outcome.status, outcome.reason) == ("rejected", "conflict")
    assert outcome.detail and "first version stands" in outcome.detail
    assert stock(ledger_conn, WAREHOUSE_A) == 10
    assert get_stock(ledger_conn, WAREHOUSE_B, PRODUCT).updated_at is None
    assert get_stock(ledger_conn, WAREHOUSE_A, OTHER_PRODUCT).updated_at is None
    movement = get_movement(ledger_conn, MOVEMENT)
    assert movement is not None
    assert (movement.destination_warehouse_id, movement.product_id, movement.arrived_quantity) == (
        WAREHOUSE_A,
        PRODUCT,
        10,
    )
    assert len(applied_log(ledger_conn)) == 1
    [row] = parked(ledger_conn)
    assert row[0] == outcome.rejected_event_id
    assert row[1:6] == ("conflict", other.raw, MOVEMENT, "arrival", "webhook")


@pytest.mark.parametrize("first_half", ["departure", "arrival"])
def test_other_half_naming_another_product_is_a_conflict(
    ledger_conn: psycopg.Connection, ledger_make_event: Make, first_half: str
) -> None:
    seed(ledger_conn, ledger_make_event, WAREHOUSE_A, 50, OTHER_PRODUCT)
    second_half = "arrival" if first_half == "departure" else "departure"
    first_wh, second_wh = (
        (WAREHOUSE_A, WAREHOUSE_B) if first_half == "departure" else (WAREHOUSE_B, WAREHOUSE_A)
    )
    if first_half == "departure":
        seed(ledger_conn, ledger_make_event, WAREHOUSE_A, 50)
    apply_events(ledger_conn, [ledger_make_event(MOVEMENT, first_half, first_wh, PRODUCT, 20)])
    before = {
        (w, p): stock(ledger_conn, w, p) for w in (WAREHOUSE_A, WAREHOUSE_B) for p in (PRODUCT, OTHER_PRODUCT)
    }

    [outcome] = apply_events(
        ledger_conn, [ledger_make_event(MOVEMENT, second_half, second_wh, OTHER_PRODUCT, 20)]
    )

    assert (outcome.status, outcome.reason) == ("rejected", "conflict")
    after = {
        (w, p): stock(ledger_conn, w, p) for w in (WAREHOUSE_A, WAREHOUSE_B) for p in (PRODUCT, OTHER_PRODUCT)
    }
    assert after == before
    movement = get_movement(ledger_conn, MOVEMENT)
    assert movement is not None
    assert movement.product_id == PRODUCT
    assert movement.status == ("in_transit" if first_half == "departure" else "arrival_only")
    assert [(r[1], r[4]) for r in parked(ledger_conn)] == [("conflict", second_half)]


# --- insufficient stock ------------------------------------------------------------------------


def test_departure_beyond_the_stock_is_rejected_and_parked(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    seed(ledger_conn, ledger_make_event, WAREHOUSE_A, 3)
    item = ledger_make_event(MOVEMENT, "departure", WAREHOUSE_A, PRODUCT, 4)

    [outcome] = apply_events(ledger_conn, [item])

    assert (outcome.status, outcome.reason, outcome.stock) == ("rejected", "insufficient_stock", 3)
    assert stock(ledger_conn, WAREHOUSE_A) == 3
    assert get_movement(ledger_conn, MOVEMENT) is None
    [row] = parked(ledger_conn)
    assert row[1:6] == ("insufficient_stock", item.raw, MOVEMENT, "departure", "webhook")
    assert len(applied_log(ledger_conn)) == 1  # the seed only


def test_departure_from_a_never_seen_pair_is_insufficient(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    [outcome] = apply_events(ledger_conn, [ledger_make_event(MOVEMENT, "departure", WAREHOUSE_A, PRODUCT, 1)])

    assert (outcome.status, outcome.reason) == ("rejected", "insufficient_stock")
    view = get_stock(ledger_conn, WAREHOUSE_A, PRODUCT)
    assert (view.quantity, view.updated_at) == (0, None)


def test_rejected_departure_can_be_applied_later_when_stock_arrives(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    departure = ledger_make_event(MOVEMENT, "departure", WAREHOUSE_A, PRODUCT, 5)
    [first] = apply_events(ledger_conn, [departure])
    seed(ledger_conn, ledger_make_event, WAREHOUSE_A, 5)

    [second] = apply_events(ledger_conn, [departure])

    assert (first.reason, second.status) == ("insufficient_stock", "applied")
    assert stock(ledger_conn, WAREHOUSE_A) == 0


# --- invalid -----------------------------------------------------------------------------------

VALID = json.dumps(
    {
        "id": "x",
        "source": "WH-1",
        "specversion": "1.0",
        "type": "ru.retail.warehouses.movement",
        "data": {
            "movement_id": str(MOVEMENT),
            "warehouse_id": str(WAREHOUSE_A),
            "product_id": str(PRODUCT),
            "event": "arrival",
            "quantity": 0,
            "timestamp": "2025-02-18T12:12:56Z",
        },
    }
).encode()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"\xff\xfe\x00garbage\x80", id="not-utf8"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[" * 5000, id="deeply-nested"),
        pytest.param(VALID, id="quantity-zero"),
    ],
)
def test_invalid_payload_is_parked_with_its_raw_bytes(ledger_conn: psycopg.Connection, raw: bytes) -> None:
    item = parse_event(raw, Origin.webhook())

    [outcome] = apply_events(ledger_conn, [item])

    assert (outcome.status, outcome.reason) == ("rejected", "invalid")
    assert outcome.errors and outcome.detail
    [row] = parked(ledger_conn)
    assert row[0] == outcome.rejected_event_id
    assert row[1] == "invalid"
    assert bytes(row[2]) == raw
    assert row[3:5] == (None, None)
    assert ledger_conn.execute("SELECT detail FROM rejected_events").fetchone() == (outcome.detail,)
    assert applied_log(ledger_conn) == []
    assert stock(ledger_conn, WAREHOUSE_A) == 0


def test_invalid_items_do_not_stop_the_rest_of_the_batch(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    batch = [
        parse_event(b"{oops", Origin.webhook()),
        ledger_make_event(uuid4(), "arrival", WAREHOUSE_A, PRODUCT, 4),
        parse_event(VALID, Origin.webhook()),
        ledger_make_event(uuid4(), "departure", WAREHOUSE_A, PRODUCT, 1),
    ]

    outcomes = apply_events(ledger_conn, batch)

    assert statuses(outcomes) == [
        ("rejected", "invalid"),
        ("applied", None),
        ("rejected", "invalid"),
        ("applied", None),
    ]
    assert stock(ledger_conn, WAREHOUSE_A) == 3
    assert [r[1] for r in parked(ledger_conn)] == ["invalid", "invalid"]


# --- ordering ----------------------------------------------------------------------------------


def test_arrival_before_departure_neither_waits_and_the_movement_ends_delivered(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    seed(ledger_conn, ledger_make_event, WAREHOUSE_A, 10)
    [arrival] = apply_events(
        ledger_conn,
        [ledger_make_event(MOVEMENT, "arrival", WAREHOUSE_B, PRODUCT, 10, "2025-02-18T14:00:00Z")],
    )

    assert (arrival.status, stock(ledger_conn, WAREHOUSE_B)) == ("applied", 10)
    assert stock(ledger_conn, WAREHOUSE_A) == 10
    early = get_movement(ledger_conn, MOVEMENT)
    assert early is not None and early.status == "arrival_only"

    [departure] = apply_events(
        ledger_conn,
        [ledger_make_event(MOVEMENT, "departure", WAREHOUSE_A, PRODUCT, 10, "2025-02-18T12:00:00Z")],
    )

    assert departure.status == "applied"
    assert (stock(ledger_conn, WAREHOUSE_A), stock(ledger_conn, WAREHOUSE_B)) == (0, 10)
    movement = get_movement(ledger_conn, MOVEMENT)
    assert movement is not None
    assert (movement.status, movement.transit_seconds, movement.quantity_difference) == ("delivered", 7200, 0)


def test_events_of_one_key_take_effect_in_the_order_given(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    arrival = ledger_make_event(uuid4(), "arrival", WAREHOUSE_A, PRODUCT, 5)
    departure = ledger_make_event(uuid4(), "departure", WAREHOUSE_A, PRODUCT, 5)

    outcomes = apply_events(ledger_conn, [arrival, departure])

    assert statuses(outcomes) == [("applied", None), ("applied", None)]
    assert [o.stock for o in outcomes] == [5, 0]
    assert stock(ledger_conn, WAREHOUSE_A) == 0


def test_departure_given_before_the_arrival_that_would_cover_it_is_rejected(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    arrival = ledger_make_event(uuid4(), "arrival", WAREHOUSE_A, PRODUCT, 5)
    departure = ledger_make_event(uuid4(), "departure", WAREHOUSE_A, PRODUCT, 5)

    outcomes = apply_events(ledger_conn, [departure, arrival])

    assert statuses(outcomes) == [("rejected", "insufficient_stock"), ("applied", None)]
    assert stock(ledger_conn, WAREHOUSE_A) == 5


def test_both_halves_in_one_batch_in_either_order(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    seed(ledger_conn, ledger_make_event, WAREHOUSE_A, 10)
    m1, m2 = uuid4(), uuid4()
    batch = [
        ledger_make_event(m1, "departure", WAREHOUSE_A, PRODUCT, 4),
        ledger_make_event(m1, "arrival", WAREHOUSE_B, PRODUCT, 4),
        ledger_make_event(m2, "arrival", WAREHOUSE_B, PRODUCT, 6),
        ledger_make_event(m2, "departure", WAREHOUSE_A, PRODUCT, 6),
    ]

    outcomes = apply_events(ledger_conn, batch)

    assert [o.status for o in outcomes] == ["applied"] * 4
    assert (stock(ledger_conn, WAREHOUSE_A), stock(ledger_conn, WAREHOUSE_B)) == (0, 10)
    for mid in (m1, m2):
        movement = get_movement(ledger_conn, mid)
        assert movement is not None and movement.status == "delivered"


def test_conflict_inside_one_batch_keeps_the_version_given_first(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    batch = [
        ledger_make_event(MOVEMENT, "arrival", WAREHOUSE_A, PRODUCT, 3),
        ledger_make_event(MOVEMENT, "arrival", WAREHOUSE_A, PRODUCT, 30),
    ]

    outcomes = apply_events(ledger_conn, batch)

    assert statuses(outcomes) == [("applied", None), ("rejected", "conflict")]
    assert stock(ledger_conn, WAREHOUSE_A) == 3


# --- dead letters from Kafka -------------------------------------------------------------------


def test_redelivered_kafka_record_that_was_rejected_is_parked_once(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    origin = Origin.kafka("warehouse-movements", 3, 1234)
    item = ledger_make_event(MOVEMENT, "departure", WAREHOUSE_A, PRODUCT, 5, origin=origin)

    [first] = apply_events(ledger_conn, [item])
    [second] = apply_events(ledger_conn, [item])
    [third, fourth] = apply_events(ledger_conn, [item, item])

    assert {o.reason for o in (first, second, third, fourth)} == {"insufficient_stock"}
    rows = parked(ledger_conn)
    assert len(rows) == 1
    assert rows[0][6:] == ("warehouse-movements", 3, 1234)
    assert {o.rejected_event_id for o in (first, second, third, fourth)} == {rows[0][0]}


def test_a_waiting_departure_is_applied_by_the_restock_and_not_again_on_redelivery(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    record = ledger_make_event(
        MOVEMENT, "departure", WAREHOUSE_A, PRODUCT, 5, origin=Origin.kafka("movements", 0, 7)
    )
    [first] = apply_events(ledger_conn, [record])
    seed(ledger_conn, ledger_make_event, WAREHOUSE_A, 5)  # the arrival retries the waiting departure

    [again] = apply_events(ledger_conn, [record])  # the same record redelivered

    assert (first.status, first.reason) == ("rejected", "insufficient_stock")
    assert (again.status, again.rejected_event_id, again.redelivered) == (
        "rejected",
        first.rejected_event_id,
        True,
    )
    assert stock(ledger_conn, WAREHOUSE_A) == 0
    movement = get_movement(ledger_conn, MOVEMENT)
    assert movement is not None and movement.departed_quantity == 5
    [(reason, replay_status)] = ledger_conn.execute(
        "SELECT reason, replay_status FROM rejected_events"
    ).fetchall()
    assert (reason, replay_status) == ("insufficient_stock", "applied")
    assert len(applied_log(ledger_conn)) == 2


def test_without_the_retry_window_a_refused_departure_waits_for_the_operator(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    record = ledger_make_event(
        MOVEMENT, "departure", WAREHOUSE_A, PRODUCT, 5, origin=Origin.kafka("movements", 0, 7)
    )
    [first] = apply_events(ledger_conn, [record], auto_replay_window=0)
    restock = ledger_make_event(uuid4(), "arrival", WAREHOUSE_A, PRODUCT, 5)
    apply_events(ledger_conn, [restock], auto_replay_window=0)

    [again] = apply_events(ledger_conn, [record], auto_replay_window=0)

    assert (again.status, again.reason) == ("rejected", "insufficient_stock")
    assert again.rejected_event_id == first.rejected_event_id
    assert stock(ledger_conn, WAREHOUSE_A) == 5
    assert get_movement(ledger_conn, MOVEMENT) is None


def test_kafka_record_twice_in_one_batch_is_decided_once(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    record = ledger_make_event(
        MOVEMENT, "departure", WAREHOUSE_A, PRODUCT, 5, origin=Origin.kafka("movements", 0, 7)
    )
    restock = ledger_make_event(uuid4(), "arrival", WAREHOUSE_A, PRODUCT, 5)

    outcomes = apply_events(ledger_conn, [record, restock, record])

    # Refused, then applied when the restock later in the batch raised the stock; the copy follows.
    assert statuses(outcomes) == [("applied", None), ("applied", None), ("applied", None)]
    assert outcomes[2].redelivered
    assert stock(ledger_conn, WAREHOUSE_A) == 0
    assert parked(ledger_conn) == []


def test_other_kafka_records_and_webhook_calls_are_each_parked(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    def departure(origin: Origin) -> IncomingEvent:
        return ledger_make_event(MOVEMENT, "departure", WAREHOUSE_A, PRODUCT, 5, origin=origin)

    apply_events(ledger_conn, [departure(Origin.kafka("t", 0, 1)), departure(Origin.kafka("t", 0, 2))])
    apply_events(ledger_conn, [departure(Origin.kafka("t", 1, 1)), departure(Origin.kafka("u", 0, 1))])
    apply_events(ledger_conn, [departure(Origin.webhook())])
    apply_events(ledger_conn, [departure(Origin.webhook())])

    assert [(r[5], r[6], r[7], r[8]) for r in parked(ledger_conn)] == [
        ("kafka", "t", 0, 1),
        ("kafka", "t", 0, 2),
        ("kafka", "t", 1, 1),
        ("kafka", "u", 0, 1),
        ("webhook", None, None, None),
        ("webhook", None, None, None),
    ]


# --- the brief's example -----------------------------------------------------------------------


def test_brief_example(ledger_conn: psycopg.Connection, ledger_make_event: Make) -> None:
    stocked = apply_events(ledger_conn, [ledger_make_event(uuid4(), "arrival", WAREHOUSE_A, PRODUCT, 100)])
    departure = ledger_make_event(MOVEMENT, "departure", WAREHOUSE_A, PRODUCT, 100, "2025-02-18T12:12:56Z")
    arrival = ledger_make_event(MOVEMENT, "arrival", WAREHOUSE_B, PRODUCT, 98, "2025-02-18T14:34:56Z")

    outcomes = stocked + apply_events(ledger_conn, [departure]) + apply_events(ledger_conn, [arrival])

    assert [o.status for o in outcomes] == ["applied"] * 3
    movement = get_movement(ledger_conn, MOVEMENT)
    assert movement is not None
    assert movement.status == "delivered"
    assert movement.product_id == PRODUCT
    assert (movement.source_warehouse_id, movement.destination_warehouse_id) == (WAREHOUSE_A, WAREHOUSE_B)
    assert (movement.departed_quantity, movement.arrived_quantity) == (100, 98)
    assert movement.quantity_difference == -2
    assert movement.transit_seconds == 8520
    assert movement.departed_at == datetime(2025, 2, 18, 12, 12, 56, tzinfo=UTC)
    assert movement.arrived_at == datetime(2025, 2, 18, 14, 34, 56, tzinfo=UTC)
    assert (stock(ledger_conn, WAREHOUSE_A), stock(ledger_conn, WAREHOUSE_B)) == (0, 98)


# --- transactions ------------------------------------------------------------------------------


def test_empty_batch_does_nothing(ledger_conn: psycopg.Connection) -> None:
    assert apply_events(ledger_conn, []) == []
    assert applied_log(ledger_conn) == [] and parked(ledger_conn) == []


def test_inside_the_callers_transaction_a_rollback_undoes_everything(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    class Abort(Exception):
        pass

    with pytest.raises(Abort), ledger_conn.transaction():
        outcomes = apply_events(
            ledger_conn,
            [
                ledger_make_event(MOVEMENT, "arrival", WAREHOUSE_A, PRODUCT, 10),
                ledger_make_event(uuid4(), "departure", WAREHOUSE_B, PRODUCT, 10),
            ],
        )
        assert statuses(outcomes) == [("applied", None), ("rejected", "insufficient_stock")]
        assert stock(ledger_conn, WAREHOUSE_A) == 10  # visible inside the transaction
        raise Abort

    assert get_stock(ledger_conn, WAREHOUSE_A, PRODUCT).updated_at is None
    assert get_movement(ledger_conn, MOVEMENT) is None
    assert applied_log(ledger_conn) == [] and parked(ledger_conn) == []


def test_outcomes_come_one_per_item_in_order(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    arrival = ledger_make_event(MOVEMENT, "arrival", WAREHOUSE_A, PRODUCT, 2)
    batch = [
        arrival,
        ledger_make_event(uuid4(), "departure", WAREHOUSE_B, PRODUCT, 1),
        arrival,
        ledger_make_event(MOVEMENT, "arrival", WAREHOUSE_A, PRODUCT, 3),
        parse_event(b"", Origin.webhook()),
    ]

    outcomes = apply_events(ledger_conn, batch)

    assert statuses(outcomes) == [
        ("applied", None),
        ("rejected", "insufficient_stock"),
        ("duplicate", None),
        ("rejected", "conflict"),
        ("rejected", "invalid"),
    ]
    for item, outcome in zip(batch[:4], outcomes[:4], strict=True):
        assert item.envelope is not None
        assert outcome.event == item.envelope.data
    assert [o.rejected_event_id is not None for o in outcomes] == [False, True, False, True, True]
