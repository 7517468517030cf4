"""The warehouse directory's writes: which code each warehouse id was named by, learnt from events.

Every envelope names its publisher in `source` ("WH-3322") and usually in `subject` too
("WH-3322:DEPARTURE"); the data names the warehouse by id. The ledger records the pair for each
applied event, in the batch's transaction, with one set-based statement whatever the batch size
(`record`). A pair seen within the last minute is not rewritten, so concurrent batches of a busy
warehouse do not queue on its row; `last_seen` is therefore exact to the minute. Reads are in
`common.reads.warehouses`.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import psycopg

from common.domain.events import IncomingEvent

MAX_CODE_CHARS = 100


def warehouse_code(source: str | None, subject: str | None) -> str | None:
    """The warehouse's code an envelope carries: `source`, else `subject` up to its first ':'.

    None when neither holds a usable name (blank, or longer than MAX_CODE_CHARS).
    """
    for text in (source, (subject or "").split(":", 1)[0]):
        code = (text or "").strip()
        if code and len(code) <= MAX_CODE_CHARS and "\x00" not in code:
            return code
    return None


def codes_of(items: Iterable[IncomingEvent]) -> list[tuple[UUID, str]]:
    """The distinct (warehouse id, code) pairs of these events, in key order (the lock order)."""
    pairs = set()
    for item in items:
        envelope = item.envelope
        if envelope is None:
            continue
        code = warehouse_code(envelope.source, envelope.subject)
        if code is not None:
            pairs.add((envelope.data.warehouse_id, code))
    return sorted(pairs)


def record(conn: psycopg.Connection, items: Iterable[IncomingEvent]) -> None:
    """Note, in the caller's transaction, the codes the applied `items` name their warehouses by."""
    pairs = codes_of(items)
    if not pairs:
        return
    conn.execute(
        """
        INSERT INTO warehouse_codes AS d (warehouse_id, code)
        SELECT s.w, s.c
        FROM unnest(%b::uuid[], %b::text[]) AS s(w, c)
        LEFT JOIN warehouse_codes k ON k.warehouse_id = s.w AND k.code = s.c
        WHERE k.warehouse_id IS NULL OR k.last_seen < now() - interval '1 minute'
        ORDER BY s.w, s.c
        ON CONFLICT (warehouse_id, code) DO UPDATE SET last_seen = greatest(d.last_seen, now())
        """,
        ([w for w, _ in pairs], [c for _, c in pairs]),
    )
