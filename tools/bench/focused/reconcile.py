"""How long `warehouse-stock reconcile` takes on a million events: `python -m tools.bench.focused.reconcile`.

Seeds a database of its own (BENCH_RECONCILE_DATABASE_URL, default: DATABASE_URL's server, database
`bench_reconcile`, created and migrated; its ledger tables emptied first) with consistent books
written by bare set-based SQL, server side, in a few statements:

- 100 warehouses x 1,000 products = 100,000 pairs; each pair receives two supplier deliveries of
  1,000 (arrival-only movements); the first of each pair is then folded into `stock_opening` as
  retention would do (migration 0004), so the fold accounting is exercised at full size;
- 450,000 transfers between random pairs (departure and arrival, 1-5 units, now and then one
  lost on the way), i.e. 900,000 events;
- so 1,000,000 events in the log (plus 100,000 folded), 650,000 movements, 100,000 stock rows;
- 10,000 dead letters: invalid Kafka records, unresolved refusals, and replays recorded as
  applied against real departures.

Then it times `reconcile` (the median of --runs), prints each statement's time and the shape of
its plan (EXPLAIN ANALYZE: node types, and whether anything spilled to disk), and checks that the
answer is right: clean books report nothing, and three rows broken in a rolled-back transaction
are reported exactly. A fast wrong answer is a failure (exit 1), not a result.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from common.adapters.migrate import DATA_TABLES, migrate
from common.operations.reconcile import OWN_TRANSACTION, STATEMENTS, reconcile

WAREHOUSES = 100
PRODUCTS = 1000
TRANSFERS = 450_000
DEAD_LETTERS = 10_000

SEED = [
    # Supplier deliveries: two arrival-only movements per pair, movement numbers 1..200,000.
    f"""
    INSERT INTO movements (movement_id, product_id, destination_warehouse_id, arrived_quantity, arrived_at)
    SELECT md5('m' || k)::uuid, md5('p' || (k % {PRODUCTS * WAREHOUSES}) / {WAREHOUSES})::uuid,
           md5('w' || (k % {PRODUCTS * WAREHOUSES}) % {WAREHOUSES})::uuid, 1000,
           timestamptz '2025-01-01' + k * interval '1 second'
    FROM generate_series(1, {2 * PRODUCTS * WAREHOUSES}) AS k
    """,
    # Transfers between random warehouses of one product.
    f"""
    INSERT INTO movements (movement_id, product_id, source_warehouse_id, departed_quantity, departed_at,
                           destination_warehouse_id, arrived_quantity, arrived_at)
    SELECT md5('m' || k)::uuid, md5('p' || p)::uuid, md5('w' || s)::uuid, q,
           timestamptz '2025-02-01' + k * interval '1 second',
           md5('w' || ((s + 1 + d) % {WAREHOUSES}))::uuid, q - lost,
           timestamptz '2025-02-01' + k * interval '1 second' + interval '3 hours'
    FROM (
        SELECT k, (random() * {PRODUCTS - 1})::int AS p, (random() * {WAREHOUSES - 1})::int AS s,
               (random() * {WAREHOUSES - 2})::int AS d, 2 + (random() * 3)::int AS q,
               (random() < 0.1)::int AS lost
        FROM generate_series({2 * PRODUCTS * WAREHOUSES + 1}, {2 * PRODUCTS * WAREHOUSES + TRANSFERS}) AS k
    ) AS t
    """,
    # The event log: every half of every movement, in movement order.
    """
    INSERT INTO movement_events (movement_id, event, warehouse_id, product_id, quantity, occurred_at,
                                 envelope_id, origin, kafka_topic, kafka_partition, kafka_offset)
    SELECT m.movement_id, h.event, h.w, m.product_id, h.q, h.at, md5(m.movement_id::text || h.event),
           'kafka', 'bench', 0, row_number() OVER (ORDER BY h.at, h.event)
    FROM movements m
    CROSS JOIN LATERAL (VALUES
        ('departure', m.source_warehouse_id, m.departed_quantity, m.departed_at),
        ('arrival', m.destination_warehouse_id, m.arrived_quantity, m.arrived_at)) AS h(event, w, q, at)
    WHERE h.w IS NOT NULL
    ORDER BY h.at, h.event
    """,
    # Retention: each pair's first delivery folded into its opening balance.
    f"""
    WITH gone AS (
        DELETE FROM movement_events e USING generate_series(1, {PRODUCTS * WAREHOUSES}) AS k
        WHERE e.movement_id = md5('m' || k)::uuid
        RETURNING e.warehouse_id, e.product_id, e.quantity
    )
    INSERT INTO stock_opening (warehouse_id, product_id, quantity, folded_until, folded_events)
    SELECT warehouse_id, product_id, sum(quantity), now(), count(*) FROM gone GROUP BY 1, 2
    """,
    # The stock the ledger would hold: opening + arrivals - departures.
    """
    INSERT INTO stock (warehouse_id, product_id, quantity, updated_at)
    SELECT warehouse_id, product_id, sum(q), now()
    FROM (SELECT warehouse_id, product_id, quantity AS q FROM stock_opening
          UNION ALL
          SELECT warehouse_id, product_id, CASE WHEN event = 'arrival' THEN quantity ELSE -quantity END
          FROM movement_events) AS t
    GROUP BY 1, 2
    """,
    # Dead letters: invalid Kafka records, unresolved webhook refusals, replays applied.
    f"""
    INSERT INTO rejected_events (reason, detail, raw_payload, movement_id, event, origin, kafka_topic,
                                 kafka_partition, kafka_offset, record_digest, warehouse_id, product_id,
                                 replayed_at, replay_status)
    SELECT 'invalid', 'bench', convert_to('{{"bad": ' || k || '}}', 'UTF8'), NULL::uuid, NULL::text,
           'kafka', 'bench', 1, k, sha256(convert_to('{{"bad": ' || k || '}}', 'UTF8')), NULL::uuid,
           NULL::uuid, NULL::timestamptz, NULL::text
    FROM generate_series(1, {DEAD_LETTERS // 2}) AS k
    UNION ALL
    SELECT 'insufficient_stock', 'bench', '{{}}', gen_random_uuid(), 'departure', 'webhook', NULL, NULL,
           NULL, NULL, md5('w' || k % {WAREHOUSES})::uuid, md5('p' || k % {PRODUCTS})::uuid, NULL, NULL
    FROM generate_series(1, {DEAD_LETTERS // 4}) AS k
    UNION ALL
    (SELECT 'insufficient_stock', 'bench', '{{}}', m.movement_id, 'departure', 'webhook', NULL, NULL,
            NULL, NULL, m.source_warehouse_id, m.product_id, now(), 'applied'
     FROM movements m WHERE m.source_warehouse_id IS NOT NULL LIMIT {DEAD_LETTERS // 4})
    """,
]


def database_url() -> str:
    explicit = os.environ.get("BENCH_RECONCILE_DATABASE_URL")
    url = explicit or urlunsplit(
        urlsplit(
            os.environ.get("DATABASE_URL", "postgresql://warehouse:warehouse@127.0.0.1:5432/w")
        )._replace(path="/bench_reconcile")
    )
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"bench_reconcile: refusing non-loopback database host {host!r}")
    return url


def prepare(url: str) -> None:
    """Create (CREATEDB privilege) and migrate the database; empty its tables."""
    name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(url, connect_timeout=5) as conn:
        migrate(conn)
        tables = [*DATA_TABLES, *(["stock_opening"] if "stock_opening" not in DATA_TABLES else [])]
        conn.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY").format(sql.SQL(", ").join(map(sql.Identifier, tables)))
        )
        conn.commit()


def seed(conn: psycopg.Connection) -> float:
    began = time.perf_counter()
    with conn.transaction():
        conn.execute("SELECT setseed(0.42)")
        for statement in SEED:
            conn.execute(statement)
    conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - began


def plan_shape(conn: psycopg.Connection, statement: str) -> tuple[float, str]:
    """(milliseconds, 'node types with counts; temp blocks written') of one EXPLAIN ANALYZE run."""
    with conn.transaction():
        for setting in OWN_TRANSACTION:  # as reconcile runs them
            conn.execute(setting)
        row = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement).fetchone()
    assert row is not None
    doc = row[0] if isinstance(row[0], list) else json.loads(row[0])
    nodes: Counter[str] = Counter()
    temp = 0

    def walk(node: dict[str, Any]) -> None:
        nonlocal temp
        nodes[node["Node Type"] + (f" ({node['Join Type']})" if "Join Type" in node else "")] += 1
        temp += int(node.get("Temp Written Blocks", 0))
        for child in node.get("Plans", []):
            walk(child)

    walk(doc[0]["Plan"])
    shape = ", ".join(f"{n}x {kind}" if n > 1 else kind for kind, n in nodes.most_common())
    return float(doc[0]["Execution Time"]), f"{shape}; temp written {temp * 8 // 1024} MiB"


def check_answers(conn: psycopg.Connection) -> list[str]:
    """Clean books report nothing; three rows broken (then rolled back) are reported exactly."""
    problems = []
    report = reconcile(conn)
    if report.discrepancies:
        problems.append(f"clean books reported {len(report.discrepancies)}: {report.discrepancies[:3]}")
    with contextlib.suppress(_Rollback), conn.transaction():
        gone = conn.execute(
            "DELETE FROM movement_events WHERE id = (SELECT max(id) FROM movement_events) "
            "RETURNING movement_id, warehouse_id, product_id"
        ).fetchone()
        assert gone is not None
        conn.execute(
            "UPDATE stock SET quantity = quantity + 1 WHERE (warehouse_id, product_id) = "
            "(SELECT warehouse_id, product_id FROM stock "
            " WHERE (warehouse_id, product_id) <> (%s, %s) LIMIT 1)",
            (gone[1], gone[2]),
        )
        conn.execute(
            "UPDATE movements SET arrived_quantity = arrived_quantity + 7 WHERE movement_id = "
            "(SELECT movement_id FROM movements WHERE departed_at IS NOT NULL AND movement_id <> %s LIMIT 1)",
            (gone[0],),
        )
        found = Counter(d.check for d in reconcile(conn).discrepancies)
        want = Counter({"stock_balance": 2, "movement_halves": 1, "halves_without_events": 1})
        if found != want:
            problems.append(f"three broken rows: reported {dict(found)}, expected {dict(want)}")
        raise _Rollback
    return problems


class _Rollback(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-seed", action="store_true", help="reuse the books of the previous run")
    args = parser.parse_args(argv)
    url = database_url()
    if not args.no_seed:
        prepare(url)
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        if not args.no_seed:
            print(f"seeded in {seed(conn):.1f}s", flush=True)
        counts = reconcile(conn).counts
        print("books: " + ", ".join(f"{n:,} {what}" for what, n in counts.items()), flush=True)
        times = []
        for _ in range(args.runs):
            began = time.perf_counter()
            reconcile(conn)
            times.append(time.perf_counter() - began)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        print(
            f"reconcile: median {statistics.median(times):.2f}s of {args.runs} runs "
            f"({', '.join(f'{t:.2f}' for t in times)})",
            flush=True,
        )
        for names, statement in STATEMENTS:
            ms, shape = plan_shape(conn, statement)
            print(f"  {' + '.join(names):<60} {ms / 1000:6.2f}s  {shape}", flush=True)
        problems = check_answers(conn)
    for problem in problems:
        print(f"FAIL {problem}", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
