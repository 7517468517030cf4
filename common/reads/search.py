"""The header search: what a text names, among warehouse codes, warehouse ids, product ids and
movement ids, whole or by their first hexadecimal digits.

A few index scans: codes by prefix (warehouse_codes), ids by an inclusive UUID range for a prefix
(the primary keys and the stock-by-product index, migration 0006), so a prefix search costs what
a whole-id search does.
"""

from __future__ import annotations

from uuid import UUID

import psycopg

from common.reads.models import Found, SearchResult
from common.reads.stock import product_prefix_range
from common.reads.warehouses import by_code, codes_for

MAX_FOUND = 20
# A shorter hexadecimal prefix matches too much to be what someone typed an id for.
MIN_PREFIX_DIGITS = 4


def search(conn: psycopg.Connection, text: str, *, limit: int = MAX_FOUND) -> SearchResult:
    """Warehouses by code (prefix, any case), then warehouses, products and movements by id or prefix."""
    query = text.strip()[:100]
    if "\x00" in query:  # PostgreSQL text holds no NUL: no code or id contains one
        return SearchResult(query=query.replace("\x00", ""), items=[])
    found: list[Found] = [
        Found(kind="warehouse", id=w, label=code, match="code")
        for w, code in by_code(conn, query, limit=limit)
    ]
    id_range = _id_range(query)
    if id_range is not None:
        whole = _whole_id(query)
        low, high = id_range
        rows = conn.execute(
            """
            (SELECT 'warehouse', warehouse_id FROM (
                 SELECT DISTINCT warehouse_id FROM stock WHERE warehouse_id BETWEEN %(lo)s AND %(hi)s
                 UNION SELECT warehouse_id FROM warehouse_codes WHERE warehouse_id BETWEEN %(lo)s AND %(hi)s
             ) w ORDER BY warehouse_id LIMIT %(n)s)
            UNION ALL
            (SELECT DISTINCT 'product', product_id FROM stock
             WHERE product_id BETWEEN %(lo)s AND %(hi)s ORDER BY product_id LIMIT %(n)s)
            UNION ALL
            (SELECT 'movement', movement_id FROM movements
             WHERE movement_id BETWEEN %(lo)s AND %(hi)s AND status IS NOT NULL
             ORDER BY movement_id LIMIT %(n)s)
            """,
            {"lo": low, "hi": high, "n": limit},
        ).fetchall()
        codes = codes_for(conn, [i for kind, i in rows if kind == "warehouse"])
        seen = {(f.kind, f.id) for f in found}
        for kind, some_id in rows:
            if (kind, some_id) in seen:
                continue
            label = codes.get(some_id, str(some_id)) if kind == "warehouse" else str(some_id)
            found.append(Found(kind=kind, id=some_id, label=label, match="id" if whole else "prefix"))
    return SearchResult(query=query, items=found[:limit])


def _whole_id(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


def _id_range(text: str) -> tuple[UUID, UUID] | None:
    """The ids `text` is the start of, when it is hexadecimal and long enough to mean one."""
    if len(text.replace("-", "")) < MIN_PREFIX_DIGITS:
        return None
    try:
        return product_prefix_range(text)
    except ValueError:
        return None
