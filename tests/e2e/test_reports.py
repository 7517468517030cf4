"""The report endpoints over real HTTP: stock as of past moments, the routes report, the summary.

Every test uses fresh warehouse ids (the test database is shared by the suite), so it checks its
own rows, or the change its own events made to the totals.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import psycopg

from tests.e2e.support import WEBHOOK, body, envelope, new_id

SUMMARY = "/api/v1/stats/summary"
ROUTES = "/api/v1/reports/routes"


def post(api: httpx.Client, env: dict[str, Any], expect: int = 200) -> dict[str, Any]:
    response = api.post(WEBHOOK, content=body(env))
    assert response.status_code == expect, response.text
    return response.json()


def stock_list(api: httpx.Client, warehouse: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = api.get(f"/api/v1/warehouse/{warehouse}/products", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination never ended")


def database_now(database_url: str) -> datetime:
    """PostgreSQL's clock: `received_at` is written with it."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]


# ----------------------------------------------------------------------------------- as_of


def test_stock_as_of_equals_the_stock_recorded_at_that_moment(api: httpx.Client, database_url: str) -> None:
    """For several moments, what the list said then is what `as_of` that moment says now."""
    w, other = new_id(), new_id()
    p1, p2, p3 = sorted(new_id() for _ in range(3))
    transfer = new_id()
    steps = [
        envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p1, quantity=100),
        envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p2, quantity=7),
        envelope("departure", movement_id=transfer, warehouse_id=w, product_id=p1, quantity=30),
        envelope("arrival", movement_id=transfer, warehouse_id=other, product_id=p1, quantity=29),
        envelope("departure", movement_id=new_id(), warehouse_id=w, product_id=p2, quantity=7),
        envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p3, quantity=1),
        envelope("departure", movement_id=new_id(), warehouse_id=w, product_id=p1, quantity=70),
    ]
    before_anything = database_now(database_url)
    recorded: list[tuple[datetime, list[dict[str, Any]], list[dict[str, Any]]]] = []
    for env in steps:
        post(api, env)
        time.sleep(0.002)
        moment = database_now(database_url)
        recorded.append((moment, stock_list(api, w), stock_list(api, other)))
        time.sleep(0.002)
    # A refused departure changes nothing, now or in the past.
    post(api, envelope("departure", movement_id=new_id(), warehouse_id=w, product_id=p3, quantity=5), 409)

    assert stock_list(api, w, as_of=before_anything.isoformat()) == []
    for moment, then_w, then_other in recorded:
        assert stock_list(api, w, as_of=moment.isoformat()) == then_w, moment
        assert stock_list(api, other, as_of=moment.isoformat()) == then_other, moment
        # Paginated the same, one product per page.
        assert stock_list(api, w, as_of=moment.isoformat(), limit=1) == then_w
    # The moments differ: the check above compared more than one state.
    assert len({str(then_w) for _, then_w, _ in recorded}) == len(steps) - 1  # step 4 is elsewhere
    final = recorded[-1][1]
    assert [(s["product_id"], s["quantity"]) for s in final] == [(p1, 0), (p2, 0), (p3, 1)]
    # Far in the future: the current stock.
    assert stock_list(api, w, as_of="9999-01-01T00:00:00Z") == stock_list(api, w)


def test_as_of_honours_the_offset_and_reads_no_offset_as_utc(api: httpx.Client, database_url: str) -> None:
    w, p = new_id(), new_id()
    post(api, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=3))
    after = database_now(database_url).astimezone(UTC) + timedelta(seconds=1)
    # The same instant at UTC-05:00 reads five hours earlier on the wall clock.
    west = after.astimezone(timezone(timedelta(hours=-5))).isoformat()
    assert [s["quantity"] for s in stock_list(api, w, as_of=west)] == [3]
    east_before = (after - timedelta(hours=1)).astimezone(timezone(timedelta(hours=5))).isoformat()
    assert stock_list(api, w, as_of=east_before) == []
    assert [s["quantity"] for s in stock_list(api, w, as_of=after.replace(tzinfo=None).isoformat())] == [3]


