"""Browser tests: the console in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright for Python; `playwright install` is never run, no browser is downloaded).

- The app: a real uvicorn (tests/e2e/support.py) on a database of its own, `<test db>_browser`,
  emptied at the start of the session and filled with a small, realistic week through the
  webhook (and the ledger functions for what the webhook cannot produce), so every page has
  content and the screenshots show something an operator would recognise.
- The browser: launched once per test module (Playwright gives it a fresh temporary user-data dir),
  headless, without the features that phone home (`CHROMIUM_ARGS`), and with every host name but
  127.0.0.1 unresolvable. Each test gets a new context (fresh storage) whose requests are all
  routed through a guard: a request to any other host is refused and recorded, and fails the test,
  as does any console error or uncaught page error (`Console.check`).
- Screenshots of each page go to docs/console/ with CONSOLE_SCREENSHOTS=1 (the committed ones the
  README shows), else to .stack/console-screenshots/.
"""

from __future__ import annotations

import contextlib
import os
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from psycopg import sql

from common.adapters.migrate import DATA_TABLES, migrate
from tests.browser.support import PRODUCER_TOKEN, TOKEN, Console, Week, iso, post
from tests.e2e.support import REDIS_URL, AppProcess, start_app
from tests.e2e.support import envelope as plain_envelope

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Nothing but the app resolves: a request that slipped past the route guard still goes nowhere.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
LOCAL_SCHEMES = {"data", "blob", "about"}
# The warehouses' codes, as their events name them in `source` ("WH-3322" in the brief).
CODES = ["MSK-01", "TVR-02", "KZN-03", "SMR-04"]


# ------------------------------------------------------------------------------ the app


