"""Replay of dead letters: re-apply parked events whose reason may have gone away.

A departure refused for `insufficient_stock` can succeed once its goods have arrived. Replay feeds
the parked raw bytes through the same `apply_events`, so it obeys every rule and is idempotent: a
second replay of an applied event is a `duplicate` and changes nothing. The outcome is recorded on
the parked row (`replayed_at`, `replay_status`, `replay_detail`); the row itself stays as evidence.

CLI: `python -m common.replay --id 17 --id 18` or `python -m common.replay --reason insufficient_stock`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass

import psycopg

from common.events import Origin, parse_event
from common.ledger import Outcome, apply_events

MAX_REPLAY_BATCH = 10_000


@dataclass(frozen=True)
class ReplayResult:
    rejected_event_id: int
    status: str
    reason: str | None
    detail: str | None


def replay_rejected(
    conn: psycopg.Connection,
    *,
    ids: list[int] | None = None,
    reason: str | None = None,
    limit: int = MAX_REPLAY_BATCH,
) -> tuple[list[ReplayResult], list[Outcome]]:
    """Replay the given dead letters (by id), or every unresolved one of a reason, oldest first.

    Rows already replayed successfully are skipped when selecting by reason, never when named by
    id (replaying them again is harmless and says `duplicate`). One transaction for the lot.
    """
    if ids is None and reason is None:
        raise ValueError("name the dead letters to replay: ids or a reason")
    with conn.transaction():
        rows = conn.execute(
            """
            SELECT id, raw_payload, kafka_topic, kafka_partition, kafka_offset
            FROM rejected_events
            WHERE (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
              AND (%(reason)s::text IS NULL OR reason = %(reason)s::text)
              AND (%(ids)s::bigint[] IS NOT NULL OR replay_status IS DISTINCT FROM 'applied')
            ORDER BY id
            LIMIT %(limit)s
            FOR UPDATE
            """,
            {"ids": ids, "reason": reason, "limit": limit},
        ).fetchall()
        items = [
            parse_event(bytes(raw), Origin("replay", topic, partition, offset))
            for _, raw, topic, partition, offset in rows
        ]
        outcomes = apply_events(conn, items, park_rejected=False)
        results = [
            ReplayResult(row[0], outcome.status, outcome.reason, outcome.detail)
            for row, outcome in zip(rows, outcomes, strict=True)
        ]
        if results:
            conn.execute(
                """
                UPDATE rejected_events r SET
                    replayed_at = now(),
                    replay_status = CASE WHEN r.replay_status = 'applied' THEN r.replay_status
                                         ELSE v.status END,
                    replay_detail = CASE WHEN r.replay_status = 'applied' THEN r.replay_detail
                                         ELSE v.detail END
                FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS v(id, status, detail)
                WHERE r.id = v.id
                """,
                (
                    [r.rejected_event_id for r in results],
                    [r.status for r in results],
                    [r.detail if r.status == "rejected" else None for r in results],
                ),
            )
    return results, outcomes


def main(argv: list[str] | None = None) -> int:
    from common.service import replay

    parser = argparse.ArgumentParser(description="Re-apply parked events (dead letters).")
    parser.add_argument("--id", dest="ids", type=int, action="append", help="a dead letter id (repeatable)")
    parser.add_argument(
        "--reason", choices=["invalid", "conflict", "insufficient_stock"], help="every unresolved one"
    )
    args = parser.parse_args(argv)
    if not args.ids and not args.reason:
        parser.error("give --id or --reason")
    results = replay(ids=args.ids, reason=args.reason)
    for result in results:
        print(json.dumps(asdict(result)))
    applied = sum(r.status == "applied" for r in results)
    print(f"replayed {len(results)}: {applied} applied", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
