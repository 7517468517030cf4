"""The dead-letter store (`rejected_events`): every statement on that table lives here.

A refused event is kept with its raw bytes, its reason and a detail, and for a Kafka record its
identity: cluster, topic/partition/offset and a digest of key and value. Coordinates alone repeat
(a recreated topic restarts at offset 0, a second cluster has the same topic name), so a record
counts as "parked before" only when its digest, and its cluster where both are known, match too.
A dead letter is never rewritten, only annotated: a replay (by an operator, or automatically for a
waiting departure) records `replayed_at`, `replay_status`, `replay_detail` on the row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg import sql

from common.adapters.cursor import BadCursor, decode_cursor, page_of
from common.dead_letters import views
from common.dead_letters.models import (
    AppliedHalf,
    AuditEntry,
    DeadLetterCount,
    RejectedEventPage,
    RejectedEventView,
)
from common.domain.events import IncomingEvent, Origin, parse_event
from common.domain.outcomes import Outcome, Reason, Status
from common.domain.rules import StockKey

# A dead letter's detail is built from validation messages that may echo the input: PostgreSQL
# text cannot hold NUL nor lone surrogates, and nothing needs more than this many characters.
MAX_DETAIL_CHARS = 2000
RecordIdentity = tuple[str | None, str | None, int | None, int | None, bytes]
Coordinates = tuple[str | None, str | None, int | None, int | None]


def safe_text(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """`text` as PostgreSQL can store it: NUL and lone surrogates escaped, at most `limit` chars."""
    cleaned = text.replace("\x00", "\\x00")
    cleaned = cleaned.encode("utf-8", "backslashreplace").decode("utf-8")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def record_identity(item: IncomingEvent) -> RecordIdentity | None:
    """(cluster, topic, partition, offset, digest) of a Kafka record; None for other origins."""
    origin = item.origin
    if origin.kind != "kafka":
        return None
    return (origin.cluster, origin.topic, origin.partition, origin.offset, item.digest)


def record_coordinates(item: IncomingEvent) -> Coordinates | None:
    """(cluster, topic, partition, offset): a record identity without its digest (cheap to compute).

    Two records can only share an identity if they share these; the digest (a SHA-256 of key and
    value) is worth computing only then.
    """
    origin = item.origin
    if origin.kind != "kafka":
        return None
    return (origin.cluster, origin.topic, origin.partition, origin.offset)


@dataclass(frozen=True)
class Parked:
    """A dead letter found for a record of the batch."""

    id: int
    reason: Reason
    detail: str


def find_parked(conn: psycopg.Connection, items: Sequence[IncomingEvent]) -> dict[RecordIdentity, Parked]:
    """The Kafka records of `items` that an earlier delivery already parked, by identity.

    Asked by offset range, one per partition of the batch (a poll's records are consecutive
    offsets): the statement carries a handful of values instead of five per record, and a record's
    digest is computed only where a dead letter sits at its coordinates (nearly never).
    """
    ranges: dict[tuple[str | None, str, int], list[int]] = {}
    for item in items:  # per record: plain comparisons only
        origin = item.origin
        offset = origin.offset
        if origin.kind != "kafka" or origin.topic is None or origin.partition is None or offset is None:
            continue  # (a record without coordinates matches no row, as in the join on them)
        low_high = ranges.get((origin.cluster, origin.topic, origin.partition))
        if low_high is None:
            ranges[(origin.cluster, origin.topic, origin.partition)] = [offset, offset]
        elif offset < low_high[0]:
            low_high[0] = offset
        elif offset > low_high[1]:
            low_high[1] = offset
    if not ranges:
        return {}
    keys = list(ranges)
    rows = conn.execute(
        """
        SELECT k.c, r.kafka_topic, r.kafka_partition, r.kafka_offset, r.record_digest,
               r.id, r.reason, r.detail
        FROM unnest(%b::text[], %b::text[], %b::int4[], %b::int8[], %b::int8[]) AS k(c, t, p, lo, hi)
        JOIN rejected_events r
          ON r.kafka_topic = k.t AND r.kafka_partition = k.p AND r.kafka_offset BETWEEN k.lo AND k.hi
         AND (r.kafka_cluster IS NULL OR r.kafka_cluster IS NOT DISTINCT FROM k.c)
        """,
        (
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [ranges[k][0] for k in keys],
            [ranges[k][1] for k in keys],
        ),
    ).fetchall()
    if not rows:
        return {}
    found = {
        (cluster, topic, partition, offset, bytes(digest)): Parked(rid, Reason(reason), detail)
        for cluster, topic, partition, offset, digest, rid, reason, detail in rows
    }
    at = {key[:4] for key in found}
    # Only the records at those coordinates whose digest matches too (a recreated topic repeats
    # offsets with other records).
    return {
        key: found[key]
        for item in items
        if record_coordinates(item) in at and (key := record_identity(item)) is not None and key in found
    }


# A webhook refusal was answered 409 to its caller, who keeps control of a retry: it is parked as
# answered, not left "unresolved" for an operator forever.
ANSWERED = (
    True,
    "webhook",
    "answered",
    "refused with 409 to the webhook caller, who decides whether to retry",
)
NOT_ANSWERED = (False, None, None, None)


def park(conn: psycopg.Connection, rejected: Sequence[tuple[IncomingEvent, Outcome]]) -> list[int]:
    """Store each refused event; the ids in order. A Kafka record already parked keeps its row.

    One round trip whatever the count (pipelined statements).
    """
    if not rejected:
        return []
    params = []
    for item, outcome in rejected:
        origin, event = item.origin, outcome.event
        params.append(
            (
                outcome.reason,
                safe_text(outcome.detail or ""),
                item.raw,
                event.movement_id if event else None,
                event.event if event else None,
                origin.kind,
                origin.topic,
                origin.partition,
                origin.offset,
                origin.cluster,
                item.digest if origin.kind == "kafka" else None,
                event.warehouse_id if event else None,
                event.product_id if event else None,
                *(ANSWERED if origin.kind == "webhook" else NOT_ANSWERED),
            )
        )
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO rejected_events (reason, detail, raw_payload, movement_id, event, origin,
                                         kafka_topic, kafka_partition, kafka_offset,
                                         kafka_cluster, record_digest, warehouse_id, product_id,
                                         resolved_at, resolved_by, resolution, resolution_note)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                    CASE WHEN %s THEN now() END, %s, %s, %s)
            ON CONFLICT (kafka_topic, kafka_partition, kafka_offset, record_digest,
                         (coalesce(kafka_cluster, '')))
               WHERE kafka_topic IS NOT NULL
            DO UPDATE SET kafka_topic = EXCLUDED.kafka_topic
            RETURNING id
            """,
            params,
            returning=True,
        )
        ids = []
        while True:
            row = cur.fetchone()
            assert row is not None
            ids.append(int(row[0]))
            if not cur.nextset():
                break
    return ids


