"""The console an operator would choose (issue 23), in a real browser: warehouses by their codes on
every page, a product's page, Russian and English, times in a chosen zone, CSV downloads opened and
checked, and the dead-letter workflow (resolve with a note, bulk replay, conflicts beside the
applied version). The README's screenshots are taken by test_console.py."""

from __future__ import annotations

import csv
import io
import random
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg

from tests.browser.support import TOKEN, Console, Week, post
from tests.e2e.support import body, envelope


def warehouse_pages(week: Week) -> list[str]:
    return [
        "/ui/",  # the oldest movement in transit, from its warehouse
        "/ui/warehouses",
        f"/ui/warehouses/{week.warehouses['Moscow DC']}",
        "/ui/movements?status=in_transit",
        "/ui/movements?status=delivered",
        f"/ui/movements/{week.delivered[0]}",
        "/ui/losses",
        f"/ui/products/{week.products[0]}",
    ]


def test_every_page_names_warehouses_by_their_codes(console: Console, console_data: Week) -> None:
    code_of = {console_data.warehouses[name]: code for name, code in console_data.codes.items()}
    for path in warehouse_pages(console_data):
        console.goto(path)
        shown = console.page.locator("main .wh").evaluate_all("els => els.map(e => [e.title, e.innerText])")
        seeded = [(wid, text) for wid, text in shown if wid in code_of]
        assert seeded or path == "/ui/" and shown, path  # the oldest in transit may be another test's
        assert all(text == code_of[wid] for wid, text in seeded), (path, seeded)
        # Every link to a warehouse reads as a code (other tests' warehouses are WH-3322), never an id.
        links = console.page.locator("main a[href^='/ui/warehouses/']").all_inner_texts()
        assert links and all(re.fullmatch(r"[A-Z]{2,3}-\d{2,4}", text) for text in links), (path, links)
    # The directory itself shows both, and the codes are found by the header search, any case.
    console.goto("/ui/warehouses")
    row = console.page.locator(f"tr[data-warehouse='{console_data.warehouses['Kazan']}']")
    assert row.locator(".wh").inner_text() == "KZN-03"
    console.page.fill("header input[name=id]", "kzn-03")
    console.page.press("header input[name=id]", "Enter")
    console.page.wait_for_url(f"**/ui/warehouses/{console_data.warehouses['Kazan']}")
    assert console.page.locator("#warehouse-code").inner_text() == "KZN-03"
    console.check()


def test_the_product_page_found_by_the_first_digits_of_its_id(
    console: Console, api: httpx.Client, console_data: Week
) -> None:
    product = console_data.products[0]
    console.goto("/ui/")
    console.page.fill("header input[name=id]", product[:8])
    console.page.press("header input[name=id]", "Enter")
    console.page.wait_for_url(f"**/ui/products/{product}")
    console.page.wait_for_load_state("networkidle")
    expected = api.get(f"/api/v1/products/{product}/stock").json()
    page = console.page
    assert page.locator("#on-hand").inner_text() == f"{expected['on_hand']:,}"
    assert page.locator("#product-total").inner_text() == f"{expected['total']:,}"
    rows = page.locator("#product-stock tbody tr")
    assert rows.count() == len(expected["warehouses"]) >= 2
    for w in expected["warehouses"]:
        row = page.locator(f"#product-stock tr[data-warehouse='{w['warehouse_id']}']")
        assert row.locator(".wh").inner_text() == w["warehouse_code"]
        assert row.locator(".quantity").inner_text() == f"{w['quantity']:,}"
    console.check()


def test_russian_from_the_browser_and_english_by_the_switch_that_sticks(
    console_in: Callable[..., Console], console_data: Week
) -> None:
    console = console_in(locale="ru-RU")
    page = console.page
    console.goto("/ui/warehouses")
    assert page.locator("html").get_attribute("lang") == "ru"
    assert page.locator("h1").inner_text() == "Склады"
    assert page.locator("header nav").inner_text().split()[:2] == ["Обзор", "Склады"]
    moscow = page.locator(f"#warehouses tr[data-warehouse='{console_data.warehouses['Moscow DC']}']")
    units = moscow.locator("td.num").nth(1).inner_text()
    assert re.fullmatch(r"\d{1,3}(\u00a0\d{3})+", units), units  # "74 800": grouped by a no-break space
    assert "Последнее изменение" in page.locator("#warehouses thead").inner_text()

    page.click("#lang-en")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/ui/warehouses")
    assert page.locator("h1").inner_text() == "Warehouses"
    english = moscow.locator("td.num").nth(1).inner_text()
    assert english == units.replace("\u00a0", ",")
    console.goto("/ui/losses")  # the browser still asks for Russian: the choice sticks
    assert page.locator("h1").inner_text() == "Losses by route"
    page.click("#lang-ru")
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text() == "Потери по маршрутам"
    console.check()


