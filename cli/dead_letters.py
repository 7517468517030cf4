"""`warehouse-stock dead-letters list|show|resolve|replay`: the dead-letter workflow from a shell.

The same functions as the operator routes (`common.dead_letters.store`,
`common.operations.dead_letter_workflow`): list with the console's filters, show one (for a
conflict, the applied version beside the refused payload), resolve with a note, replay by filter.
Every action is audited under `--by` (default: the login name).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from dataclasses import asdict
from uuid import UUID

from common.adapters.db import get_pool
from common.dead_letters import store
from common.domain.outcomes import Reason
from common.operations import dead_letter_workflow as workflow


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "dead-letters",
        help="list, show, resolve (with a note) or replay dead letters, one or by filter",
        description="The dead-letter workflow: the console's dead-letter page, from a shell.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="<action>",
                                    parser_class=type(parser))  # fmt: skip
    listing = actions.add_parser("list", help="dead letters, filtered (the first 4 KiB of each payload)")
    _filters(listing)
    listing.add_argument("--newest", action="store_true", help="newest first (default oldest)")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (1-500, default 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=run_list)

    show = actions.add_parser("show", help="one dead letter, whole; for a conflict the applied version")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help="the JSON the API answers")
    show.set_defaults(run=run_show)

    resolve = actions.add_parser("resolve", help="mark resolved with a note (who, when, why), audited")
    _filters(resolve, ids=True)
    resolve.add_argument("--note", required=True, help="why nothing more is needed")
    resolve.add_argument("--by", default=None, help="who resolves (default: your login name)")
    resolve.add_argument("--json", action="store_true", help="the ids resolved as one JSON object")
    resolve.set_defaults(run=run_resolve)

    replay = actions.add_parser("replay", help="replay the unresolved ones a filter names (not conflicts)")
    _filters(replay, ids=True)
    replay.add_argument("--by", default=None, help="who replays (default: your login name)")
    replay.set_defaults(run=run_replay)


def _filters(parser: argparse.ArgumentParser, *, ids: bool = False) -> None:
    if ids:
        parser.add_argument(
            "--id", dest="ids", type=int, action="append", help="a dead letter id (repeatable)"
        )
    parser.add_argument("--reason", choices=[r.value for r in Reason])
    parser.add_argument("--movement-id", type=UUID)
    if not ids:
        parser.add_argument("--unresolved", action="store_true", help="only those not settled yet")


def _selection(args: argparse.Namespace) -> store.Filter:
    if not (args.ids or args.reason or args.movement_id):
        raise ValueError("name the dead letters: --id, --reason or --movement-id")
    return store.Filter(
        reason=Reason(args.reason) if args.reason else None, movement_id=args.movement_id, ids=args.ids
    )


def _by(args: argparse.Namespace) -> str:
    return str(args.by or getpass.getuser())


def run_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 500:
        raise ValueError("--limit: from 1 to 500")
    with get_pool().connection() as conn:
        page = store.list_page(
            conn,
            reason=Reason(args.reason) if args.reason else None,
            unresolved=args.unresolved,
            movement_id=args.movement_id,
            order="newest" if args.newest else "oldest",
            limit=args.limit,
        )
    for item in page.items:
        if args.json:
            print(item.model_dump_json(exclude={"applied", "audit"}))
        else:
            state = item.resolution or item.replay_status or "unresolved"
            when = f"{item.received_at:%Y-%m-%d %H:%M:%S}"
            print(f"{item.id:>8}  {when}  {item.reason:<18} {state:<10} {item.detail}")
    if page.next_cursor and not args.json:
        print("(more: raise --limit, or use GET /api/v1/rejected-events)", file=sys.stderr)
    return 0


def run_show(args: argparse.Namespace) -> int:
    with get_pool().connection() as conn:
        one = store.get_one(conn, args.id)
    if one is None:
        raise LookupError(f"no dead letter {args.id}")
    if args.json:
        print(one.model_dump_json())
        return 0
    print(f"dead letter {one.id}: {one.reason} ({one.origin}), received {one.received_at.isoformat()}")
    print(f"detail: {one.detail}")
    print(f"state: {one.resolution or one.replay_status or 'unresolved'}"
          + (f" by {one.resolved_by}: {one.resolution_note}" if one.resolved_at else ""))  # fmt: skip
    for half in one.applied or []:
        print(f"applied {half.event}: warehouse {half.warehouse_id} product {half.product_id} quantity "
              f"{half.quantity} at {half.occurred_at.isoformat()}")  # fmt: skip
    for entry in one.audit or []:
        print(f"audit: {entry.at.isoformat()} {entry.action} by {entry.actor}: {entry.note or entry.outcome}")
    print(f"payload ({one.raw_payload_encoding}): {one.raw_payload}")
    return 0


def run_resolve(args: argparse.Namespace) -> int:
    done = workflow.resolve_matching(_selection(args), by=_by(args), note=args.note)
    if args.json:
        print(json.dumps({"resolved_ids": done}))
    print(f"resolved {len(done)} dead letters", file=sys.stderr)
    return 0


def run_replay(args: argparse.Namespace) -> int:
    results = workflow.replay_matching(_selection(args), by=_by(args))
    for result in results:
        print(json.dumps(asdict(result)))
    applied = sum(r.status == "applied" for r in results)
    print(f"replayed {len(results)}: {applied} applied", file=sys.stderr)
    return 0