def test_bad_as_of_is_a_422_naming_the_field(api: httpx.Client) -> None:
    w = new_id()
    for bad in ("yesterday", "2025-13-01T00:00:00Z", "1e400", ""):
        response = api.get(f"/api/v1/warehouse/{w}/products", params={"as_of": bad})
        assert response.status_code == 422, (bad, response.text)
        assert [e["field"] for e in response.json()["errors"]] == ["as_of"], bad


# ----------------------------------------------------------------------------------- routes


def deliver(
    api: httpx.Client, src: str, dst: str, product: str, *, sent: int, received: int,
    departed: datetime, transit: timedelta,
) -> None:  # fmt: skip
    movement = new_id()
    stamp = departed.isoformat().replace("+00:00", "Z")
    post(api, envelope("departure", movement_id=movement, warehouse_id=src, product_id=product,
                       quantity=sent, timestamp=stamp))  # fmt: skip
    post(api, envelope("arrival", movement_id=movement, warehouse_id=dst, product_id=product,
                       quantity=received, timestamp=(departed + transit).isoformat()))  # fmt: skip


def test_routes_report_counts_losses_and_transit_percentiles(api: httpx.Client) -> None:
    """Two routes in a window of their own (a day in a far year no other test uses)."""
    day = datetime(2400 + uuid.uuid4().int % 500, 3, 1, tzinfo=UTC)
    a, b, c, p = new_id(), new_id(), new_id(), new_id()
    post(api, envelope("arrival", movement_id=new_id(), warehouse_id=a, product_id=p, quantity=1000))
    deliver(api, a, b, p, sent=100, received=97, departed=day, transit=timedelta(hours=2))
    deliver(api, a, b, p, sent=50, received=50, departed=day + timedelta(hours=1), transit=timedelta(hours=4))
    deliver(api, a, b, p, sent=10, received=12, departed=day + timedelta(hours=2), transit=timedelta(hours=6))
    deliver(api, a, c, p, sent=20, received=20, departed=day, transit=timedelta(minutes=30))
    # In transit: not on any route yet.
    post(api, envelope("departure", movement_id=new_id(), warehouse_id=a, product_id=p, quantity=5,
                       timestamp=day.isoformat()))  # fmt: skip

    window = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}
    response = api.get(ROUTES, params=window)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["routes_total"] == 2
    ab, ac = report["items"]  # most units lost first
    assert (ab["source_warehouse_id"], ab["destination_warehouse_id"]) == (a, b)
    assert (ac["source_warehouse_id"], ac["destination_warehouse_id"]) == (a, c)
    assert ab["movements"] == 3 and ab["movements_with_loss"] == 1
    assert (ab["units_departed"], ab["units_arrived"], ab["units_lost"]) == (160, 159, 3)
    assert ab["loss_rate"] == round(3 / 160, 6)
    assert ab["transit_p50_seconds"] == 4 * 3600
    assert ab["transit_p95_seconds"] == 4 * 3600 + 0.9 * 2 * 3600  # linear between 4 h and 6 h
    assert ab["transit_max_seconds"] == 6 * 3600
    assert ac["units_lost"] == 0 and ac["transit_p50_seconds"] == ac["transit_p95_seconds"] == 1800

    # The window applies to the arrival: the 2 h delivery arrives at day + 2 h.
    later = api.get(ROUTES, params={"from": (day + timedelta(hours=3)).isoformat(), "to": window["to"]})
    assert [(r["movements"], r["units_lost"]) for r in later.json()["items"]] == [(2, 0)]
    assert api.get(ROUTES, params={**window, "limit": 1}).json()["items"] == [ab]


