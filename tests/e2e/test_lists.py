"""The paginated lists over real HTTP: filters, keyset pages that add up, cursors that are checked."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import psycopg
import pytest

from common.domain.events import Origin, parse_event
from common.ledger.apply import apply_events
from tests.e2e.support import WEBHOOK, body, envelope, new_id, rejected_cursor_before


def post_ok(api: httpx.Client, env: dict[str, Any]) -> dict[str, Any]:
    response = api.post(WEBHOOK, content=body(env))
    assert response.status_code == 200, response.text
    return response.json()


def all_pages(
    api: httpx.Client, path: str, params: dict[str, Any], cursor: str | None = None
) -> list[list[dict[str, Any]]]:
    pages = []
    for _ in range(1000):
        response = api.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        # issue 23: and the codes of the warehouses the page names, when the directory knows them
        assert set(page) - {"warehouse_codes"} == {"items", "next_cursor"}
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("pagination never ended")


def test_warehouse_stock_pages(api: httpx.Client) -> None:
    w = new_id()
    products = sorted(new_id() for _ in range(7))
    for i, p in enumerate(products):
        post_ok(api, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=i + 1))
    # A refused departure leaves an untouched placeholder row: not part of the list.
    refused = api.post(
        WEBHOOK,
        content=body(
            envelope("departure", movement_id=new_id(), warehouse_id=w, product_id=new_id(), quantity=1)
        ),
    )
    assert refused.status_code == 409

    pages = all_pages(api, f"/api/v1/warehouse/{w}/products", {"limit": 3})
    assert [len(page) for page in pages] == [3, 3, 1]
    items = [item for page in pages for item in page]
    assert [item["product_id"] for item in items] == products
    assert [item["quantity"] for item in items] == [1, 2, 3, 4, 5, 6, 7]
    assert all(item["warehouse_id"] == w and item["updated_at"] for item in items)

    whole = api.get(f"/api/v1/warehouse/{w}/products").json()
    assert whole["next_cursor"] is None and whole["items"] == items


def test_empty_warehouse_lists_nothing(api: httpx.Client) -> None:
    assert api.get(f"/api/v1/warehouse/{new_id()}/products").json() == {"items": [], "next_cursor": None}


def test_movements_filters_and_pages(api: httpx.Client) -> None:
    a, b, other, product = new_id(), new_id(), new_id(), new_id()
    post_ok(api, envelope("arrival", movement_id=new_id(), warehouse_id=a, product_id=product, quantity=100))
    delivered = []
    for _ in range(3):  # a -> b, delivered
        m = new_id()
        post_ok(api, envelope("departure", movement_id=m, warehouse_id=a, product_id=product, quantity=1))
        post_ok(api, envelope("arrival", movement_id=m, warehouse_id=b, product_id=product, quantity=1,
                              timestamp="2025-02-18T13:00:00Z"))  # fmt: skip
        delivered.append(m)
    in_transit = []
    for _ in range(2):  # a -> (nowhere yet)
        m = new_id()
        post_ok(api, envelope("departure", movement_id=m, warehouse_id=a, product_id=product, quantity=1))
        in_transit.append(m)
    into_b = new_id()  # other -> b, only the arrival seen
    post_ok(api, envelope("arrival", movement_id=into_b, warehouse_id=b, product_id=new_id(), quantity=1))
    post_ok(
        api, envelope("arrival", movement_id=new_id(), warehouse_id=other, product_id=product, quantity=1)
    )

    def ids(params: dict[str, Any]) -> list[str]:
        pages = all_pages(api, "/api/v1/movements", {"limit": 2, **params})
        assert all(len(page) <= 2 for page in pages)
        found = [item["movement_id"] for page in pages for item in page]
        assert found == sorted(found) and len(found) == len(set(found))
        return found

    # The initial arrival into `a` counts: `a` is its destination.
    assert len(ids({"warehouse_id": a})) == 6
    assert ids({"warehouse_id": b}) == sorted([*delivered, into_b])
    assert ids({"warehouse_id": a, "status": "in_transit"}) == sorted(in_transit)
    assert ids({"warehouse_id": b, "status": "delivered"}) == sorted(delivered)
    assert ids({"warehouse_id": b, "status": "arrival_only"}) == [into_b]
    assert ids({"warehouse_id": b, "product_id": product}) == sorted(delivered)
    assert len(ids({"product_id": product})) == 7
    items = api.get("/api/v1/movements", params={"warehouse_id": b, "status": "delivered"}).json()["items"]
    assert {
        (i["source_warehouse_id"], i["destination_warehouse_id"], i["quantity_difference"]) for i in items
    } == {(a, b, 0)}


def test_rejected_events_pages_and_payloads(api: httpx.Client, database_url: str) -> None:
    w, p = new_id(), new_id()
    sent = []
    for _ in range(5):
        m = new_id()
        response = api.post(
            WEBHOOK,
            content=body(envelope("departure", movement_id=m, warehouse_id=w, product_id=p, quantity=3)),
        )
        assert response.status_code == 409
        sent.append((response.json()["rejected_event_id"], m))
    # A dead letter whose bytes are not UTF-8, as the Kafka path can park: served as base64.
    raw = b"\xff\xfe not utf-8 \x00"
    with psycopg.connect(database_url, autocommit=True) as conn:
        [parked] = apply_events(conn, [parse_event(raw, Origin.kafka(f"e2e-{new_id()}", 0, 7))])
        assert parked.rejected_event_id is not None
        binary_id = parked.rejected_event_id

    first = api.get("/api/v1/rejected-events", params={"reason": "insufficient_stock", "limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    assert first["items"][0]["id"] < first["items"][1]["id"] and first["items"][0]["id"] <= sent[0][0]

    start = rejected_cursor_before(sent[0][0])
    pages = all_pages(api, "/api/v1/rejected-events", {"reason": "insufficient_stock", "limit": 2}, start)
    assert all(len(page) <= 2 for page in pages) and len(pages) >= 3
    items = [item for page in pages for item in page]
    assert all(item["reason"] == "insufficient_stock" for item in items)
    ids = [item["id"] for item in items]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    mine = {item["id"]: item for item in items if item["id"] in dict(sent)}
    assert sorted(mine) == sorted(rid for rid, _ in sent)
    for rid, m in sent:
        assert mine[rid]["movement_id"] == m
        assert mine[rid]["raw_payload_encoding"] == "utf-8"
        assert m in mine[rid]["raw_payload"]
        assert mine[rid]["kafka_topic"] is None

    from_binary = rejected_cursor_before(binary_id)
    invalid = api.get("/api/v1/rejected-events", params={"reason": "invalid", "cursor": from_binary}).json()
    invalid = invalid["items"]
    (binary,) = [i for i in invalid if i["id"] == binary_id]
    assert binary["raw_payload_encoding"] == "base64"
    assert base64.b64decode(binary["raw_payload"]) == raw
    assert (binary["origin"], binary["kafka_partition"], binary["kafka_offset"]) == ("kafka", 0, 7)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/movements", {"limit": 0}, "limit"),
        ("/api/v1/movements", {"limit": 501}, "limit"),
        ("/api/v1/movements", {"limit": "ten"}, "limit"),
        ("/api/v1/movements", {"status": "lost"}, "status"),
        ("/api/v1/movements", {"warehouse_id": "WH-1"}, "warehouse_id"),
        ("/api/v1/movements", {"cursor": "%%%"}, "cursor"),
        ("/api/v1/movements", {"cursor": base64.urlsafe_b64encode(b"movements:zzz").decode()}, "cursor"),
        ("/api/v1/rejected-events", {"reason": "bored"}, "reason"),
        ("/api/v1/rejected-events", {"cursor": base64.urlsafe_b64encode(b"rejected:-1").decode()}, "cursor"),
        (f"/api/v1/warehouse/{new_id()}/products", {"cursor": "bm9wZQ"}, "cursor"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    api: httpx.Client, path: str, params: dict[str, Any], field: str
) -> None:
    response = api.get(path, params=params)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


def test_a_cursor_only_works_on_its_own_list(api: httpx.Client) -> None:
    w = new_id()
    for _ in range(2):
        post_ok(
            api, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=new_id(), quantity=1)
        )
    cursor = api.get(f"/api/v1/warehouse/{w}/products", params={"limit": 1}).json()["next_cursor"]
    assert cursor
    assert api.get(f"/api/v1/warehouse/{w}/products", params={"cursor": cursor}).status_code == 200
    response = api.get("/api/v1/movements", params={"cursor": cursor})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cursor"
