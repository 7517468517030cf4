"""The read models (common/reads/stock.py, movements.py) over what apply_events wrote."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import psycopg
import pytest

from common.domain.events import IncomingEvent
from common.ledger.apply import apply_events
from common.reads.movements import get_movement
from common.reads.stock import get_stock

pytestmark = pytest.mark.integration

Make = Callable[..., IncomingEvent]

WAREHOUSE_A = UUID("25718666-6af6-4281-b5a6-3016e36fa557")
WAREHOUSE_B = UUID("c1d70455-7e14-11e9-812a-70106f431230")
PRODUCT = UUID("4705204f-498f-4f96-b4ba-df17fb56bf55")


def db_now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]


# --- stock -------------------------------------------------------------------------------------


def test_stock_of_a_never_seen_pair_is_zero_and_never_updated(ledger_conn: psycopg.Connection) -> None:
    view = get_stock(ledger_conn, WAREHOUSE_A, PRODUCT)

    assert (view.warehouse_id, view.product_id, view.quantity, view.updated_at) == (
        WAREHOUSE_A,
        PRODUCT,
        0,
        None,
    )


def test_stock_after_an_arrival_has_its_quantity_and_time(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    before = db_now(ledger_conn)

    apply_events(ledger_conn, [ledger_make_event(uuid4(), "arrival", WAREHOUSE_A, PRODUCT, 12)])

    view = get_stock(ledger_conn, WAREHOUSE_A, PRODUCT)
    assert view.quantity == 12
    assert view.updated_at is not None
    assert before - timedelta(seconds=1) <= view.updated_at <= db_now(ledger_conn)
    other = get_stock(ledger_conn, WAREHOUSE_B, PRODUCT)
    assert (other.quantity, other.updated_at) == (0, None)


def test_stock_updated_at_moves_with_each_applied_event_only(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    apply_events(ledger_conn, [ledger_make_event(uuid4(), "arrival", WAREHOUSE_A, PRODUCT, 5)])
    first = get_stock(ledger_conn, WAREHOUSE_A, PRODUCT).updated_at

    apply_events(ledger_conn, [ledger_make_event(uuid4(), "departure", WAREHOUSE_A, PRODUCT, 9)])  # refused
    refused = get_stock(ledger_conn, WAREHOUSE_A, PRODUCT)
    apply_events(ledger_conn, [ledger_make_event(uuid4(), "departure", WAREHOUSE_A, PRODUCT, 2)])
    moved = get_stock(ledger_conn, WAREHOUSE_A, PRODUCT)

    assert (refused.quantity, refused.updated_at) == (5, first)
    assert moved.quantity == 3
    assert first is not None and moved.updated_at is not None and moved.updated_at > first


def test_refused_departure_from_a_never_seen_pair_leaves_it_never_seen(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    apply_events(ledger_conn, [ledger_make_event(uuid4(), "departure", WAREHOUSE_A, PRODUCT, 1)])

    view = get_stock(ledger_conn, WAREHOUSE_A, PRODUCT)
    assert (view.quantity, view.updated_at) == (0, None)


# --- movements ---------------------------------------------------------------------------------


def test_unknown_movement_is_none(ledger_conn: psycopg.Connection) -> None:
    assert get_movement(ledger_conn, uuid4()) is None


def test_movement_whose_only_event_was_rejected_is_none(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    movement_id = uuid4()
    [outcome] = apply_events(
        ledger_conn, [ledger_make_event(movement_id, "departure", WAREHOUSE_A, PRODUCT, 3)]
    )

    assert outcome.reason == "insufficient_stock"
    assert get_movement(ledger_conn, movement_id) is None


def test_departed_movement_is_in_transit(ledger_conn: psycopg.Connection, ledger_make_event: Make) -> None:
    apply_events(ledger_conn, [ledger_make_event(uuid4(), "arrival", WAREHOUSE_A, PRODUCT, 100)])
    movement_id = uuid4()

    apply_events(
        ledger_conn,
        [ledger_make_event(movement_id, "departure", WAREHOUSE_A, PRODUCT, 40, "2025-02-18T12:12:56+03:00")],
    )

    view = get_movement(ledger_conn, movement_id)
    assert view is not None
    assert view.status == "in_transit"
    assert (view.movement_id, view.product_id, view.source_warehouse_id) == (
        movement_id,
        PRODUCT,
        WAREHOUSE_A,
    )
    assert view.departed_quantity == 40
    assert view.departed_at == datetime(2025, 2, 18, 9, 12, 56, tzinfo=UTC)
    assert view.destination_warehouse_id is None
    assert view.arrived_at is None and view.arrived_quantity is None
    assert view.quantity_difference is None and view.transit_seconds is None


def test_movement_seen_only_arriving_is_arrival_only(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    movement_id = uuid4()

    apply_events(ledger_conn, [ledger_make_event(movement_id, "arrival", WAREHOUSE_B, PRODUCT, 7)])

    view = get_movement(ledger_conn, movement_id)
    assert view is not None
    assert view.status == "arrival_only"
    assert (view.destination_warehouse_id, view.arrived_quantity) == (WAREHOUSE_B, 7)
    assert view.source_warehouse_id is None and view.departed_at is None and view.departed_quantity is None
    assert view.quantity_difference is None and view.transit_seconds is None


def test_delivered_movement_reports_difference_and_transit_time(
    ledger_conn: psycopg.Connection, ledger_make_event: Make
) -> None:
    apply_events(ledger_conn, [ledger_make_event(uuid4(), "arrival", WAREHOUSE_A, PRODUCT, 100)])
    movement_id = uuid4()

    apply_events(
        ledger_conn,
        [
            ledger_make_event(movement_id, "departure", WAREHOUSE_A, PRODUCT, 50, "2025-02-18T23:00:00Z"),
            ledger_make_event(movement_id, "arrival", WAREHOUSE_B, PRODUCT, 53, "2025-02-19T01:00:01.5Z"),
        ],
    )

    view = get_movement(ledger_conn, movement_id)
    assert view is not None
    assert view.status == "delivered"
    assert view.quantity_difference == 3  # more arrived than left: reported, not refused
    assert view.transit_seconds == 7201
    assert get_stock(ledger_conn, WAREHOUSE_B, PRODUCT).quantity == 53


def test_movement_view_is_the_same_whatever_the_session_time_zone(
    ledger_conn: psycopg.Connection, ledger_make_event: Make, ledger_database_url: str
) -> None:
    movement_id = uuid4()
    apply_events(
        ledger_conn,
        [ledger_make_event(movement_id, "arrival", WAREHOUSE_B, PRODUCT, 7, "2025-02-18T12:12:56Z")],
    )

    with psycopg.connect(ledger_database_url, options="-c timezone=Asia/Vladivostok") as conn:
        view = get_movement(conn, movement_id)

    assert view is not None
    assert view.arrived_at == datetime(2025, 2, 18, 12, 12, 56, tzinfo=UTC)


def test_an_edge_of_calendar_timestamp_stays_usable_in_a_non_utc_session(
    ledger_conn: psycopg.Connection, ledger_make_event: Make, ledger_database_url: str
) -> None:
    movement_id = uuid4()
    arrival = ledger_make_event(movement_id, "arrival", WAREHOUSE_B, PRODUCT, 7, "9999-12-31T23:59:59Z")

    with psycopg.connect(ledger_database_url, autocommit=True, options="-c timezone=Europe/Moscow") as moscow:
        [first] = apply_events(moscow, [arrival])
        assert first.status == "applied"
        [again] = apply_events(moscow, [arrival])  # a redelivery
        view = get_movement(moscow, movement_id)

    assert again.status == "duplicate"
    assert view is not None and view.arrived_at == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
