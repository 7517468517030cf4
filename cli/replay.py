"""`warehouse-stock replay`: re-apply dead letters through the ledger's rules."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from common.domain.outcomes import Reason, Status
from common.ledger.use_cases import replay


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "replay",
        help="re-apply parked events (dead letters), one transaction",
        description=(
            "Re-apply dead letters: by id whatever their state (again is harmless: `duplicate`), or "
            "every one of a reason not yet applied. One JSON line per dead letter on stdout."
        ),
    )
    parser.add_argument("--id", dest="ids", type=int, action="append", help="a dead letter id (repeatable)")
    parser.add_argument(
        "--reason", choices=[r.value for r in Reason], help="every unresolved one of this reason"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.ids and not args.reason:
        print("replay: give --id or --reason", file=sys.stderr)
        return 2
    results = replay(ids=args.ids, reason=Reason(args.reason) if args.reason else None)
    for result in results:
        print(json.dumps(asdict(result)))
    applied = sum(r.status is Status.APPLIED for r in results)
    print(f"replayed {len(results)}: {applied} applied", file=sys.stderr)
    return 0
