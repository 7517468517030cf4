"""`warehouse-stock reconcile [--json]`: check that the books balance (`common.reconcile`)."""

from __future__ import annotations

import argparse

from common import reconcile


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
    reconcile.add_arguments(parser)
    parser.set_defaults(run=reconcile.run)
