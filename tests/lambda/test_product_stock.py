"""Issue 23 in Lambda: the list function's new routes (a product's stock, the warehouse directory,
the search) and the codes on its lists answer through the HTTP handler exactly as the local app."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from functions.list_resources.handler import handler as list_handler
from functions.webhook.handler import handler as webhook_handler
from tests.e2e.support import body, envelope

WEBHOOK = "/api/v1/kafka/webhook"


@pytest.fixture
def stocked(call_lambda: Any, make_event: Any) -> dict[str, str]:
    """Two warehouses with codes holding one product, 7 units of it in transit from the first."""
    ids = {k: str(uuid.uuid4()) for k in ("w1", "w2", "product", "moving")}
    ids |= {"a": "WH-" + ids["w1"][:6].upper(), "b": "WH-" + ids["w2"][:6].upper()}
    halves = [
        ("arrival", ids["w1"], ids["a"], str(uuid.uuid4()), 20),
        ("arrival", ids["w2"], ids["b"], str(uuid.uuid4()), 5),
        ("departure", ids["w1"], ids["a"], ids["moving"], 7),
    ]
    for event, warehouse, code, movement, quantity in halves:
        env = envelope(event, movement_id=movement, warehouse_id=warehouse, product_id=ids["product"],
                       quantity=quantity, source=code, subject=f"{code}:{event.upper()}")  # fmt: skip
        made = call_lambda(webhook_handler, make_event("apigw_webhook.json", "POST", WEBHOOK, body=body(env)))
        assert made.status == 200, made.body
    return ids


def both(call_lambda: Any, call_local: Any, make_event: Any, path: str, query: str = "") -> Any:
    event = make_event("apigw_list_stock.json", "GET", path, query=query)
    lam, loc = call_lambda(list_handler, event), call_local(event)
    assert lam.status == loc.status, (lam.body, loc.body)
    assert lam.headers["content-type"] == loc.headers["content-type"]
    assert lam.body == loc.body
    return lam


def test_product_stock_in_lambda(
    call_lambda: Any, call_local: Any, make_event: Any, stocked: dict[str, str]
) -> None:
    answer = both(call_lambda, call_local, make_event, f"/api/v1/products/{stocked['product']}/stock")
    assert answer.status == 200
    found = answer.json()
    assert [(s["warehouse_code"], s["quantity"]) for s in found["warehouses"]] == sorted(
        [(stocked["a"], 13), (stocked["b"], 5)]
    )
    assert [m["movement_id"] for m in found["in_transit"]] == [stocked["moving"]]
    assert (found["on_hand"], found["in_transit_units"], found["total"]) == (18, 7, 25)
    missing = both(call_lambda, call_local, make_event, f"/api/v1/products/{uuid.uuid4()}/stock")
    assert missing.status == 200 and missing.json()["total"] == 0


def test_codes_directory_and_search_in_lambda(
    call_lambda: Any, call_local: Any, make_event: Any, stocked: dict[str, str]
) -> None:
    stock = both(call_lambda, call_local, make_event, f"/api/v1/warehouse/{stocked['w1']}/products")
    assert stock.json()["warehouse_codes"] == {stocked["w1"]: stocked["a"]}
    movements = both(
        call_lambda, call_local, make_event, "/api/v1/movements", f"product_id={stocked['product']}"
    )
    assert movements.json()["warehouse_codes"][stocked["w1"]] == stocked["a"]
    directory = call_lambda(list_handler, make_event("apigw_list_stock.json", "GET", "/api/v1/warehouses"))
    codes = {e["warehouse_id"]: e["code"] for e in directory.json()["items"]}
    assert codes[stocked["w1"]] == stocked["a"] and codes[stocked["w2"]] == stocked["b"]
    found = both(call_lambda, call_local, make_event, "/api/v1/search", f"q={stocked['b']}")
    assert [(f["kind"], f["id"]) for f in found.json()["items"]] == [("warehouse", stocked["w2"])]
    exported = call_lambda(
        list_handler,
        make_event(
            "apigw_list_stock.json",
            "GET",
            "/api/v1/movements",
            query=f"product_id={stocked['product']}&format=csv",
        ),
    )
    assert exported.status == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.body.startswith("\ufeff".encode()) and stocked["a"].encode() in exported.body