@dataclass(frozen=True)
class DeadLetter:
    """A parked event read back for a replay: its id and the event parsed again from its bytes."""

    id: int
    item: IncomingEvent


def _as_dead_letters(rows: Iterable[tuple[Any, ...]]) -> list[DeadLetter]:
    letters = []
    for rid, raw, topic, partition, offset, cluster in rows:
        origin = Origin("replay", topic, partition, offset, cluster)
        letters.append(DeadLetter(int(rid), parse_event(bytes(raw), origin)))
    return letters


_DEAD_LETTER_COLUMNS = "id, raw_payload, kafka_topic, kafka_partition, kafka_offset, kafka_cluster"


def waiting_departures(
    conn: psycopg.Connection, keys: Iterable[StockKey], window_seconds: int
) -> list[DeadLetter]:
    """Kafka departures refused for insufficient stock on `keys`, received within the window and
    not yet settled (applied, a duplicate): oldest first. Which those are is defined once, in SQL
    (`dead_letters_waiting`, migration 0008), which the ledger's clean-batch lane asks too."""
    wanted = list(keys)
    if not wanted or window_seconds <= 0:
        return []
    rows = conn.execute(
        f"""
        SELECT {_DEAD_LETTER_COLUMNS}
        FROM dead_letters_waiting(%b::uuid[], %b::uuid[], %b::int4)
        ORDER BY id
        """,
        ([k[0] for k in wanted], [k[1] for k in wanted], window_seconds),
    ).fetchall()
    return _as_dead_letters(rows)


