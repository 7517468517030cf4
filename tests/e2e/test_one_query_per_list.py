"""One query per list (issue 21): the JSON API and the console answer each list (a warehouse's
stock, movements, dead letters) from the same function, so with the same filters they list the
same rows in the same order and hand out the same cursor for the next page."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

from tests.e2e.support import WEBHOOK, body, envelope, new_id

NEXT = re.compile(r'<a rel="next" href="[^"]*?[?&](?:amp;)?cursor=([^"&]+)"')


def post(api: httpx.Client, event: str, **data: Any) -> httpx.Response:
    return api.post(WEBHOOK, content=body(envelope(event, **data)))


def console(
    api: httpx.Client, path: str, params: dict[str, Any], attribute: str
) -> tuple[list[str], str | None]:
    """The row keys (a `data-*` attribute of each row) a console page lists, and its next cursor."""
    answer = api.get(path, params=params)
    assert answer.status_code == 200, answer.text
    rows = re.findall(rf'<tr[^>]* {attribute}="([^"]+)"', answer.text)
    found = NEXT.search(answer.text)
    return rows, (httpx.QueryParams("c=" + html.unescape(found.group(1)))["c"] if found else None)


def json_list(api: httpx.Client, path: str, params: dict[str, Any], key: str) -> tuple[list[str], str | None]:
    answer = api.get(path, params=params)
    assert answer.status_code == 200, answer.text
    page = answer.json()
    return [str(item[key]) for item in page["items"]], page["next_cursor"]


def both_pages(api: httpx.Client, json_path: str, json_params: dict[str, Any], key: str,
               ui_path: str, ui_params: dict[str, Any], attribute: str) -> list[str]:  # fmt: skip
    """Page one, then page two from each side's own cursor: the same rows, the same cursors."""
    listed: list[str] = []
    json_cursor: str | None = None
    for _ in range(2):
        extra = {"cursor": json_cursor} if json_cursor else {}
        from_json, json_next = json_list(api, json_path, {**json_params, **extra}, key)
        from_ui, ui_next = console(api, ui_path, {**ui_params, **extra}, attribute)
        assert from_ui == from_json and from_json
        assert ui_next == json_next
        listed += from_json
        json_cursor = json_next
    return listed


def test_a_warehouses_stock(api: httpx.Client) -> None:
    w = new_id()
    products = sorted(new_id() for _ in range(5))
    for i, product in enumerate(products):
        assert post(api, "arrival", movement_id=new_id(), warehouse_id=w, product_id=product,
                    quantity=i + 1).status_code == 200  # fmt: skip
    listed = both_pages(api, f"/api/v1/warehouse/{w}/products", {"limit": 2}, "product_id",
                        f"/ui/warehouses/{w}", {"limit": 2}, "data-product")  # fmt: skip
    assert listed == products[:4]


def test_movements_in_transit_of_a_warehouse(api: httpx.Client) -> None:
    w, product = new_id(), new_id()
    assert (
        post(
            api, "arrival", movement_id=new_id(), warehouse_id=w, product_id=product, quantity=50
        ).status_code
        == 200
    )
    moving = [new_id() for _ in range(5)]
    for i, m in enumerate(moving):
        left = f"2025-02-18T1{i}:00:00Z"
        assert post(api, "departure", movement_id=m, warehouse_id=w, product_id=product, quantity=1,
                    timestamp=left).status_code == 200  # fmt: skip
    params = {"status": "in_transit", "older_than": "1s", "warehouse_id": w, "limit": 2}
    listed = both_pages(
        api, "/api/v1/movements", params, "movement_id", "/ui/movements", params, "data-movement"
    )
    assert listed == moving[:4]  # oldest departure first
    delivered = {"status": "delivered", "warehouse_id": w, "limit": 2}
    for m in moving:
        assert (
            post(
                api, "arrival", movement_id=m, warehouse_id=new_id(), product_id=product, quantity=1
            ).status_code
            == 200
        )
    listed = both_pages(
        api, "/api/v1/movements", delivered, "movement_id", "/ui/movements", delivered, "data-movement"
    )
    assert listed == sorted(moving)[:4]  # by movement id


def test_dead_letters_of_a_movement(api: httpx.Client) -> None:
    w, product, m = new_id(), new_id(), new_id()
    assert (
        post(api, "arrival", movement_id=m, warehouse_id=w, product_id=product, quantity=5).status_code == 200
    )
    for quantity in range(6, 11):  # each a conflicting copy of the applied arrival
        assert post(api, "arrival", movement_id=m, warehouse_id=w, product_id=product,
                    quantity=quantity).status_code == 409  # fmt: skip
    params = {"movement_id": m, "limit": 2}
    listed = both_pages(api, "/api/v1/rejected-events", {**params, "order": "newest"}, "id",
                        "/ui/dead-letters/rows", params, "data-id")  # fmt: skip
    assert listed == sorted(listed, key=int, reverse=True) and len(listed) == 4