def shown_time(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return local.strftime("%H:%M:%S")


def test_times_in_the_browsers_zone_or_a_chosen_one_always_labelled(
    console_in: Callable[..., Console], api: httpx.Client, console_data: Week
) -> None:
    movement = console_data.delivered[0]
    departed = datetime.fromisoformat(api.get(f"/api/v1/movements/{movement}").json()["departed_at"])
    console = console_in(timezone_id="Asia/Yekaterinburg")
    page = console.page
    console.goto(f"/ui/movements/{movement}")
    page.locator("html[data-tz='Asia/Yekaterinburg']").wait_for()  # the browser's zone, learnt once
    cell = page.locator("#halves tbody tr").nth(1).locator("td").first
    assert cell.inner_text().endswith(f"{shown_time(departed, 'Asia/Yekaterinburg')} UTC+05")
    assert "Asia/Yekaterinburg (UTC+05:00)" in page.locator("#zone-label").inner_text()

    page.click("#settings-link")
    page.select_option("#tz", "Europe/Moscow")
    page.click("#settings button[type=submit]")
    page.wait_for_url(f"**/ui/movements/{movement}")
    assert cell.inner_text().endswith(f"{shown_time(departed, 'Europe/Moscow')} MSK")
    assert "Europe/Moscow (UTC+03:00)" in page.locator("#zone-label").inner_text()

    page.click("#settings-link")
    page.select_option("#tz", "UTC")
    page.click("#settings button[type=submit]")
    page.wait_for_url(f"**/ui/movements/{movement}")
    assert cell.inner_text().endswith(f"{shown_time(departed, 'UTC')} UTC")
    console.check()


def read_csv(path: Path, delimiter: str) -> list[list[str]]:
    """The file as a spreadsheet would read it: UTF-8 after a byte-order mark, the delimiter of its
    language (`;` in Russian, where `,` is the decimal separator)."""
    raw = path.read_bytes()
    assert raw.startswith("\ufeff".encode()), "no byte-order mark"
    text = raw.decode("utf-8-sig")
    assert delimiter in text.split("\r\n", 1)[0]
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def test_csv_of_the_in_transit_page_with_its_filter(
    console_in: Callable[..., Console], console_data: Week, tmp_path: Path
) -> None:
    console = console_in(locale="ru-RU")
    page = console.page
    console.goto("/ui/movements?status=in_transit&warehouse=msk-01&limit=1")  # one row on screen
    assert page.locator("#movements tbody tr").count() == 1
    assert page.locator("#movements tbody tr .from .wh").inner_text() == "MSK-01"
    assert "перемещений 3," in page.locator("#in-transit-total").inner_text()
    with page.expect_download() as download:
        page.click("a.csv")
    path = tmp_path / "in-transit.csv"
    download.value.save_as(path)
    rows = read_csv(path, ";")
    assert rows[0][:3] == ["Перемещение", "Состояние", "Товар"]
    assert sorted(r[0] for r in rows[1:]) == sorted(console_data.in_transit)  # every row, not one page
    assert {r[3] for r in rows[1:]} == {"MSK-01"}
    console.check()


def kafka_dead_letter(database: str, env: dict[str, Any]) -> int:
    """A record refused on the Kafka path two days ago (parked unresolved, as a webhook refusal,
    answered to its caller, is not; and past the window in which an arrival replays it by itself)."""
    from common.domain.events import Origin, parse_event
    from common.ledger.apply import apply_events

    with psycopg.connect(database) as conn:
        offset = random.randrange(10**6, 10**9)
        (outcome,) = apply_events(
            conn, [parse_event(body(env), Origin.kafka("warehouse-movements", 1, offset))]
        )
        assert outcome.rejected_event_id is not None
        conn.execute(
            "UPDATE rejected_events SET received_at = now() - interval '2 days' WHERE id = %s",
            (outcome.rejected_event_id,),
        )
        conn.commit()
    return outcome.rejected_event_id


def keep_token(console: Console, name: str = "") -> None:
    console.page.fill("#operator-token", TOKEN)
    if name:
        console.page.fill("#operator-name", name)
        console.page.dispatch_event("#operator-name", "change")
    console.page.click("#token-form button[type=submit]")


def stock_of(api: httpx.Client, warehouse: str, product: str) -> int:
    return int(api.get(f"/api/v1/warehouse/{warehouse}/products/{product}").json()["quantity"])


def test_resolve_with_a_note_and_replay_in_bulk_from_the_page(
    console: Console, api: httpx.Client, console_data: Week, browser_database: str, tmp_path: Path
) -> None:
    warehouse, product = str(uuid.uuid4()), str(uuid.uuid4())
    refused = [
        kafka_dead_letter(browser_database, envelope("departure", movement_id=str(uuid.uuid4()),
                          warehouse_id=warehouse, product_id=product, quantity=5,
                          source="EKB-05", subject="EKB-05:DEPARTURE"))
        for _ in range(4)
    ]  # fmt: skip
    post(api, envelope("arrival", movement_id=str(uuid.uuid4()), warehouse_id=warehouse, product_id=product,
                       quantity=100, source="EKB-05", subject="EKB-05:ARRIVAL"))  # fmt: skip
    page = console.page
    console.goto("/ui/dead-letters?reason=insufficient_stock&unresolved=1")
    keep_token(console, name="anna")
    page.locator(f"#dl-{refused[0]}").wait_for()

    # One resolved with a note: who, when, why are kept, and it is no longer replayed.
    first = page.locator(f"#dl-{refused[0]}")
    first.locator(".note-input").fill("counted by hand, already on the shelf")
    first.locator("button.resolve").click()
    first.locator(".replay-status", has_text="counted by hand").wait_for()
    one = api.get(
        f"/api/v1/rejected-events/{refused[0]}", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    assert one["resolved_by"] == "anna" and one["resolution_note"] == "counted by hand, already on the shelf"

    # The rest replayed at once: every unresolved dead letter of the reason, the stock moved.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#bulk-replay")
    page.locator("#replay-message", has_text="3").wait_for()
    assert stock_of(api, warehouse, product) == 100 - 3 * 5
    console.goto("/ui/dead-letters?reason=insufficient_stock")
    page.locator(f"#dl-{refused[1]}").wait_for()
    for rid in refused[1:]:
        assert page.locator(f"#dl-{rid} .replay-status").inner_text().startswith("applied")
    assert "anna" in page.locator(f"#dl-{refused[0]} .replay-status").inner_text()

    # The CSV of dead letters is an operator route: downloaded with the token kept in this tab.
    with page.expect_download() as download:
        page.click("#dead-letters-csv")
    path = tmp_path / "dead-letters.csv"
    download.value.save_as(path)
    rows = read_csv(path, ",")
    assert rows[0][0] == "Id"
    assert {str(r) for r in refused} <= {r[0] for r in rows[1:]}
    console.check()


def test_a_conflict_shows_the_applied_version_and_no_replay(console: Console, console_data: Week) -> None:
    page = console.page
    console.goto("/ui/dead-letters?reason=conflict")
    keep_token(console)
    conflict = console_data.dead_letters[2]
    row = page.locator(f"#dl-{conflict}")
    row.wait_for()
    assert row.locator("button.replay").count() == 0
    # Refused through the webhook: its caller was answered 409, it is not waiting for anyone.
    assert "409" in row.locator(".replay-status").inner_text()
    versions = page.locator(f"#dl-{conflict} + tr table.versions")
    assert versions.locator(".applied-version .wh").inner_text() == "KZN-03"
    assert '"quantity": 999' in versions.locator(".refused-version").inner_text()
    assert versions.locator(".applied-version .quantity").inner_text() != "999"
    console.screenshot("dead-letters-conflict")
    console.check()
