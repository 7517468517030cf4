"""Benchmark of the console's pages and report endpoints on a large ledger: a table of latencies.

    .venv/bin/python -m tools.bench.focused.console                  # 100,000 events, 50 requests per row
    .venv/bin/python -m tools.bench.focused.console --events 20000 --requests 20 --keep

It needs the local stack (`make up`; DATABASE_URL, else POSTGRES_PORT as in `.env`): it creates
(or empties) a database of its own beside DATABASE_URL's, `<db>_bench_console`, migrates it, and
seeds it through `common.ledger.apply.apply_events` in batches of 2,000 (not HTTP;
tools/bench/focused/console_seed.py): a week of restocks, transfers between 20 warehouses (10 % of them
losing a few units on the way, 3 % never arriving: stuck in transit), 5 % exact redeliveries, and
refused events (departures beyond the stock, conflicting halves, invalid payloads) that become
dead letters. The applied events' `received_at` is then set to their event time (plus two
seconds) and the stock rows' `updated_at` to their last event, as if the week had really been
ingested, so `as_of` and the lists read a realistic spread (the per-minute counts stay where the
ledger wrote them: the last minutes).

Then it starts the local app (uvicorn, one worker, webhook only) on that database and times every
page and JSON endpoint: N sequential requests over one keep-alive connection after 3 warm-ups;
median, p95 and max in milliseconds, each answer checked for status 200. It stops the app, keeps
or drops the database (`--keep`), and prints the table. Nothing is asserted: the target is under
200 ms per page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql

from common.adapters.migrate import DATA_TABLES, migrate
from tools.bench.focused.console_seed import generate, seed
from tools.bench.harness import ROOT
from tools.procs import free_port


def stack_database_url() -> str:
    """DATABASE_URL, else the local stack's database on POSTGRES_PORT (as infra/scripts/stack-env.sh)."""
    from dotenv import dotenv_values

    dotenv = dotenv_values(ROOT / ".env") if (ROOT / ".env").is_file() else {}
    explicit = os.environ.get("DATABASE_URL") or dotenv.get("DATABASE_URL")
    if explicit:
        return explicit
    port = os.environ.get("POSTGRES_PORT") or dotenv.get("POSTGRES_PORT") or "5432"
    return f"postgresql://warehouse:warehouse@127.0.0.1:{port}/warehouse"


def database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path="/" + quote(name)))


