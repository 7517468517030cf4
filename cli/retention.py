"""`warehouse-stock retention`: apply the retention policy (see `common.operations.retention`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.adapters.config import get_settings
from common.adapters.db import connect
from common.operations import retention


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "retention",
        help="delete or archive old dead letters, fold old events into opening balances",
        description=(
            "Resolved dead letters idle for DEAD_LETTER_RETENTION_DAYS are deleted; unresolved ones only "
            "with --archive (written to DIR first). With EVENT_LOG_RETENTION_DAYS set, older applied "
            "events are folded into stock_opening. Outcome counts and consumer lag rows older than "
            "DEAD_LETTER_RETENTION_DAYS are deleted. Safe to repeat and to run concurrently (a second "
            "run does nothing). The report is one JSON object on stdout."
        ),
    )
    parser.add_argument("--dry-run", action="store_true", help="count what would go; change nothing")
    parser.add_argument(
        "--archive",
        metavar="DIR",
        type=Path,
        help="write every expired dead letter (resolved or not) to DIR as JSON lines, then delete it",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    with connect(autocommit=True) as conn:
        report = retention.run(conn, settings, dry_run=args.dry_run, archive_dir=args.archive)
    print(json.dumps(report.to_dict()))
    letters = report.dead_letters
    if report.skipped:
        print(f"retention: skipped ({report.skipped})", file=sys.stderr)
    elif letters is not None:
        verb = "would delete" if args.dry_run else "deleted"
        print(
            f"retention: {verb} {letters.deleted_resolved + letters.deleted_unresolved} dead letters "
            f"({letters.archived} archived), kept {letters.kept_unresolved} unresolved"
            f"{' (pass --archive DIR to archive and delete them)' if letters.kept_unresolved else ''}; "
            f"{'would fold' if args.dry_run else 'folded'} {report.event_log.folded_events} events",
            file=sys.stderr,
        )
    return 0
