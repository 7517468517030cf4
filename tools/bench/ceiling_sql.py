"""The ceiling for Kafka ingestion: the same records applied with bare, set-based SQL.

Same input as the handler (the base64 values of the MSK event), same database, same effect on
the tables (event log rows, movements, stock), one transaction per batch, but no validation, no
per-event decisions and no service code: COPY into a temporary staging table, then a single
statement decodes the JSON in PostgreSQL and writes everything with `INSERT ... ON CONFLICT`.
Duplicates fall out of the event log's unique key; feasibility (no negative stock) is taken on
trust, which is exactly what the real ledger does not do. The handler's share of this number says
how much the service's safety costs on top of what the database must do anyway.

`apply_batches(..., decoded=True)` is the variant without decoding: the fields are extracted in
advance (untimed) and COPYed as columns, so only the database's writes are timed. It shows how
much of the ceiling above is PostgreSQL parsing JSON.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from typing import Any

import psycopg

STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS bench_staging (
    topic text NOT NULL, part integer NOT NULL, off bigint NOT NULL, value text NOT NULL
) ON COMMIT DELETE ROWS
"""

COLUMNS_DDL = """
CREATE TEMP TABLE IF NOT EXISTS bench_staging_cols (
    mid uuid, kind text, w uuid, p uuid, q bigint, at timestamptz, envelope_id text,
    topic text, part integer, off bigint
) ON COMMIT DELETE ROWS
"""
COLUMNS = "mid, kind, w, p, q, at, envelope_id, topic, part, off"

# The events as columns: decoded by PostgreSQL from the staged base64 JSON ...
FROM_JSON = """
decoded AS (
    SELECT topic, part, off, convert_from(decode(value, 'base64'), 'UTF8')::jsonb AS j
    FROM bench_staging
), ev AS (
    SELECT (j->'data'->>'movement_id')::uuid AS mid, lower(j->'data'->>'event') AS kind,
           (j->'data'->>'warehouse_id')::uuid AS w, (j->'data'->>'product_id')::uuid AS p,
           (j->'data'->>'quantity')::bigint AS q, (j->'data'->>'timestamp')::timestamptz AS at,
           j->>'id' AS envelope_id, topic, part, off
    FROM decoded
)"""
# ... or staged as columns already.
FROM_COLUMNS = """
ev AS (SELECT * FROM bench_staging_cols)"""

APPLY_TEMPLATE = """
WITH {source}, logged AS (
    INSERT INTO movement_events (movement_id, event, warehouse_id, product_id, quantity, occurred_at,
                                 envelope_id, origin, kafka_topic, kafka_partition, kafka_offset)
    SELECT mid, kind, w, p, q, at, envelope_id, 'kafka', topic, part, off FROM ev ORDER BY part, off
    ON CONFLICT (movement_id, event) DO NOTHING
    RETURNING movement_id, event, warehouse_id, product_id, quantity, occurred_at
), moved AS (
    INSERT INTO movements AS m (movement_id, product_id, source_warehouse_id, departed_quantity,
                                departed_at, destination_warehouse_id, arrived_quantity, arrived_at)
    SELECT movement_id, (array_agg(product_id))[1],
           (array_agg(warehouse_id) FILTER (WHERE event = 'departure'))[1],
           max(quantity) FILTER (WHERE event = 'departure'),
           max(occurred_at) FILTER (WHERE event = 'departure'),
           (array_agg(warehouse_id) FILTER (WHERE event = 'arrival'))[1],
           max(quantity) FILTER (WHERE event = 'arrival'),
           max(occurred_at) FILTER (WHERE event = 'arrival')
    FROM logged GROUP BY movement_id ORDER BY movement_id
    ON CONFLICT (movement_id) DO UPDATE SET
        product_id = EXCLUDED.product_id,
        source_warehouse_id = coalesce(EXCLUDED.source_warehouse_id, m.source_warehouse_id),
        departed_quantity = coalesce(EXCLUDED.departed_quantity, m.departed_quantity),
        departed_at = coalesce(EXCLUDED.departed_at, m.departed_at),
        destination_warehouse_id = coalesce(EXCLUDED.destination_warehouse_id, m.destination_warehouse_id),
        arrived_quantity = coalesce(EXCLUDED.arrived_quantity, m.arrived_quantity),
        arrived_at = coalesce(EXCLUDED.arrived_at, m.arrived_at),
        updated_at = now()
    RETURNING 1
), delta AS (
    SELECT warehouse_id AS w, product_id AS p,
           sum(CASE event WHEN 'arrival' THEN quantity ELSE -quantity END) AS d
    FROM logged GROUP BY warehouse_id, product_id
), updated AS (
    -- Existing rows are updated in place: an upsert would check the CHECK constraint against the
    -- proposed row (a negative delta) before it ever looked for the conflict.
    UPDATE stock s SET quantity = s.quantity + delta.d, updated_at = now()
    FROM delta WHERE s.warehouse_id = delta.w AND s.product_id = delta.p
    RETURNING s.warehouse_id, s.product_id
)
INSERT INTO stock (warehouse_id, product_id, quantity, updated_at)
SELECT w, p, d, now() FROM delta
WHERE NOT EXISTS (SELECT 1 FROM updated u WHERE u.warehouse_id = delta.w AND u.product_id = delta.p)
ORDER BY w, p
ON CONFLICT DO NOTHING
"""


APPLY_SQL = APPLY_TEMPLATE.replace("{source}", FROM_JSON.strip())
APPLY_COLUMNS_SQL = APPLY_TEMPLATE.replace("{source}", FROM_COLUMNS.strip())


def staged_rows(event: dict[str, Any]) -> list[tuple[str, int, int, str]]:
    """(topic, partition, offset, base64 value) of every record of one MSK event."""
    return [
        (r["topic"], r["partition"], r["offset"], r["value"])
        for chunk in event["records"].values()
        for r in chunk
    ]


def decoded_rows(event: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The same records as columns (COLUMNS order), decoded here, before any clock runs."""
    rows = []
    for chunk in event["records"].values():
        for r in chunk:
            e = json.loads(base64.b64decode(r["value"]))
            d = e["data"]
            rows.append(
                (d["movement_id"], d["event"].lower(), d["warehouse_id"], d["product_id"], d["quantity"],
                 d["timestamp"], e["id"], r["topic"], r["partition"], r["offset"])
            )  # fmt: skip
    return rows


def apply_batches(
    conn: psycopg.Connection, batches: Sequence[list[tuple[Any, ...]]], *, decoded: bool = False
) -> float:
    """Apply every batch, one transaction each; returns the wall-clock seconds it took.

    `batches` come from `staged_rows` (JSON decoded by PostgreSQL) or, with `decoded`, from
    `decoded_rows` (columns)."""
    conn.execute(COLUMNS_DDL if decoded else STAGING_DDL)
    conn.commit()
    copy_sql = (
        f"COPY bench_staging_cols ({COLUMNS}) FROM STDIN"
        if decoded
        else "COPY bench_staging (topic, part, off, value) FROM STDIN"
    )
    apply_sql = APPLY_COLUMNS_SQL if decoded else APPLY_SQL
    started = time.perf_counter()
    for rows in batches:
        with conn.transaction():
            with conn.cursor() as cur, cur.copy(copy_sql) as cp:
                for row in rows:
                    cp.write_row(row)
            conn.execute(apply_sql)
    return time.perf_counter() - started
