"""The console in a real browser: every page loads without console errors and without a request
leaving the machine (/docs and /redoc too, rendering every operation), a stock posted just
before shows on its warehouse page, replaying a dead letter from its page changes its state and
the stock, and the overview's chart draws the per-minute series."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest

from tests.browser.support import TOKEN, Console, Week, post
from tests.e2e.support import envelope


def operation_count(api: httpx.Client) -> int:
    paths = api.get("/openapi.json").json()["paths"]
    return sum(len(operations) for operations in paths.values())


PAGES = {
    "overview": lambda week: "/ui/",
    "warehouses": lambda week: "/ui/warehouses",
    "warehouse": lambda week: f"/ui/warehouses/{week.warehouses['Moscow DC']}",
    "movements-in-transit": lambda week: "/ui/movements?status=in_transit&older_than=1h",
    "movement": lambda week: f"/ui/movements/{week.delivered[0]}",
    "product": lambda week: f"/ui/products/{week.products[0]}",
    "losses": lambda week: "/ui/losses",
    "dead-letters": lambda week: "/ui/dead-letters",
}
# The README's screenshots: English in UTC, Russian in Moscow time (the first tests, on the seeded
# week alone).
LANGUAGES = {
    "en": {"locale": "en-GB", "timezone_id": "UTC"},
    "ru": {"locale": "ru-RU", "timezone_id": "Europe/Moscow"},
}


@pytest.mark.parametrize("lang", list(LANGUAGES))
@pytest.mark.parametrize("name", list(PAGES))
def test_page_loads_without_errors_or_requests_leaving_the_machine(
    console_in: Callable[..., Console], console_data: Week, name: str, lang: str
) -> None:
    console = console_in(**LANGUAGES[lang])
    console.goto(PAGES[name](console_data))
    zone = LANGUAGES[lang]["timezone_id"]
    console.page.locator(f"html[lang='{lang}'][data-tz='{zone}']").wait_for()
    console.page.wait_for_load_state("networkidle")
    assert console.page.locator("h1").inner_text()
    assert console.page.locator("main table, main .empty").count() >= 1
    assert zone in console.page.locator("#zone-label").inner_text()
    if name == "dead-letters":  # the rows are an operator route: they come with the token
        keep_token(
            console, "токен сохранён для этой вкладки" if lang == "ru" else "a token is kept for this tab"
        )
        console.page.locator("#dead-letter-rows[data-loaded='true'] #dead-letters").wait_for()
        console.page.locator("details").first.click()  # one raw payload open
    console.screenshot(name if lang == "en" else f"{name}-ru")
    console.check()


def keep_token(console: Console, kept: str = "a token is kept for this tab") -> None:
    console.page.fill("#operator-token", TOKEN)
    console.page.click("#token-form button[type=submit]")
    assert console.page.locator("#token-state").inner_text() == kept


def test_swagger_ui_renders_every_operation_offline(console: Console, api: httpx.Client) -> None:
    console.goto("/docs")
    operations = console.page.locator(".swagger-ui .opblock")
    operations.first.wait_for(timeout=30_000)
    assert operations.count() == operation_count(api)
    assert console.page.locator(".swagger-ui .info .title").inner_text().startswith("Warehouse stock API")
    console.screenshot("docs")
    console.check()


def test_redoc_renders_every_operation_offline(console: Console, api: httpx.Client) -> None:
    console.goto("/redoc")
    operations = console.page.locator("[data-section-id^='operation/']")
    operations.first.wait_for(timeout=30_000)
    assert operations.count() == operation_count(api)
    console.screenshot("redoc")
    console.check()


def test_overview_chart_draws_the_last_hour(console: Console, console_data: Week) -> None:
    console.goto("/ui/")
    chart = console.page.locator("#events-chart[data-rendered='true'] canvas")
    chart.wait_for()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 150
    series = json.loads(console.page.locator("#events-series").text_content() or "{}")
    assert len(series["t"]) == 60 and sum(series["applied"]) > 0
    # Hover the busiest minute: uPlot's legend then shows that minute's counts, as drawn.
    busiest = max(range(60), key=lambda i: series["applied"][i])
    over = console.page.locator("#events-chart .u-over").bounding_box()
    assert over is not None
    x = min(max(over["width"] * busiest / 59, 1), over["width"] - 1)  # inside the plot at either end
    console.page.mouse.move(over["x"] + x, over["y"] + over["height"] / 2)
    legend = console.page.locator("#events-chart .u-legend .u-series")
    assert legend.nth(1).locator(".u-label").inner_text() == "applied"
    shown = legend.nth(1).locator(".u-value").inner_text().replace(",", "")
    assert shown == str(series["applied"][busiest])
    assert legend.nth(3).locator(".u-label").inner_text() == "rejected"
    # Summary cards beside it.
    assert console.page.locator("#warehouses").inner_text() == "4"
    assert console.page.locator("#poller-lag").inner_text() == "15"
    console.check()


def test_stock_posted_just_before_shows_on_its_warehouse_page(
    console: Console, api: httpx.Client, console_data: Week
) -> None:
    warehouse = console_data.warehouses["Kazan"]
    product = str(uuid.uuid4())
    post(api, envelope("arrival", movement_id=str(uuid.uuid4()), warehouse_id=warehouse, product_id=product,
                       quantity=4321, source="KZN-03", subject="KZN-03:ARRIVAL"))  # fmt: skip
    console.goto(f"/ui/warehouses/{warehouse}")
    row = console.page.locator(f"tr[data-product='{product}']")
    assert row.locator(".quantity").inner_text() == "4,321"
    # The search box narrows the table to that product (by the first digits of its id).
    console.page.fill("#search", product[:6])
    console.page.press("#search", "Enter")
    console.page.wait_for_load_state("networkidle")
    rows = console.page.locator("#stock tbody tr")
    shown = rows.evaluate_all("rows => rows.map(r => r.dataset.product)")
    assert product in shown and all(p.startswith(product[:6]) for p in shown)
    console.check()


def stock_of(api: httpx.Client, warehouse: str, product: str) -> int:
    return int(api.get(f"/api/v1/warehouse/{warehouse}/products/{product}").json()["quantity"])


def test_replay_from_the_page_changes_its_state_and_the_stock(
    console: Console, api: httpx.Client, console_data: Week
) -> None:
    warehouse, product, movement = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    refused = post(api, envelope("departure", movement_id=movement, warehouse_id=warehouse,
                                 product_id=product, quantity=5), 409)  # fmt: skip
    dead_letter = refused["rejected_event_id"]
    post(api, envelope("arrival", movement_id=str(uuid.uuid4()), warehouse_id=warehouse, product_id=product,
                       quantity=8))  # fmt: skip
    assert stock_of(api, warehouse, product) == 8

    console.goto(f"/ui/dead-letters?movement_id={movement}")
    # Without the token the rows (an operator route) are not even fetched.
    assert "Type the operator token" in console.page.locator("#dead-letter-rows").inner_text()
    keep_token(console)
    row = console.page.locator(f"#dl-{dead_letter}")
    row.wait_for()
    # Refused through the webhook: its caller was answered 409 (it may still be replayed here).
    assert row.locator(".replay-status").inner_text() == "answered 409 to the caller (webhook)"

    # The token forgotten: the replay answers 401, said plainly, and nothing changes.
    console.page.click("#forget-token")
    console.expect_error("status of 401")
    row.locator("button.replay").click()
    message = console.page.locator("#replay-message")
    message.filter(has_text="401").wait_for()
    assert "token is missing or wrong" in message.inner_text()
    assert stock_of(api, warehouse, product) == 8

    # With it: applied, shown on the row, and the stock moved.
    keep_token(console)
    row.locator("button.replay").click()
    row.locator(".replay-status", has_text="applied").wait_for()
    assert stock_of(api, warehouse, product) == 3
    # The token stays in this tab's sessionStorage: not in the URL, a cookie or the page.
    assert TOKEN not in console.page.url
    assert all(TOKEN not in c["value"] for c in console.page.context.cookies())  # lang/zone cookies only
    assert TOKEN not in console.page.content()
    assert console.page.evaluate("Object.values(sessionStorage)") == [TOKEN]

    # The dead letter's state is kept (the token too, for this tab), and the warehouse page shows
    # the new stock.
    console.goto(f"/ui/dead-letters?movement_id={movement}")
    state = console.page.locator(f"#dl-{dead_letter} .replay-status")
    state.wait_for()
    assert state.inner_text().startswith("applied")
    console.goto(f"/ui/warehouses/{warehouse}")
    assert console.page.locator(f"tr[data-product='{product}'] .quantity").inner_text() == "3"
    console.check()


def test_stock_as_of_from_the_warehouse_page(console: Console, api: httpx.Client, console_data: Week) -> None:
    warehouse = console_data.warehouses["Moscow DC"]
    console.goto(f"/ui/warehouses/{warehouse}?as_of={quote('2000-01-01T00:00:00')}")
    assert "No product" in console.page.locator("main").inner_text()
    assert console.page.locator("#as-of").input_value().startswith("2000-01-01T00:00")
    console.check()


def test_a_bad_parameter_shows_which_field(console: Console, console_data: Week) -> None:
    response = console.page.goto(console.base_url + "/ui/movements?older_than=soon")
    assert response is not None and response.status == 422
    assert "older_than" in console.page.locator(".error").inner_text()
    console.expect_error("status of 422")  # the browser reports the document's own status
    console.check()
