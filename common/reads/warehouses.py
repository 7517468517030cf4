"""The warehouse directory: codes learnt from events (written by `common.ledger.warehouses`).

A warehouse's code is the one seen last; every code it was seen with, and every other warehouse
seen with the same code, is shown beside it: a code that changed, or two warehouses claiming one
code, is a fact about the producers an operator should see, never resolved silently here.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import psycopg

from common.reads.models import SeenCode, WarehouseCodes, WarehouseEntry

# Most warehouses the directory lists (a retail network has hundreds, not tens of thousands).
MAX_WAREHOUSES = 2000


def codes_for(conn: psycopg.Connection, ids: Iterable[UUID | None]) -> WarehouseCodes:
    """The latest code of each of `ids` that has one (one index scan per id, one statement)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = conn.execute(
        """
        SELECT DISTINCT ON (warehouse_id) warehouse_id, code FROM warehouse_codes
        WHERE warehouse_id = ANY(%s::uuid[])
        ORDER BY warehouse_id, last_seen DESC, code
        """,
        (wanted,),
    ).fetchall()
    return {w: c for w, c in rows}


def directory(conn: psycopg.Connection, *, limit: int = MAX_WAREHOUSES) -> list[WarehouseEntry]:
    """Every warehouse with stock rows or a code, most recently updated first."""
    return _entries(conn, None, limit)


def directory_entry(conn: psycopg.Connection, warehouse_id: UUID) -> WarehouseEntry | None:
    """One warehouse as `directory` shows it (index scans of its own rows only)."""
    found = _entries(conn, warehouse_id, 1)
    return found[0] if found else None


def _entries(conn: psycopg.Connection, warehouse_id: UUID | None, limit: int) -> list[WarehouseEntry]:
    rows = conn.execute(
        """
        WITH stocked AS (
            SELECT warehouse_id, count(*) AS products, sum(quantity)::bigint AS units,
                   max(updated_at) AS updated_at
            FROM stock WHERE updated_at IS NOT NULL
              AND (%(w)s::uuid IS NULL OR warehouse_id = %(w)s::uuid)
            GROUP BY warehouse_id
        ), named AS (
            SELECT warehouse_id,
                   array_agg(code ORDER BY last_seen DESC, code) AS codes,
                   array_agg(first_seen ORDER BY last_seen DESC, code) AS firsts,
                   array_agg(last_seen ORDER BY last_seen DESC, code) AS lasts
            FROM warehouse_codes WHERE (%(w)s::uuid IS NULL OR warehouse_id = %(w)s::uuid)
            GROUP BY warehouse_id
        )
        SELECT j.warehouse_id, j.codes, j.firsts, j.lasts, j.products, j.units, j.updated_at,
               ARRAY(SELECT o.warehouse_id FROM warehouse_codes o
                     WHERE j.codes IS NOT NULL AND lower(o.code) = lower(j.codes[1])
                       AND o.warehouse_id <> j.warehouse_id
                     ORDER BY o.warehouse_id LIMIT 20)
        FROM (
            SELECT warehouse_id, n.codes, n.firsts, n.lasts, coalesce(s.products, 0) AS products,
                   coalesce(s.units, 0) AS units, s.updated_at
            FROM stocked s FULL JOIN named n USING (warehouse_id)
        ) j
        ORDER BY j.updated_at DESC NULLS LAST, j.warehouse_id
        LIMIT %(n)s
        """,
        {"w": warehouse_id, "n": limit},
    ).fetchall()
    return [
        WarehouseEntry(
            warehouse_id=w,
            code=codes[0] if codes else None,
            codes=[
                SeenCode(code=c, first_seen=f, last_seen=ls)
                for c, f, ls in zip(codes or [], firsts or [], lasts or [], strict=True)
            ],
            code_shared_with=list(others),
            products=products,
            units=units,
            updated_at=updated_at,
        )
        for w, codes, firsts, lasts, products, units, updated_at, others in rows
    ]


def by_code(conn: psycopg.Connection, text: str, *, limit: int = 20) -> list[tuple[UUID, str]]:
    """Warehouses seen with a code starting with `text` (any case): (id, that code), codes in order."""
    prefix = text.strip().lower()
    if not prefix:
        return []
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute(
        """
        SELECT warehouse_id, code FROM warehouse_codes
        WHERE lower(code) LIKE %s
        ORDER BY lower(code) = %s DESC, lower(code), warehouse_id
        LIMIT %s
        """,
        (escaped + "%", prefix, limit),
    ).fetchall()
    return [(w, c) for w, c in rows]