def test_routes_report_refuses_a_bad_window(api: httpx.Client) -> None:
    for params, field in (
        ({"from": "2025-02-02T00:00:00Z", "to": "2025-02-01T00:00:00Z"}, "to"),
        ({"from": "2025-02-01T00:00:00Z", "to": "2025-02-01T00:00:00Z"}, "to"),
        ({"from": "soon"}, "from"),
        ({"to": "2025-02-30"}, "to"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
    ):
        response = api.get(ROUTES, params=params)
        assert response.status_code == 422, (params, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field], params


# ---------------------------------------------------------------------------------- summary


def summary(api: httpx.Client) -> dict[str, Any]:
    response = api.get(SUMMARY)
    assert response.status_code == 200, response.text
    return response.json()


def test_summary_counts_what_the_events_did(api: httpx.Client) -> None:
    before = summary(api)
    w, p = new_id(), new_id()
    post(api, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=10))
    post(api, envelope("departure", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=4))
    post(api, envelope("departure", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=99), 409)
    after = summary(api)

    assert after["warehouses"] == before["warehouses"] + 1
    assert after["products"] == before["products"] + 1
    assert after["movements_in_transit"] == before["movements_in_transit"] + 1
    kept = {d["reason"]: d for d in after["dead_letters"]}
    was = {d["reason"]: d for d in before["dead_letters"]}
    assert list(kept) == ["invalid", "conflict", "insufficient_stock"]
    assert kept["insufficient_stock"]["total"] == was["insufficient_stock"]["total"] + 1
    assert kept["insufficient_stock"]["unresolved"] == was["insufficient_stock"]["unresolved"] + 1
    assert after["oldest_in_transit"] is not None and after["oldest_in_transit"]["age_seconds"] >= 0
    minutes = [m["minute"] for m in after["events_per_minute"]]
    assert len(minutes) == 60 and minutes == sorted(minutes)
    parsed = [datetime.fromisoformat(m) for m in minutes]
    assert all(b - a == timedelta(minutes=1) for a, b in zip(parsed, parsed[1:], strict=False))


def test_summary_events_per_minute_counts_real_webhook_posts(api: httpx.Client) -> None:
    """The chart's data, through real posts: the ledger counts every event it decides in
    event_outcome_counts, duplicates and refusals included."""
    before = summary(api)["events_last_hour"]
    w, p = new_id(), new_id()
    arrival = envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=10)
    post(api, arrival)
    post(api, arrival)  # a duplicate
    post(api, envelope("departure", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=99), 409)
    after = summary(api)["events_last_hour"]
    assert after["applied"] >= before["applied"] + 1
    assert after["duplicate"] >= before["duplicate"] + 1
    assert after["rejected"] >= before["rejected"] + 1


def test_summary_poller_lag_only_from_fresh_reports(api: httpx.Client, database_url: str) -> None:
    group = f"test-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO consumer_lag (group_id, topic, partition, committed_offset, end_offset, lag, "
            "consumer, reported_at) VALUES (%s, 't', 0, 10, 52, 42, 'c1', now()), "
            "(%s, 't', 1, 0, 8, 8, 'c1', now() - interval '10 minutes')",
            (group, group),
        )
    try:
        lag = summary(api)["poller_lag"]
        mine = [p for p in lag["partitions"] if p["group_id"] == group]
        assert [(p["partition"], p["lag"]) for p in mine] == [(0, 42)]  # the stale one is left out
        assert lag["total"] >= 42 and lag["note"] is None
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM consumer_lag WHERE group_id = %s", (group,))
    fresh = [p for p in summary(api)["poller_lag"]["partitions"] if p["group_id"] == group]
    assert fresh == []


def test_a_paused_partition_is_in_the_summary_and_a_banner_on_the_overview(
    api: httpx.Client, database_url: str
) -> None:
    group, topic = f"test-{uuid.uuid4().hex[:8]}", f"paused-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO consumer_lag (group_id, topic, partition, committed_offset, end_offset, lag, "
            "consumer, reported_at, paused_offset, paused_reason, paused_since) VALUES "
            "(%s, %s, 1, 40, 99, 59, 'c1', now(), 40, 'UnsupportedCodecError: zstd', now()), "
            "(%s, %s, 0, 10, 10, 0, 'c1', now(), NULL, NULL, NULL)",
            (group, topic, group, topic),
        )
    try:
        mine = [p for p in summary(api)["poller_lag"]["partitions"] if p["group_id"] == group]
        assert [(p["partition"], p["paused_offset"]) for p in mine] == [(0, None), (1, 40)]
        page = api.get("/ui/").text
        assert f'id="paused-{topic}-1"' in page and "UnsupportedCodecError: zstd" in page
        assert f'id="paused-{topic}-0"' not in page
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM consumer_lag WHERE group_id = %s", (group,))
    assert f'id="paused-{topic}-1"' not in api.get("/ui/").text
