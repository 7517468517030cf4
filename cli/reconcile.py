"""`warehouse-stock reconcile [--json]`: check that the books balance (`common.operations.reconcile`)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

import psycopg

from cli.failures import describe
from common.adapters.db import connect
from common.operations.reconcile import Report, reconcile


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "reconcile",
        help="check that stock, movements, the event log and the dead letters agree",
        description=(
            "Every stock row equals its opening balance plus its applied events, every movement row "
            "its halves in the event log, no stock is negative, every dead letter's state agrees "
            "with the log. Prints each discrepancy and note, a summary on stderr; exit status 1 on "
            "any discrepancy (notes do not count), 2 when the database cannot be read."
        ),
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    parser.add_argument("--database-url", help="defaults to DATABASE_URL / DB_SECRET_ARN")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Connect, reconcile, print; 2 when the database cannot be read at all."""
    try:
        with connect(args.database_url) as conn:
            report = reconcile(conn)
    except psycopg.Error as exc:
        print(f"warehouse-stock reconcile: cannot read the books: {describe(exc)}", file=sys.stderr)
        return 2
    return print_report(report, as_json=args.json)


def print_report(report: Report, *, as_json: bool = False) -> int:
    """Each discrepancy and note on stdout (text, or JSON lines), the summary on stderr; the exit
    status: 1 when the books do not balance, else 0."""
    for kind, rows in (("discrepancy", report.discrepancies), ("note", report.notes)):
        for row in rows:
            if as_json:
                print(json.dumps({"kind": kind, **asdict(row)}, default=str))
            else:
                print(row.line() if kind == "discrepancy" else f"note: {row.line()}")
    print(report.summary(), file=sys.stderr)
    return 0 if report.ok else 1