def prepare_database(url: str) -> None:
    name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    admin = database_url(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(url) as conn:
        migrate(conn)
        conn.execute("TRUNCATE " + ", ".join(DATA_TABLES) + " RESTART IDENTITY")
        conn.commit()


def drop_database(url: str) -> None:
    name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    with psycopg.connect(database_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# ----------------------------------------------------------------------------- the timings


def start_app(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "APP_MODE": "webhook_only",
        "CACHE_ENABLED": "false",
        # The dead-letter rows are an operator route: open, as with no token configured.
        "WEBHOOK_TOKEN": "",
        "OPERATOR_TOKEN": "",
        "OPERATOR_AUTH": "token",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    handle = log.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "functions.local_app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    handle.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited: {log.read_text(errors='replace')}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the app did not start within 60 s")


def targets(url: str) -> list[tuple[str, str]]:
    """(label, path) for every page and endpoint, with parameters a real operator would use."""
    with psycopg.connect(url) as conn:
        busiest = conn.execute(
            "SELECT warehouse_id FROM stock GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        delivered = conn.execute(
            "SELECT movement_id FROM movements WHERE status = 'delivered' ORDER BY movement_id LIMIT 1"
        ).fetchone()
        middle = conn.execute(
            "SELECT min(received_at) + (max(received_at) - min(received_at)) / 2 FROM movement_events"
        ).fetchone()
        assert busiest and delivered and middle
        product = conn.execute(
            "SELECT product_id FROM stock WHERE warehouse_id = %s LIMIT 1", (busiest[0],)
        ).fetchone()
    assert product
    w, m = busiest[0], delivered[0]
    as_of = quote(middle[0].isoformat())
    day_ago = quote((datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat())
    prefix = str(product[0])[:2]
    return [
        ("/ui/ (overview)", "/ui/"),
        ("/ui/warehouses", "/ui/warehouses"),
        ("/ui/warehouses/{id}", f"/ui/warehouses/{w}"),
        ("/ui/warehouses/{id}?q=<2 digits>", f"/ui/warehouses/{w}?q={prefix}"),
        ("/ui/warehouses/{id}?as_of=<mid-week>", f"/ui/warehouses/{w}?as_of={as_of}"),
        ("/ui/movements/{id}", f"/ui/movements/{m}"),
        ("/ui/movements?status=in_transit", "/ui/movements?status=in_transit"),
        ("/ui/movements?...&older_than=1d", "/ui/movements?status=in_transit&older_than=1d"),
        ("/ui/movements?status=delivered", "/ui/movements?status=delivered"),
        ("/ui/losses (all time)", "/ui/losses"),
        ("/ui/losses (last 24 h)", f"/ui/losses?from={day_ago}"),
        ("/ui/dead-letters", "/ui/dead-letters"),
        ("/ui/dead-letters/rows (what its script loads)", "/ui/dead-letters/rows"),
        ("/ui/dead-letters/rows?reason=conflict", "/ui/dead-letters/rows?reason=conflict&unresolved=1"),
        ("GET /api/v1/stats/summary", "/api/v1/stats/summary"),
        ("GET /api/v1/reports/routes", "/api/v1/reports/routes"),
        ("GET /api/v1/reports/routes?from=<24 h>", f"/api/v1/reports/routes?from={day_ago}"),
        ("GET .../products (current)", f"/api/v1/warehouse/{w}/products"),
        ("GET .../products?as_of=<mid-week>", f"/api/v1/warehouse/{w}/products?as_of={as_of}"),
        ("/docs (HTML)", "/docs"),
        ("/redoc (HTML)", "/redoc"),
        ("/openapi.json", "/openapi.json"),
    ]


Row = tuple[str, float, float, float, int]  # label, median, p95, max (ms), body bytes


def time_requests(base: str, rows: list[tuple[str, str]], n: int) -> list[Row]:
    results = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for label, path in rows:
            for _ in range(3):
                client.get(path)
            samples = []
            size = 0
            for _ in range(n):
                began = time.perf_counter()
                response = client.get(path)
                samples.append((time.perf_counter() - began) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
                size = len(response.content)
            samples.sort()
            p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
            results.append((label, statistics.median(samples), p95, samples[-1], size))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000, help="applied events to seed")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per row")
    parser.add_argument("--port", type=int, default=0, help="the app's port (default: a free one)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--reuse", action="store_true", help="time the database seeded by a --keep run")
    parser.add_argument(
        "--without-console-indexes",
        action="store_true",
        help="what-if: seed without migration 0003's indexes (their write cost), then add them",
    )
    args = parser.parse_args(argv)

    base_url = stack_database_url()
    name = str(psycopg.conninfo.conninfo_to_dict(base_url).get("dbname") or "warehouse") + "_bench_console"
    url = database_url(base_url, name)
    state = ROOT / ".stack" / "bench"
    state.mkdir(parents=True, exist_ok=True)

    if not args.reuse:
        prepare_database(url)
        began = time.perf_counter()
        stream = generate(args.events, args.seed)
        generated = time.perf_counter() - began
        began = time.perf_counter()
        outcomes = seed(url, stream, without_console_indexes=args.without_console_indexes)
        seeded = time.perf_counter() - began
        total, ledger = len(stream.payloads), outcomes["ledger_seconds"]
        print(
            f"seeded {total:,} events in {seeded:.1f} s (stream built in {generated:.1f} s): "
            f"{outcomes['applied']:,.0f} applied, {outcomes['duplicate']:,.0f} duplicates, "
            f"{outcomes['rejected']:,.0f} refused; the ledger alone {ledger:.1f} s, "
            f"{total / ledger:,.0f} events/s"
            + (" (without migration 0003's indexes)" if args.without_console_indexes else "")
        )
    with psycopg.connect(url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM movement_events), (SELECT count(*) FROM movements), "
            "(SELECT count(*) FROM movements WHERE status = 'in_transit'), "
            "(SELECT count(*) FROM rejected_events), (SELECT count(*) FROM stock)"
        ).fetchone()
    assert counts is not None
    print(
        f"database {name}: {counts[0]:,} events in the log, {counts[1]:,} movements "
        f"({counts[2]:,} in transit), {counts[3]:,} dead letters, {counts[4]:,} stock rows"
    )

    port = args.port or free_port()
    process = start_app(url, port, state / "bench_console_app.log")
    try:
        results = time_requests(f"http://127.0.0.1:{port}", targets(url), args.requests)
    finally:
        process.terminate()
        process.wait(timeout=20)
        if not args.keep and not args.reuse:
            drop_database(url)

    width = max(len(r[0]) for r in results)
    print(f"\n{'page / endpoint':<{width}}  {'median':>8}  {'p95':>8}  {'max':>8}  {'bytes':>9}")
    for label, median, p95, worst, size in results:
        flag = "" if p95 < 200 else "  over 200 ms"
        print(f"{label:<{width}}  {median:>6.1f}ms  {p95:>6.1f}ms  {worst:>6.1f}ms  {size:>9,}{flag}")
    print(
        f"\n{args.requests} sequential requests per row, one keep-alive connection, one uvicorn worker;"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