@pytest.fixture(scope="session")
def browser_database(database_url: str) -> str:
    """`<test db>_browser`, created when missing, migrated and emptied once per session."""
    name = str(psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]) + "_browser"
    url = urlsplit(database_url)._replace(path="/" + name).geturl()
    with psycopg.connect(database_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(url) as conn:
        migrate(conn)
        conn.execute("TRUNCATE " + ", ".join(DATA_TABLES) + " RESTART IDENTITY")
        conn.commit()
    return url


@pytest.fixture(scope="session")
def console_app(browser_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    log = Path(tmp_path_factory.mktemp("console-app")) / "uvicorn.log"
    env = {
        "DATABASE_URL": browser_database,
        "REDIS_URL": REDIS_URL,
        "CACHE_ENABLED": "true",
        # Producers and operators hold different tokens (the operator routes refuse the producers').
        "WEBHOOK_TOKEN": PRODUCER_TOKEN,
        "OPERATOR_TOKEN": TOKEN,
    }
    process = start_app(env, log)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def api(console_app: AppProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {PRODUCER_TOKEN}"}  # the webhook posts
    with httpx.Client(base_url=console_app.url, timeout=30, headers=headers) as client:
        yield client


@pytest.fixture(scope="session")
def console_data(api: httpx.Client, browser_database: str) -> Week:
    """A week of a small warehouse network, through the webhook: restocks, transfers (some losing
    units, three still in transit), refused departures and a conflict; plus one invalid Kafka
    record through the ledger (the webhook answers those 422 and keeps nothing)."""
    rng = random.Random(15)
    names = ["Moscow DC", "Tver", "Kazan", "Samara"]
    week = Week(
        warehouses={name: str(uuid.UUID(int=rng.getrandbits(128), version=4)) for name in names},
        products=sorted(str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(12)),
        codes=dict(zip(names, CODES, strict=True)),
    )
    code_of = {week.warehouses[name]: code for name, code in week.codes.items()}

    def envelope(event: str, **fields: Any) -> dict[str, Any]:
        """The brief's envelope, naming its warehouse by code in `source` and `subject`."""
        code = code_of[fields["warehouse_id"]]
        return plain_envelope(event, source=code, subject=f"{code}:{event.upper()}", **fields)

    w = week.warehouses
    now = datetime.now(UTC).replace(microsecond=0)
    stock: dict[tuple[str, str], int] = {}
    for product in week.products:
        for hub in (w["Moscow DC"], w["Tver"]):
            quantity = rng.randint(200, 900)
            post(api, envelope("arrival", movement_id=str(uuid.uuid4()), warehouse_id=hub, product_id=product,
                               quantity=quantity, timestamp=iso(now - timedelta(days=6))))  # fmt: skip
            stock[(hub, product)] = quantity
    routes = [(w["Moscow DC"], w["Kazan"]), (w["Moscow DC"], w["Samara"]), (w["Tver"], w["Kazan"])]
    for i in range(18):
        src, dst = routes[i % len(routes)]
        product = week.products[i % len(week.products)]
        sent = rng.randint(10, 80)
        lost = rng.choice([0, 0, 0, 1, 2, 5]) if i % 3 == 0 else 0
        departed = now - timedelta(days=5) + timedelta(hours=6 * i)
        movement = str(uuid.uuid4())
        post(api, envelope("departure", movement_id=movement, warehouse_id=src, product_id=product,
                           quantity=sent, timestamp=iso(departed)))  # fmt: skip
        transit = timedelta(minutes=rng.randint(50, 9 * 60))
        post(api, envelope("arrival", movement_id=movement, warehouse_id=dst, product_id=product,
                           quantity=sent - lost, timestamp=iso(departed + transit)))  # fmt: skip
        week.delivered.append(movement)
    for hours in (50, 26, 5):
        movement = str(uuid.uuid4())
        post(api, envelope("departure", movement_id=movement, warehouse_id=w["Moscow DC"],
                           product_id=week.products[hours % 12], quantity=12,
                           timestamp=iso(now - timedelta(hours=hours))))  # fmt: skip
        week.in_transit.append(movement)
    for product in week.products[:2]:
        refused = post(api, envelope("departure", movement_id=str(uuid.uuid4()), warehouse_id=w["Samara"],
                                     product_id=product, quantity=5000,
                                     timestamp=iso(now - timedelta(hours=3))), 409)  # fmt: skip
        week.dead_letters.append(refused["rejected_event_id"])
    conflict = envelope("arrival", movement_id=week.delivered[0], warehouse_id=w["Kazan"],
                        product_id=week.products[0], quantity=999,
                        timestamp=iso(now - timedelta(hours=2)))  # fmt: skip
    week.dead_letters.append(post(api, conflict, 409)["rejected_event_id"])

    from common.domain.events import Origin, parse_event
    from common.ledger.apply import apply_events

    with psycopg.connect(browser_database) as conn:
        raw = b'{"id": "b3b53031", "source": "WH-3322", "data": {"quantity": "ten"}}'
        (outcome,) = apply_events(conn, [parse_event(raw, Origin.kafka("warehouse-movements", 2, 1207))])
        conn.commit()
        week.dead_letters.append(outcome.rejected_event_id or 0)
        # The ledger counts every event it decides (event_outcome_counts), but the week above is
        # posted within seconds: its counts fill the current minute only. An hour of history for
        # the chart to show, as a busy hour would leave it.
        minute0 = now.replace(second=0) - timedelta(minutes=59)
        rows = []
        for i in range(60):
            minute = minute0 + timedelta(minutes=i)
            applied = 60 + int(40 * abs(((i % 20) - 10) / 10)) + rng.randint(0, 15)
            rows.append((minute, "kafka", "applied", "", 0, applied))
            rows.append((minute, "kafka", "duplicate", "", 0, rng.randint(0, 6)))
            if i % 7 == 0:
                rows.append((minute, "kafka", "rejected", "insufficient_stock", 0, rng.randint(1, 3)))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO event_outcome_counts (minute, origin, outcome, reason, shard, events) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                rows,
            )
            # The local pollers write consumer_lag (another change); what one would report.
            cur.executemany(
                "INSERT INTO consumer_lag (group_id, topic, partition, committed_offset, end_offset, lag, "
                "consumer, reported_at) VALUES ('warehouse-stock', 'warehouse-movements', %s, %s, %s, %s, "
                "'poller-1', now()) ON CONFLICT (group_id, topic, partition) DO UPDATE SET "
                "lag = EXCLUDED.lag, reported_at = now()",
                [(0, 40_100, 40_112, 12), (1, 39_870, 39_870, 0), (2, 41_002, 41_005, 3)],
            )
        conn.commit()
    return week


# -------------------------------------------------------------------------------- the browser


# Module scope, not session: Playwright's sync API runs an event loop in this thread while it is
# open, and later suites (Mangum in tests/lambda) need to run their own.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package "
                    "(apt-get install -y chromium)", pytrace=False)  # fmt: skip
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextlib.contextmanager
def open_console(chromium: Any, app: AppProcess, **options: Any) -> Iterator[Console]:
    """A new browser context (fresh storage and cookies) and page on the app, guarded."""
    settings = {
        "viewport": {"width": 1280, "height": 860},
        "locale": "en-GB",
        "timezone_id": "UTC",
        **options,
    }
    context = chromium.new_context(**settings)
    page = context.new_page()
    seen = Console(page=page, base_url=app.url)
    allowed_host = urlsplit(app.url).hostname

    def guard(route: Any) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in LOCAL_SCHEMES or url.hostname == allowed_host:
            route.continue_()
        else:
            seen.offsite.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", guard)
    page.on("console", lambda message: seen.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: seen.errors.append(f"uncaught: {error}"))
    # A request the page itself cancelled (console.js renders the first page again in the
    # browser's zone) is aborted, not failed.
    page.on("requestfailed", lambda request: seen.errors.append(f"request failed: {request.url}")
            if urlsplit(request.url).hostname == allowed_host and request.failure != "net::ERR_ABORTED"
            else None)  # fmt: skip
    try:
        yield seen
        seen.check()  # also for a test that forgot to
    finally:
        context.close()


@pytest.fixture
def console(chromium: Any, console_app: AppProcess) -> Iterator[Console]:
    """An English-speaking browser in UTC."""
    with open_console(chromium, console_app) as seen:
        yield seen


@pytest.fixture
def console_in(chromium: Any, console_app: AppProcess) -> Iterator[Callable[..., Console]]:
    """`console_in(locale="ru-RU", timezone_id="Europe/Moscow")`: a browser set up so."""
    with contextlib.ExitStack() as stack:
        yield lambda **options: stack.enter_context(open_console(chromium, console_app, **options))