def select_for_replay(
    conn: psycopg.Connection, *, ids: list[int] | None, reason: Reason | None, limit: int
) -> list[DeadLetter]:
    """Dead letters an operator names (by id: whatever their state), or every unsettled one of a
    reason, oldest first."""
    rows = conn.execute(
        f"""
        SELECT {_DEAD_LETTER_COLUMNS}
        FROM rejected_events
        WHERE (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
          AND (%(reason)s::text IS NULL OR reason = %(reason)s::text)
          AND (%(ids)s::bigint[] IS NOT NULL OR replay_status IS DISTINCT FROM 'applied')
        ORDER BY id
        LIMIT %(limit)s
        """,
        {"ids": ids, "reason": reason, "limit": limit},
    ).fetchall()
    return _as_dead_letters(rows)


def record_replays(conn: psycopg.Connection, results: Sequence[tuple[int, Outcome]], *, auto: bool) -> None:
    """Write each replay's outcome on its dead letter; a row once applied stays applied."""
    if not results:
        return
    conn.execute(
        """
        UPDATE rejected_events r SET
            replayed_at = now(),
            replay_status = CASE WHEN r.replay_status = 'applied' THEN r.replay_status ELSE v.status END,
            replay_detail = CASE WHEN r.replay_status = 'applied' THEN r.replay_detail ELSE v.detail END
        FROM unnest(%b::int8[], %b::text[], %b::text[]) AS v(id, status, detail)
        WHERE r.id = v.id
        """,
        (
            [rid for rid, _ in results],
            [outcome.status for _, outcome in results],
            [_replay_detail(outcome, auto) for _, outcome in results],
        ),
    )


def _replay_detail(outcome: Outcome, auto: bool) -> str | None:
    if outcome.status is Status.REJECTED:
        prefix = "retried automatically after an arrival: " if auto else ""
        return safe_text(prefix + (outcome.detail or ""))
    if auto and outcome.status is Status.APPLIED:
        return "applied automatically when an arrival raised the stock"
    return None


@dataclass(frozen=True)
class Copy:
    """What a dead-letter topic copy carries."""

    id: int
    raw: bytes
    reason: Reason
    detail: str
    origin: str
    cluster: str | None


def copies(conn: psycopg.Connection, ids: list[int]) -> list[Copy]:
    """The dead letters `ids` as their dead-letter topic copies, in id order."""
    rows = conn.execute(
        """
        SELECT id, raw_payload, reason, detail, kafka_topic, kafka_partition, kafka_offset, kafka_cluster
        FROM rejected_events WHERE id = ANY(%s::int8[]) ORDER BY id
        """,
        (ids,),
    ).fetchall()
    return [
        Copy(int(rid), bytes(raw), Reason(reason), detail, f"{topic}/{partition}@{offset}", cluster)
        for rid, raw, reason, detail, topic, partition, offset, cluster in rows
    ]


# --- the list, one dead letter, the counts (shown by `common.dead_letters.views`) -----------------

# rejected_events.id is a bigserial.
MAX_ID = 2**63 - 1
Order = Literal["oldest", "newest"]
ORDERS: tuple[Order, ...] = ("oldest", "newest")
# Unresolved: never replayed, or replayed and refused again, and neither resolved by an operator
# nor answered to a webhook caller (migration 0007).
UNRESOLVED = "(resolved_at IS NULL AND (replay_status IS NULL OR replay_status = 'rejected'))"


def _after(cursor: str | None, order: Order) -> int | None:
    """The id a page continues after; the cursor of one order is refused by the other."""
    if cursor is None:
        return None
    key = decode_cursor("rejected", cursor)
    newest = key.startswith("n")
    digits = key[1:] if newest else key
    if newest != (order == "newest") or not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise BadCursor("not a cursor returned by this list")
    return int(digits)


