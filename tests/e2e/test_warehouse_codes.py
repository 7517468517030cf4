"""Issue 23 over real HTTP: warehouses named by the codes their events carry, a product across
warehouses and in transit, the header search, and CSV exports of the lists."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from tests.e2e.support import WEBHOOK, body, envelope, new_id


def post(api: httpx.Client, event: str, *, code: str, **data: Any) -> dict[str, Any]:
    env = envelope(event, **data, source=code, subject=f"{code}:{event.upper()}")
    response = api.post(WEBHOOK, content=body(env))
    assert response.status_code == 200, response.text
    return response.json()


def code() -> str:
    return "WH-" + new_id()[:8].upper()


def test_product_stock_per_warehouse_in_transit_and_total(api: httpx.Client) -> None:
    w1, w2, product = new_id(), new_id(), new_id()
    a, b = code(), code()
    post(api, "arrival", code=a, movement_id=new_id(), warehouse_id=w1, product_id=product, quantity=100)
    post(api, "arrival", code=b, movement_id=new_id(), warehouse_id=w2, product_id=product, quantity=30)
    moving = new_id()
    post(api, "departure", code=a, movement_id=moving, warehouse_id=w1, product_id=product, quantity=40)

    answer = api.get(f"/api/v1/products/{product}/stock")
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert {(s["warehouse_id"], s["warehouse_code"], s["quantity"]) for s in found["warehouses"]} == {
        (w1, a, 60),
        (w2, b, 30),
    }
    assert found["on_hand"] == 90
    assert [(m["movement_id"], m["source_warehouse_code"], m["quantity"]) for m in found["in_transit"]] == [
        (moving, a, 40)
    ]
    assert (found["in_transit_movements"], found["in_transit_units"], found["total"]) == (1, 40, 130)

    # once it arrives it is on hand again, nothing in transit
    post(api, "arrival", code=b, movement_id=moving, warehouse_id=w2, product_id=product, quantity=40)
    after = api.get(f"/api/v1/products/{product}/stock").json()
    assert (after["on_hand"], after["in_transit_units"], after["total"], after["in_transit"]) == (
        130,
        0,
        130,
        [],
    )


def test_an_unknown_product_is_nowhere_and_a_bad_id_422(api: httpx.Client) -> None:
    nowhere = api.get(f"/api/v1/products/{new_id()}/stock")
    assert nowhere.status_code == 200
    assert (nowhere.json()["warehouses"], nowhere.json()["in_transit"], nowhere.json()["total"]) == (
        [],
        [],
        0,
    )
    assert api.get("/api/v1/products/not-a-uuid/stock").status_code == 422


def test_codes_on_the_lists_a_changed_code_and_a_shared_one_are_shown(api: httpx.Client) -> None:
    w1, w2, w3, product = new_id(), new_id(), new_id(), new_id()
    a, b, b2 = code(), code(), code()
    m = new_id()
    post(api, "arrival", code=a, movement_id=new_id(), warehouse_id=w1, product_id=product, quantity=5)
    post(api, "departure", code=a, movement_id=m, warehouse_id=w1, product_id=product, quantity=5)
    post(api, "arrival", code=b, movement_id=m, warehouse_id=w2, product_id=product, quantity=5)

    stock = api.get(f"/api/v1/warehouse/{w1}/products").json()
    assert stock["warehouse_codes"] == {w1: a}
    movements = api.get("/api/v1/movements", params={"product_id": product}).json()
    assert movements["warehouse_codes"] == {w1: a, w2: b}

    post(
        api, "arrival", code=b2, movement_id=new_id(), warehouse_id=w2, product_id=product, quantity=1
    )  # renamed
    post(
        api, "arrival", code=a, movement_id=new_id(), warehouse_id=w3, product_id=product, quantity=1
    )  # a's code
    directory = {e["warehouse_id"]: e for e in api.get("/api/v1/warehouses").json()["items"]}
    assert directory[w2]["code"] == b2
    assert [c["code"] for c in directory[w2]["codes"]] == [b2, b]
    assert directory[w1]["code_shared_with"] == [w3] and directory[w3]["code_shared_with"] == [w1]
    assert api.get(f"/api/v1/warehouse/{w2}/products").json()["warehouse_codes"] == {w2: b2}


def test_search_finds_codes_warehouses_products_movements_and_prefixes(api: httpx.Client) -> None:
    w, product, m = new_id(), new_id(), new_id()
    a = code()
    post(api, "arrival", code=a, movement_id=m, warehouse_id=w, product_id=product, quantity=3)

    def found(q: str) -> set[tuple[str, str, str]]:
        answer = api.get("/api/v1/search", params={"q": q})
        assert answer.status_code == 200, answer.text
        return {(f["kind"], f["id"], f["match"]) for f in answer.json()["items"]}

    assert ("warehouse", w, "code") in found(a.lower()[:7])
    assert ("warehouse", w, "id") in found(w)
    assert ("product", product, "id") in found(product)
    assert ("movement", m, "id") in found(m)
    assert ("product", product, "prefix") in found(product[:8])
    assert api.get("/api/v1/search", params={"q": ""}).status_code == 422
    # A NUL names nothing (PostgreSQL text cannot hold one): an empty answer, never a 500.
    assert found("\x00") == set() and found(a[:3] + "\x00") == set()
    assert api.get("/ui/go", params={"id": "\x00"}).status_code == 404


def test_lists_export_as_csv_with_bom_codes_and_the_same_filters(api: httpx.Client) -> None:
    w2, product = new_id(), new_id()
    b = code()
    for quantity in (1, 2, 3):
        m = new_id()
        post(api, "arrival", code=b, movement_id=m, warehouse_id=w2, product_id=product, quantity=quantity)
    answer = api.get("/api/v1/movements", params={"product_id": product, "format": "csv", "limit": 1})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert len(rows) == 3  # every page, not `limit`
    assert {r["destination_warehouse_code"] for r in rows} == {b}
    assert sorted(int(r["arrived_quantity"]) for r in rows) == [1, 2, 3]

    by_accept = api.get(f"/api/v1/warehouse/{w2}/products", headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(by_accept.content.decode("utf-8-sig"))))
    assert [(r["warehouse_code"], r["product_id"], r["quantity"]) for r in rows] == [(b, product, "6")]
