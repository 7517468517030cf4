"""The console's pages and static files over real HTTP (what a browser gets, without the browser).

tests/browser/ drives a real Chromium over the same pages; these check the answers themselves:
status, content type, security headers, escaping, bad parameters, caching and compression.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.support import WEBHOOK, body, envelope, new_id
from tools.corpus import (
    CONSOLE_LIMIT_PAGES,
    CONSOLE_TIME_PARAMETERS,
    EDGE_OF_RANGE_TIMES,
    UNICODE_DIGIT_LIMITS,
)

PAGES = [
    "/ui/",
    "/ui/warehouses",
    "/ui/movements",
    "/ui/movements?status=in_transit&older_than=2h",
    "/ui/movements?status=delivered",
    "/ui/losses",
    "/ui/losses?from=2025-01-01T00:00:00&to=2025-12-31T00:00:00",
    "/ui/dead-letters",
    "/ui/dead-letters?reason=insufficient_stock&unresolved=1",
]


def post(api: httpx.Client, env: dict[str, Any], expect: int = 200) -> None:
    response = api.post(WEBHOOK, content=body(env))
    assert response.status_code == expect, response.text


def html(api: httpx.Client, path: str, status: int = 200) -> str:
    response = api.get(path)
    assert response.status_code == status, (path, response.text[:500])
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    return response.text


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders(api: httpx.Client, path: str) -> None:
    text = html(api, path)
    assert "<h1>" in text and "warehouse-stock" in text


def test_pages_load_only_this_apps_files(api: httpx.Client) -> None:
    """Every script, stylesheet and image a page names is a path on this app, and it answers."""
    w, p = new_id(), new_id()
    post(api, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=5))
    for path in [*PAGES, f"/ui/warehouses/{w}", "/docs", "/redoc"]:
        text = api.get(path).text
        for url in re.findall(r'(?:src|href)="([^"#]+)"', text):
            if url.startswith(("/ui", "/api/", "/docs", "/redoc", "?")):
                continue  # links to pages, not resources loaded with the page
            assert url.startswith("/static/"), (path, url)
            assert api.get(url).status_code == 200, (path, url)


def test_warehouse_page_shows_stock_search_and_as_of(api: httpx.Client) -> None:
    w, other = new_id(), new_id()
    p1, p2 = sorted([new_id(), new_id()])
    post(api, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p1, quantity=40))
    post(api, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p2, quantity=2))
    m = new_id()
    post(api, envelope("departure", movement_id=m, warehouse_id=w, product_id=p1, quantity=15))
    post(api, envelope("arrival", movement_id=m, warehouse_id=other, product_id=p1, quantity=15))

    text = html(api, f"/ui/warehouses/{w}")
    assert p1 in text and p2 in text
    assert f"/ui/movements/{m}" in text and other[:8] in text  # p1's last movement, to `other`
    assert ">25<" in text.replace(" ", "")  # 40 - 15

    only_p2 = html(api, f"/ui/warehouses/{w}?q={p2[:13]}")
    assert p2 in only_p2 and p1 not in only_p2
    assert "No product matching" in html(api, f"/ui/warehouses/{w}?q=ffffffff-ffff-ffff-ffff-fffffffffff0")

    past = html(api, f"/ui/warehouses/{w}?as_of=2000-01-01T00:00:00")
    assert p1 not in past and "as of 1 Jan 2000 00:00:00 UTC" in past

    pages = [html(api, f"/ui/warehouses/{w}?limit=1")]
    cursor = re.search(r'rel="next" href="([^"]+)"', pages[0])
    assert cursor is not None
    pages.append(html(api, f"/ui/warehouses/{w}" + cursor.group(1).replace("&amp;", "&")))
    assert p1 in pages[0] and p2 not in pages[0] and p2 in pages[1] and 'rel="next"' not in pages[1]


def test_movement_page_shows_both_halves(api: httpx.Client) -> None:
    w1, w2, p, m = new_id(), new_id(), new_id(), new_id()
    post(api, envelope("arrival", movement_id=new_id(), warehouse_id=w1, product_id=p, quantity=100))
    post(api, envelope("departure", movement_id=m, warehouse_id=w1, product_id=p, quantity=100,
                       timestamp="2025-02-18T12:12:56Z"))  # fmt: skip
    post(api, envelope("arrival", movement_id=m, warehouse_id=w2, product_id=p, quantity=98,
                       timestamp="2025-02-18T14:34:56Z"))  # fmt: skip
    # A conflicting second arrival: refused, and shown with the movement.
    post(api, envelope("arrival", movement_id=m, warehouse_id=w2, product_id=p, quantity=97,
                       timestamp="2025-02-18T14:34:56Z"), 409)  # fmt: skip
    text = html(api, f"/ui/movements/{m}")
    assert w1 in text and w2 in text
    assert 'id="transit">2h 22m<' in text
    assert 'id="difference">-2<' in text
    assert "Refused events of this movement: 1." in text
    assert f"/ui/dead-letters?movement_id={m}" in text


def test_movements_page_lists_stuck_movements_oldest_first(api: httpx.Client) -> None:
    w, p = new_id(), new_id()
    post(api, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=10))
    old, older = new_id(), new_id()
    post(api, envelope("departure", movement_id=old, warehouse_id=w, product_id=p, quantity=1,
                       timestamp="1990-01-02T00:00:00Z"))  # fmt: skip
    post(api, envelope("departure", movement_id=older, warehouse_id=w, product_id=p, quantity=1,
                       timestamp="1990-01-01T00:00:00Z"))  # fmt: skip
    text = html(api, "/ui/movements?status=in_transit&older_than=3650d&limit=500")
    assert older in text and old in text and text.index(older) < text.index(old)
    # A movement that departed a moment ago is not stuck for an hour.
    recent = new_id()
    now = datetime.now(UTC).isoformat()
    post(api, envelope("departure", movement_id=recent, warehouse_id=w, product_id=p, quantity=1,
                       timestamp=now))  # fmt: skip
    assert recent not in html(api, "/ui/movements?status=in_transit&older_than=1h&limit=500")
    assert recent in html(api, f"/ui/movements/{recent}")


def test_dead_letters_page_shows_the_raw_payload_escaped(api: httpx.Client) -> None:
    w, p = new_id(), new_id()
    env = envelope("departure", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=5,
                   note="<script>alert(1)</script>")  # fmt: skip
    post(api, env, 409)
    shell = html(api, "/ui/dead-letters?reason=insufficient_stock")
    assert 'data-src="/ui/dead-letters/rows?reason=insufficient_stock"' in shell
    text = html(api, "/ui/dead-letters/rows?reason=insufficient_stock")  # no token configured here
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script>alert(1)</script>" not in text
    assert 'class="replay"' in text
    assert "<html" not in text  # a fragment for the page's script


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/ui/warehouses/not-a-uuid", "warehouse_id"),
        (f"/ui/warehouses/{new_id()}?q=xyz", "q"),
        (f"/ui/warehouses/{new_id()}?as_of=yesterday", "as_of"),
        (f"/ui/warehouses/{new_id()}?limit=0", "limit"),
        (f"/ui/warehouses/{new_id()}?cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("/ui/movements/42", "movement_id"),
        ("/ui/movements?status=lost", "status"),
        ("/ui/movements?older_than=soon", "older_than"),
        ("/ui/movements?status=delivered&older_than=1h", "older_than"),
        ("/ui/losses?from=2025-02-02T00:00:00&to=2025-02-01T00:00:00", "to"),
        ("/ui/losses?from=tomorrow", "from"),
        ("/ui/dead-letters?reason=bored", "reason"),
        ("/ui/dead-letters/rows?movement_id=42", "movement_id"),
    ],
)
def test_a_bad_parameter_is_a_422_page_naming_it(api: httpx.Client, path: str, field: str) -> None:
    text = html(api, path, 422)
    assert f"<strong>{field}</strong>" in text


def test_an_edge_of_range_time_with_an_offset_is_a_422_page(api: httpx.Client) -> None:
    """Valid ISO times whose UTC conversion leaves years 1..9999 (the corpus): a 422 page, not a 500."""
    w = new_id()
    for page, name in CONSOLE_TIME_PARAMETERS:
        for value in EDGE_OF_RANGE_TIMES:
            response = api.get(page.format(w=w), params={name: value})
            assert response.status_code == 422, (page, name, value, response.status_code)
            assert f"<strong>{name}</strong>" in response.text


def test_a_limit_in_unicode_digits_is_a_422_page(api: httpx.Client) -> None:
    """`limit=²` (a digit to str.isdigit, not to int): a 422 page naming `limit` on every page."""
    w = new_id()
    for page in CONSOLE_LIMIT_PAGES:
        for value in UNICODE_DIGIT_LIMITS:
            response = api.get(page.format(w=w), params={"limit": value})
            assert response.status_code == 422, (page, value, response.status_code)
            assert "<strong>limit</strong>" in response.text


def test_unknown_movement_is_a_404_page(api: httpx.Client) -> None:
    assert "No event of movement" in html(api, f"/ui/movements/{new_id()}", 404)


def test_search_box_goes_to_the_movement_the_warehouse_or_the_product(api: httpx.Client) -> None:
    w, p, m = new_id(), new_id(), new_id()
    code = "SRCH-" + w[:6].upper()
    post(api, envelope("arrival", movement_id=m, warehouse_id=w, product_id=p, quantity=1, source=code))
    assert api.get("/ui/go", params={"id": m}).headers["location"] == f"/ui/movements/{m}"
    assert api.get("/ui/go", params={"id": w}).headers["location"] == f"/ui/warehouses/{w}"
    assert api.get("/ui/go", params={"id": p}).headers["location"] == f"/ui/products/{p}"
    assert api.get("/ui/go", params={"id": code.lower()}).headers["location"] == f"/ui/warehouses/{w}"
    assert "Nothing is known by" in html(api, f"/ui/go?id={new_id()}", 404)
    assert "Nothing is known by" in html(api, "/ui/go?id=no-such-code", 404)
    assert api.get("/ui").headers["location"] == "/ui/"


# ------------------------------------------------------------------------------- static files


SWAGGER_JS = "/static/vendor/swagger-ui-dist@5.35.0/swagger-ui-bundle.js"


def test_static_files_are_cached_compressed_and_confined(api: httpx.Client) -> None:
    plain = api.get(SWAGGER_JS, headers={"accept-encoding": "identity"})
    assert plain.status_code == 200 and plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "immutable" in plain.headers["cache-control"]
    zipped = httpx.get(api.base_url.join(SWAGGER_JS), headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < len(plain.content) / 2
    assert zipped.content == plain.content  # decoded by httpx: the very same file
    again = api.get(SWAGGER_JS, headers={"if-none-match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b""

    own = api.get("/static/console.css")
    assert own.headers["cache-control"] == "no-cache"  # without its ?v= digest it may change
    assert api.get("/static/vendor/uplot@1.6.32/LICENSE").headers["content-type"].startswith("text/plain")
    for bad in ("/static/../routes.py", "/static/%2e%2e/routes.py", "/static/vendor/../../export.py",
                "/static/nothing.js", "/static/"):  # fmt: skip
        response = api.get(bad)
        assert response.status_code == 404, bad
        assert response.headers["content-type"] == "application/json", bad


def test_console_pages_are_not_in_the_api_schema(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert "/api/v1/stats/summary" in paths and "/api/v1/reports/routes" in paths
    assert not [p for p in paths if p.startswith(("/ui", "/static", "/docs", "/redoc"))]
    as_of = [q for q in paths["/api/v1/warehouse/{warehouse_id}/products"]["get"]["parameters"]
             if q["name"] == "as_of"]  # fmt: skip
    assert as_of and "at or before" in as_of[0]["description"]


# ------------------------------------------------------------------ language, switch, CSV (issue 23)


def test_language_from_accept_language_and_the_switch_that_stays_on_this_site(api: httpx.Client) -> None:
    assert "<h1>Склады</h1>" in api.get("/ui/warehouses", headers={"Accept-Language": "ru-RU,ru;q=0.9"}).text
    assert (
        "<h1>Warehouses</h1>" in api.get("/ui/warehouses", headers={"Accept-Language": "de, en;q=0.5"}).text
    )
    switched = api.get(
        "/ui/settings", params={"lang": "ru", "tz": "Europe/Moscow", "next": "/ui/losses?from="}
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/ui/losses?from="
    cookies = {c.split(";")[0].replace('"', "") for c in switched.headers.get_list("set-cookie")}
    assert {"lang=ru", "tz=Europe/Moscow"} <= cookies
    for elsewhere in ("https://evil.example/", "//evil.example/ui", "/\\evil.example"):
        answer = api.get("/ui/settings", params={"lang": "en", "next": elsewhere})
        assert answer.headers["location"] == "/ui/", elsewhere
    assert api.get("/ui/settings", params={"tz": "Mars/Olympus"}).status_code == 422
    page = api.get("/ui/losses", cookies={"lang": "ru", "tz": "Europe/Moscow"})
    assert "Потери по маршрутам" in page.text and "Europe/Moscow (UTC+03:00)" in page.text


def test_csv_of_a_warehouse_has_the_pages_filters_and_every_row(api: httpx.Client) -> None:
    w = new_id()
    products = sorted(new_id() for _ in range(3))
    for quantity, p in enumerate(products, 1):
        post(api, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=quantity))
    page = api.get(f"/ui/warehouses/{w}?limit=1").text
    assert f'href="/ui/export/warehouses/{w}"' in page  # the page's size is not the export's
    answer = api.get(f"/ui/export/warehouses/{w}")
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"].startswith('attachment; filename="stock-')
    assert answer.content.startswith("\ufeff".encode())
    lines = answer.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "Code,Warehouse id,Product,Quantity,Updated"
    assert [line.split(",")[2:4] for line in lines[1:]] == [[p, str(q)] for q, p in enumerate(products, 1)]
    only = api.get(f"/ui/export/warehouses/{w}", params={"q": products[1][:13]})
    assert [line.split(",")[2] for line in only.text.lstrip("\ufeff").splitlines()[1:]] == [products[1]]
    russian = api.get(f"/ui/export/warehouses/{w}", headers={"Accept-Language": "ru"})
    assert russian.content.decode("utf-8-sig").startswith("Код")
    assert api.get(f"/ui/export/warehouses/{w}", params={"as_of": "soon"}).status_code == 422


def test_search_box_lists_what_a_prefix_may_name(api: httpx.Client) -> None:
    prefix = new_id()[:6]
    w = prefix + new_id()[6:]
    p = prefix + new_id()[6:]
    post(api, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=3))
    text = html(api, f"/ui/go?id={prefix}")
    assert f'href="/ui/warehouses/{w}"' in text and f'href="/ui/products/{p}"' in text
    russian = api.get(f"/ui/go?id={prefix}", headers={"Accept-Language": "ru"}).text
    assert "подходит к нескольким объектам" in russian and ">склад<" in russian and ">товар<" in russian


def test_a_time_typed_in_a_filter_is_in_the_operators_zone(api: httpx.Client) -> None:
    """<input type=datetime-local> sends no offset: it is read in the zone the page shows."""
    from zoneinfo import ZoneInfo

    w, p = new_id(), new_id()
    post(api, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=7))
    soon = datetime.now(UTC) + timedelta(minutes=2)  # after the arrival was applied, whatever the zone
    zone = "America/Sao_Paulo"  # UTC-03:00 all year
    local = soon.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S")
    there = api.get(f"/ui/warehouses/{w}", params={"as_of": local}, cookies={"tz": zone}).text
    assert p in there and f'value="{local}"' in there and "As of (UTC-03)" in there
    # The same wall-clock time read as UTC is three hours earlier: before the arrival.
    assert p not in api.get(f"/ui/warehouses/{w}", params={"as_of": local}, cookies={"tz": "UTC"}).text


def test_a_code_that_changed_or_is_shared_is_shown_not_hidden(api: httpx.Client) -> None:
    w, other, p = new_id(), new_id(), new_id()
    old, new = "OLD-" + w[:4].upper(), "NEW-" + w[:4].upper()
    post(api, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=1, source=old))
    post(api, envelope("arrival", movement_id=new_id(), warehouse_id=w, product_id=p, quantity=1, source=new))
    post(
        api,
        envelope("arrival", movement_id=new_id(), warehouse_id=other, product_id=p, quantity=1, source=new),
    )
    page = html(api, f"/ui/warehouses/{w}")
    assert f"Warehouse {w} was seen with more than one code: {new}, {old}." in page
    assert f"Code {new} is claimed by more than one warehouse" in page and other in page
    assert f"Code {new} is claimed by more than one warehouse" in html(api, "/ui/warehouses")