def list_page(
    conn: psycopg.Connection,
    *,
    reason: Reason | None = None,
    unresolved: bool = False,
    movement_id: UUID | None = None,
    order: Order = "oldest",
    limit: int,
    cursor: str | None = None,
) -> RejectedEventPage:
    """The one list of dead letters (the API's and the console's): of one reason, only the
    unresolved, of one movement, oldest or newest first (keyset pagination by id); each payload cut
    to its preview in SQL, so a page never loads whole payloads."""
    after = _after(cursor, order)
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    if reason is not None:
        conditions.append(sql.SQL("reason = %(reason)s"))
    if unresolved:
        conditions.append(sql.SQL(UNRESOLVED))
    if movement_id is not None:
        conditions.append(sql.SQL("movement_id = %(movement)s"))
    if after is not None:
        conditions.append(sql.SQL("id > %(after)s" if order == "oldest" else "id < %(after)s"))
    query = sql.SQL(
        "SELECT " + views.VIEW_COLUMNS + ", substring(raw_payload FROM 1 FOR %(preview)s), "
        "octet_length(raw_payload) FROM rejected_events WHERE {} ORDER BY id "
        + ("" if order == "oldest" else "DESC ")
        + "LIMIT %(n)s"
    ).format(sql.SQL(" AND ").join(conditions))
    params = {
        "reason": reason,
        "movement": movement_id,
        "after": after,
        "n": limit + 1,
        "preview": views.RAW_PREVIEW_BYTES,
    }
    rows, more = page_of(conn.execute(query, params).fetchall(), limit)
    return views.page(rows, more=more, cursor_key=(lambda i: f"n{i}") if order == "newest" else str)


def get_one(conn: psycopg.Connection, rejected_event_id: int) -> RejectedEventView | None:
    """One dead letter with its whole raw payload; None when there is no such id."""
    query = "SELECT " + views.VIEW_COLUMNS + ", raw_payload FROM rejected_events WHERE id = %s"
    row = conn.execute(query.encode(), (rejected_event_id,)).fetchone()
    if row is None:
        return None
    raw = bytes(row[-1])
    text, encoding = views.whole_text(raw)
    one = views.view(row[:-1], text, encoding, len(raw), False)
    if one.reason is Reason.CONFLICT:
        one.applied = applied_halves(conn, one.movement_id)
    one.audit = audit_of(conn, rejected_event_id)
    return one


def dead_letter_counts(conn: psycopg.Connection) -> list[DeadLetterCount]:
    """Every reason, zeros included, with how many are unresolved (as `list_page(unresolved=True)`)."""
    rows = conn.execute(
        f"SELECT reason, count(*), count(*) FILTER (WHERE {UNRESOLVED}) FROM rejected_events GROUP BY reason"  # noqa: S608
    ).fetchall()
    found = {reason: (total, unresolved) for reason, total, unresolved in rows}
    return [
        DeadLetterCount(
            reason=reason.value,
            total=found.get(reason.value, (0, 0))[0],
            unresolved=found.get(reason.value, (0, 0))[1],
        )  # fmt: skip
        for reason in Reason
    ]


def refused_count(conn: psycopg.Connection, movement_id: UUID) -> int:
    """How many events of this movement were refused (the list itself is an operator route)."""
    row = conn.execute(
        "SELECT count(*) FROM rejected_events WHERE movement_id = %s", (movement_id,)
    ).fetchone()
    return int(row[0]) if row else 0


# --- the workflow: resolve with a note, by id or by filter; the audit trail -----------------------


@dataclass(frozen=True)
class Filter:
    """Which dead letters a bulk action names: every condition given must hold."""

    reason: Reason | None = None
    movement_id: UUID | None = None
    ids: list[int] | None = None
    unresolved_only: bool = True


def matching_ids(
    conn: psycopg.Connection, which: Filter, *, limit: int, replayable: bool = False
) -> list[int]:
    """The ids `which` names, oldest first, at most `limit`; `replayable`: conflicts left out (a
    replay of one is refused again by the rule that refused it)."""
    rows = conn.execute(
        f"""
        SELECT id FROM rejected_events
        WHERE (%(reason)s::text IS NULL OR reason = %(reason)s::text)
          AND (%(movement)s::uuid IS NULL OR movement_id = %(movement)s::uuid)
          AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
          AND (NOT %(unresolved)s OR {UNRESOLVED})
          AND (NOT %(replayable)s OR reason <> 'conflict')
        ORDER BY id LIMIT %(limit)s
        """,  # noqa: S608 - UNRESOLVED is a constant
        {
            "reason": which.reason,
            "movement": which.movement_id,
            "ids": which.ids,
            "unresolved": which.unresolved_only,
            "replayable": replayable,
            "limit": limit,
        },
    ).fetchall()
    return [int(r[0]) for r in rows]


def resolve(conn: psycopg.Connection, ids: list[int], *, by: str, note: str) -> list[int]:
    """Mark the unresolved among `ids` resolved by `by` with `note`, and audit each; the ids marked.

    One statement. A dead letter already resolved (or answered, or applied by a replay) keeps its
    first resolution: it is not rewritten, and nothing is audited for it.
    """
    if not ids:
        return []
    rows = conn.execute(
        f"""
        WITH marked AS (
            UPDATE rejected_events SET resolved_at = now(), resolved_by = %(by)s,
                   resolution = 'resolved', resolution_note = %(note)s
            WHERE id = ANY(%(ids)s::bigint[]) AND {UNRESOLVED}
            RETURNING id, reason, movement_id
        )
        INSERT INTO dead_letter_audit (rejected_event_id, action, actor, note, reason, movement_id)
        SELECT id, 'resolve', %(by)s, %(note)s, reason, movement_id FROM marked ORDER BY id
        RETURNING rejected_event_id
        """,  # noqa: S608 - UNRESOLVED is a constant
        {"ids": ids, "by": safe_text(by, 200), "note": safe_text(note)},
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def audit_replays(conn: psycopg.Connection, results: Sequence[tuple[int, Outcome]], *, by: str) -> None:
    """Audit an operator's replays (one statement), in the replay's transaction."""
    if not results:
        return
    conn.execute(
        """
        INSERT INTO dead_letter_audit (rejected_event_id, action, actor, outcome, reason, movement_id)
        SELECT r.id, 'replay', %b, v.outcome, r.reason, r.movement_id
        FROM unnest(%b::int8[], %b::text[]) AS v(id, outcome) JOIN rejected_events r ON r.id = v.id
        ORDER BY r.id
        """,
        (safe_text(by, 200), [rid for rid, _ in results], [o.status for _, o in results]),
    )


def audit_of(conn: psycopg.Connection, rejected_event_id: int) -> list[AuditEntry]:
    """What operators did about one dead letter, oldest first (kept after the dead letter is gone)."""
    rows = conn.execute(
        "SELECT action, actor, note, outcome, at FROM dead_letter_audit "
        "WHERE rejected_event_id = %s ORDER BY id",
        (rejected_event_id,),
    ).fetchall()
    return [AuditEntry(action=a, actor=b, note=n, outcome=o, at=at) for a, b, n, o, at in rows]


def applied_halves(conn: psycopg.Connection, movement_id: UUID | None) -> list[AppliedHalf]:
    """The halves of a movement as the ledger applied them: what a conflict was refused against."""
    if movement_id is None:
        return []
    rows = conn.execute(
        """
        SELECT event, warehouse_id, product_id, quantity, occurred_at, received_at, envelope_id
        FROM movement_events WHERE movement_id = %s ORDER BY event DESC
        """,
        (movement_id,),
    ).fetchall()
    return [
        AppliedHalf(
            event=e, warehouse_id=w, product_id=p, quantity=q, occurred_at=o, received_at=r, envelope_id=env
        )
        for e, w, p, q, o, r, env in rows
    ]
